"""Liveness and readiness for orchestrators and load balancers: /healthz and /readyz (JSON).

/healthz: the process answers (200). /readyz: 200 when the database and Redis both answer,
503 naming the failed check otherwise; it also lists each pool's live workers, which do not
decide readiness (the web tier serves the queue and lobby with no worker at all).

/metrics (webapp/metrics.py) is answered here too, as Prometheus scrapes pods by IP. All three
are answered by a middleware ahead of every other, so a probe that addresses the pod or host by
IP (not an ALLOWED_HOSTS name) is answered rather than refused with a 400, and no session, CSRF
or login applies. They reveal nothing but check names and counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 1.0  # a probe must answer before the orchestrator's own timeout


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            return readiness()
        if request.path == "/metrics":
            from webapp.metrics import metrics_view  # imports models: after the app registry

            return metrics_view(request)
        return self.get_response(request)


def readiness() -> JsonResponse:
    checks = {"database": _check(_database), "redis": _check(_redis)}
    ready = all(check["ok"] for check in checks.values())
    body: dict = {"status": "ready" if ready else "not ready", "checks": checks}
    if checks["database"]["ok"]:
        body["pools"] = _pools()
    return JsonResponse(body, status=200 if ready else 503)


def _check(probe: Callable[[], None]) -> dict:
    try:
        probe()
    except Exception as exc:  # the reason goes to the operator, in the log and the reply
        logger.warning("readiness check %s failed: %s", probe.__name__.strip("_"), exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def _pools() -> dict:
    from webapp.fleet.models import GpuPool, Worker  # models load after the app registry

    live = Worker.objects.live()
    return {
        pool.slug: {
            "live_workers": live.filter(pool=pool).count(),
            "accepting_players": pool.accepts_players(),
        }
        for pool in GpuPool.objects.order_by("slug")
    }
