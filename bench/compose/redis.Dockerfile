# Stand-in for redis:7: Debian bookworm's Redis 7.0. Like the official image, a command line
# without a config file also gets --protected-mode no, so other containers can connect.
ARG BOOKWORM
FROM ${BOOKWORM}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
COPY redis-entrypoint.sh /usr/local/bin/entrypoint.sh
EXPOSE 6379
ENTRYPOINT ["sh", "/usr/local/bin/entrypoint.sh"]
CMD ["redis-server"]
