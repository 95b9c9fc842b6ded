# Stand-in for postgres:16: Debian bookworm's PostgreSQL 15 with an entrypoint that honours the
# official image's POSTGRES_DB / POSTGRES_USER / POSTGRES_PASSWORD and data directory, so
# compose.yml's db service (environment, volume, pg_isready healthcheck) runs unchanged.
ARG BOOKWORM
FROM ${BOOKWORM}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres /var/lib/postgresql/data /run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/entrypoint.sh
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/entrypoint.sh"]
