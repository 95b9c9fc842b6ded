#!/bin/sh
# As the official image does: redis-server started without a config file listens on every
# interface with protected mode off (the compose network is its only reach).
set -eu
if [ "${1:-}" = "redis-server" ]; then
    shift
    exec setpriv --reuid=redis --regid=redis --init-groups \
        redis-server --bind 0.0.0.0 --protected-mode no "$@"
fi
exec "$@"
