"""One queue reading per change serves every waiting page, and never one older than its event."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import confirmed_session, make_worker
from webapp.queue import services
from webapp.queue.dispatch import dispatch_pool
from webapp.queue.estimate import estimate_wait_seconds
from webapp.queue.models import Ticket
from webapp.queue.snapshot import snapshots

pytestmark = pytest.mark.django_db(transaction=True)


def queries_for_every_page(pool, tickets, event_id):
    """Queries spent telling every waiting page its place after one event, as the socket does."""
    with CaptureQueriesContext(connection) as context:
        places = [
            services.status(ticket, snapshots.get(pool, event_id)).position for ticket in tickets
        ]
    return len(context.captured_queries), places


def test_one_change_costs_the_same_queries_however_long_the_queue(world, make_user):
    tickets = [services.join(make_user(), world) for _ in range(40)]
    short_cost, short_places = queries_for_every_page(world.pool, tickets[:10], "change-1")
    long_cost, long_places = queries_for_every_page(world.pool, tickets, "change-2")
    assert short_places == list(range(1, 11))
    assert long_places == list(range(1, 41))
    assert long_cost == short_cost < 10


def test_a_page_woken_by_an_event_sees_the_change_behind_it(world, make_user):
    first, second = (services.join(make_user(), world) for _ in range(2))
    assert services.status(second, snapshots.get(world.pool, "joined")).position == 2
    services.leave(first)
    # The snapshot is young, but it was read before the event that says someone left.
    assert services.status(second, snapshots.get(world.pool, "left")).position == 1
    with CaptureQueriesContext(connection) as context:
        assert services.status(second, snapshots.get(world.pool, "left")).position == 1
    assert len(context.captured_queries) == 0


def test_a_heartbeat_notices_an_offer_whose_push_it_missed(world, make_user):
    ticket = services.join(make_user(), world)
    assert services.status(ticket, snapshots.get(world.pool)).position == 1
    make_worker(world.pool, slots=1)
    dispatch_pool(world.pool)
    # The heartbeat path: no event id, so the young snapshot is reused, but the row is read.
    ticket.refresh_from_db()
    shown = services.status(ticket, snapshots.get(world.pool), row_fresh=True)
    assert ticket.state == Ticket.State.OFFERED
    assert shown.state == Ticket.State.OFFERED and shown.position is None
    assert shown.offer_seconds_left is not None


def test_a_ticket_newer_than_the_snapshot_gets_its_place(world, make_user):
    services.join(make_user(), world)
    young = snapshots.get(world.pool)
    late = services.join(make_user(), world)
    assert late.id not in young.places
    assert services.status(late, young).position == 2


def test_every_place_gets_the_estimate_of_its_own_position(world, make_user):
    worker = make_worker(world.pool, slots=2)
    confirmed_session(world, make_user(), worker)
    for _ in range(5):
        services.join(make_user(), world)  # the first takes the free slot as an offer
    snapshot = snapshots.refresh(world.pool)
    assert sorted(place.position for place in snapshot.places.values()) == [1, 2, 3, 4]
    for place in snapshot.places.values():
        expected = estimate_wait_seconds(world.pool, place.position)
        assert place.estimated_wait == pytest.approx(expected, abs=0.2)
    by_position = sorted(snapshot.places.values(), key=lambda place: place.position)
    waits = [place.estimated_wait for place in by_position]
    assert waits == sorted(waits) and waits[-1] > waits[0]  # two slots: every second turn waits
