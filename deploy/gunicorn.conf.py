"""gunicorn for the web tier: uvicorn workers serve HTTP and the /ws/ websockets."""

import os

# An empty value means the default, as everywhere in deploy/.env.example (but gunicorn and
# uvicorn also read WEB_CONCURRENCY themselves, and an empty one stops them).
bind = os.environ.get("BIND", "").strip() or "0.0.0.0:8000"
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "").strip() or 4)
# SIGTERM lets open requests finish this long; Kubernetes' grace period (40 s) covers it.
graceful_timeout = 30
# Websockets stay open for a whole queue wait or play session.
timeout = 0
# The proxies whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (it reads this
# setting): the same list Django trusts. Empty trusts none, not gunicorn's default of
# 127.0.0.1, so a client's own header never picks its address; gunicorn refuses a bad entry.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "").strip()
