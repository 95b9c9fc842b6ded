#!/bin/sh
# First boot: initdb with POSTGRES_USER as the superuser and POSTGRES_DB created; password
# (scram) logins from the network. Then PostgreSQL in the foreground as the postgres user.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile"
    chown postgres "$pwfile"
    su postgres -c "initdb -D '$PGDATA' -U '$user' --pwfile='$pwfile' --auth-local=trust --auth-host=scram-sha-256" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
    su postgres -c "psql -U '$user' -d postgres -v ON_ERROR_STOP=1 -c 'CREATE DATABASE \"$db\"'" >/dev/null
    su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
    echo "entrypoint: initialised $PGDATA (user $user, database $db)"
fi
# setpriv, not su: postgres becomes PID 1 and gets compose's SIGTERM itself.
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*'
