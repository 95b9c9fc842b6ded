"""The web tier's /metrics: real figures from real tickets and sessions, read by a real parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import confirmed_session, make_world
from webapp.play.models import PlaySession
from webapp.play.services import end_session
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)  # offers are made on commit


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_HOST="10.0.0.7:8000", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_queue_sessions_ends_and_waits_after_a_real_session(
    client, world, owner, make_user
):
    session = confirmed_session(world, owner)  # joined, offered, confirmed
    end_session(session, PlaySession.EndReason.TIME_UP)  # its slot is free again
    playing = confirmed_session(make_world(world.pool, "forest", "Forest"), make_user())
    for _ in range(2):
        services.join(make_user(), world)  # the first takes the free slot's offer
    assert Ticket.objects.filter(state=Ticket.State.WAITING).count() == 1

    seen = scrape(client)
    pool = (("pool", "test"),)
    assert seen[("reverie_queue_waiting", pool)] == 1
    assert seen[("reverie_sessions_live", pool)] == 1
    assert seen[("reverie_session_ends_total", (("pool", "test"), ("reason", "time_up")))] == 1
    assert seen[("reverie_session_ends_total", (("pool", "test"), ("reason", "idle")))] == 0
    assert seen[("reverie_confirms_total", pool)] == 2
    assert seen[("reverie_offers_total", pool)] == 3
    assert seen[("reverie_offer_expiries_total", pool)] == 0
    # Every offer came within a second of joining.
    assert seen[("reverie_queue_wait_seconds_count", pool)] == 3
    assert seen[("reverie_queue_wait_seconds_bucket", (("le", "1.0"), ("pool", "test")))] == 3
    assert 0 <= seen[("reverie_queue_wait_seconds_sum", pool)] < 3
    assert seen[("reverie_workers", (("pool", "test"), ("state", "ready")))] == 2
    assert playing.state == PlaySession.State.STARTING


def test_metrics_need_the_bearer_token_when_one_is_set(client, world, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    seen = scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me")
    assert seen[("reverie_queue_waiting", (("pool", "test"),))] == 0
    assert client.get("/healthz").status_code == 200  # probes never need it
