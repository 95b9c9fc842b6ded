"""Several dispatcher processes race over the same slots; no slot goes to two players."""

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
from django.db import connection

from tests.conftest import make_worker
from tests.webapp.queue.race_child import dispatch_in_child
from webapp.fleet.models import Slot
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

DISPATCHERS = 4
SLOTS = 6


def test_racing_dispatchers_never_double_book(world, make_user):
    # Tickets first, slots after, so the racers (not join's own dispatch) hand out every slot.
    tickets = [services.join(make_user(), world) for _ in range(15)]
    for _ in range(SLOTS // 2):
        make_worker(world.pool, slots=2)
    start_at = time.time() + 3.0  # every child imported Django by then
    name = connection.settings_dict["NAME"]
    with ProcessPoolExecutor(DISPATCHERS, mp_context=get_context("spawn")) as executor:
        futures = [
            executor.submit(dispatch_in_child, name, world.pool.pk, start_at, 3)
            for _ in range(DISPATCHERS)
        ]
        results = [f.result(timeout=120) for f in futures]
    offered = [pk for result in results for pk in result]
    assert len(offered) == SLOTS, results
    assert len(set(offered)) == SLOTS
    reserved = list(Slot.objects.exclude(ticket=None).values_list("ticket_id", flat=True))
    assert sorted(reserved) == sorted(offered)
    states = Ticket.objects.filter(pk__in=[t.pk for t in tickets])
    assert states.filter(state=Ticket.State.OFFERED).count() == SLOTS
    # First come, first served: the six earliest tickets got the slots.
    assert sorted(offered) == sorted(t.pk for t in tickets[:SLOTS])
