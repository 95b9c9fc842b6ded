"""A GPU worker's own HTTP endpoints for orchestrators and Prometheus, on WORKER_METRICS_PORT.

/healthz: the process answers (200), from the first moment: it starts before the model loads,
so a liveness probe does not kill a worker that is still warming. /readyz: 200 once the model
is warm and the worker takes players; 503 while warming, draining or stopping (JSON says which).
/metrics: prometheus_client's registry of this process (streaming/metrics.py) plus this
worker's slots by state, read from the database at scrape time; with METRICS_TOKEN set it needs
`Authorization: Bearer <token>`, the probes never do.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import close_old_connections
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streaming import metrics
from webapp.metrics import token_accepted

logger = logging.getLogger(__name__)


class SlotCollector:
    """reverie_slots{pool,worker,state}: this worker's slots free, reserved or playing."""

    worker_pk: int | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from webapp.fleet.models import Slot  # models load after the app registry

        family = GaugeMetricFamily(
            "reverie_slots", "This worker's slots by state", labels=["pool", "worker", "state"]
        )
        pk = self.worker_pk
        if pk is not None:
            counts = {"free": 0, "reserved": 0, "playing": 0}
            try:
                for ticket_id, session_id in Slot.objects.filter(worker_id=pk).values_list(
                    "ticket_id", "session_id"
                ):
                    state = "playing" if session_id else "reserved" if ticket_id else "free"
                    counts[state] += 1
            finally:
                close_old_connections()
            names = metrics.labels()
            for state, count in counts.items():
                family.add_metric([names["pool"], names["worker"], state], count)
        yield family


_slots = SlotCollector()
REGISTRY.register(_slots)


def report_slots_of(worker_pk: int) -> None:
    """Which worker's slots reverie_slots counts (the one this process serves)."""
    _slots.worker_pk = worker_pk


class ObserveServer:
    """Serves the three endpoints on a thread of its own; `readiness` says ready or why not."""

    def __init__(self, address: str, port: int, readiness: Callable[[], tuple[bool, str]]):
        self.readiness = readiness
        self.server = ThreadingHTTPServer((address, port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="worker-observe", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        logger.info("worker health and metrics on port %d", self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        readiness = self.readiness

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._json(200, {"status": "ok"})
                elif path == "/readyz":
                    ready, state = readiness()
                    self._json(200 if ready else 503, {"status": state})
                elif path == "/metrics":
                    if not token_accepted(self.headers.get("Authorization")):
                        self._json(401, {"error": "metrics need the bearer token"})
                        return
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                else:
                    self._json(404, {"error": "not found"})

            def _json(self, status: int, body: dict) -> None:
                self._reply(status, "application/json", json.dumps(body).encode())

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass  # a probe every few seconds is not worth a log line

        return Handler
