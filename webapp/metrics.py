"""The web tier's Prometheus metrics at /metrics, computed from the database at scrape time.

The database is the source of truth for tickets and sessions, and every gunicorn process (and
every web pod) reads the same rows, so each scrape anywhere returns the service-wide figures:
no per-process counters to add up, no multiprocess directory. Counters are counts of rows that
only ever grow (ended sessions by reason, tickets ever offered, confirmed, expired); the wait
histogram counts tickets by how long they waited for their (latest) offer.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


def token_accepted(header: str | None) -> bool:
    """Whether an Authorization header passes METRICS_TOKEN (anything passes when unset).

    The web tier's /metrics and every worker's (webapp/worker/observe.py) ask the same."""
    token = settings.METRICS_TOKEN
    if not token:
        return True
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())


class ServiceCollector:
    def collect(self):
        from webapp.fleet.models import GpuPool

        slugs = dict(GpuPool.objects.values_list("pk", "slug"))
        yield from self._queue(slugs)
        yield from self._sessions(slugs)
        yield from self._workers(slugs)
        yield self._waits(slugs)

    def _queue(self, slugs: dict[int, str]):
        from webapp.queue.models import Ticket

        waiting = GaugeMetricFamily("reverie_queue_waiting", "Players waiting", labels=["pool"])
        offers = CounterMetricFamily("reverie_offers", "Tickets offered a slot", labels=["pool"])
        confirms = CounterMetricFamily(
            "reverie_confirms", "Offers confirmed (sessions started)", labels=["pool"]
        )
        expiries = CounterMetricFamily(
            "reverie_offer_expiries", "Offers missed (confirm window over)", labels=["pool"]
        )
        rows = Ticket.objects.values("pool").annotate(
            waiting=Count("id", filter=Q(state=Ticket.State.WAITING)),
            offered=Count("id", filter=Q(offered_at__isnull=False)),
            confirmed=Count("id", filter=Q(state=Ticket.State.CONFIRMED)),
            expired=Count("id", filter=Q(state=Ticket.State.EXPIRED)),
        )
        found = {row["pool"]: row for row in rows}
        for pk, slug in slugs.items():
            row = found.get(pk, defaultdict(int))
            waiting.add_metric([slug], row["waiting"])
            offers.add_metric([slug], row["offered"])
            confirms.add_metric([slug], row["confirmed"])
            expiries.add_metric([slug], row["expired"])
        yield from (waiting, offers, confirms, expiries)

    def _sessions(self, slugs: dict[int, str]):
        from webapp.play.models import PlaySession

        live = GaugeMetricFamily("reverie_sessions_live", "Sessions playing", labels=["pool"])
        ends = CounterMetricFamily(
            "reverie_session_ends", "Sessions ended, by reason", labels=["pool", "reason"]
        )
        live_counts = dict(
            PlaySession.objects.filter(state__in=PlaySession.LIVE_STATES)
            .values_list("pool")
            .annotate(n=Count("id"))
        )
        ended: dict[tuple[int, str], int] = {
            (row["pool"], row["end_reason"]): row["n"]
            for row in PlaySession.objects.filter(state=PlaySession.State.ENDED)
            .values("pool", "end_reason")
            .annotate(n=Count("id"))
        }
        for pk, slug in slugs.items():
            live.add_metric([slug], live_counts.get(pk, 0))
            for reason in PlaySession.EndReason.values:
                ends.add_metric([slug, reason], ended.get((pk, reason), 0))
        yield from (live, ends)

    def _workers(self, slugs: dict[int, str]):
        from webapp.fleet.models import Worker

        family = GaugeMetricFamily(
            "reverie_workers",
            "Workers by state (live: ready and heard from)",
            labels=["pool", "state"],
        )
        current = [Worker.State.WARMING, Worker.State.READY, Worker.State.DRAINING]
        counts = {
            (row["pool"], row["state"]): row["n"]
            for row in Worker.objects.filter(state__in=current)
            .values("pool", "state")
            .annotate(n=Count("id"))
        }
        live = dict(Worker.objects.live().values_list("pool").annotate(n=Count("id")))
        for pk, slug in slugs.items():
            for state in current:
                family.add_metric([slug, state], counts.get((pk, state), 0))
            family.add_metric([slug, "live"], live.get(pk, 0))
        return [family]

    def _waits(self, slugs: dict[int, str]) -> HistogramMetricFamily:
        from webapp.queue.models import Ticket

        family = HistogramMetricFamily(
            "reverie_queue_wait_seconds",
            "Seconds from joining the queue to the (latest) offer",
            labels=["pool"],
        )
        wait = ExpressionWrapper(F("offered_at") - F("created_at"), output_field=DurationField())
        buckets: dict[str, Any] = {
            f"le{b}": Count("id", filter=Q(wait__lte=timedelta(seconds=b))) for b in WAIT_BUCKETS
        }
        rows = (
            Ticket.objects.filter(offered_at__isnull=False)
            .annotate(wait=wait)
            .values("pool")
            .annotate(total=Count("id"), seconds=Sum("wait"), **buckets)
        )
        found = {row["pool"]: row for row in rows}
        for pk, slug in slugs.items():
            row = found.get(pk)
            total = row["total"] if row else 0
            cumulative = [(str(float(b)), row[f"le{b}"] if row else 0) for b in WAIT_BUCKETS]
            seconds = row["seconds"].total_seconds() if row and row["seconds"] else 0.0
            family.add_metric([slug], cumulative + [("+Inf", total)], seconds)
        return family


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not token_accepted(request.headers.get("Authorization")):
        return HttpResponse("metrics need the bearer token\n", status=401)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
