"""gunicorn for the web tier: uvicorn workers serve HTTP and the /ws/ websockets."""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
graceful_timeout = 30
# Websockets stay open for a whole queue wait or play session.
timeout = 0
