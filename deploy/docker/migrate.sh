#!/bin/sh
# Migrate and seed once PostgreSQL accepts connections. A database that is still starting, or
# a Kubernetes Job that started before its network path, fails the first tries: retry a
# bounded number of times, then fail loudly (compose's workers wait on this succeeding).
# Retrying migrate as a whole is safe: each migration is a transaction on PostgreSQL, and
# seedservice is idempotent.
set -eu
tries="${MIGRATE_TRIES:-30}"
delay="${MIGRATE_DELAY:-2}"
n=1
until python manage.py migrate --noinput; do
    if [ "$n" -ge "$tries" ]; then
        echo "migrate.sh: migrate failed $n times; giving up" >&2
        exit 1
    fi
    echo "migrate.sh: migrate failed (try $n of $tries); again in ${delay}s" >&2
    n=$((n + 1))
    sleep "$delay"
done
exec python manage.py seedservice
