"""Draining a worker: no new players, live sessions play on up to the bound, then end as a
worker shutdown with the front of the queue; SIGTERM's drain and admin's drain alike."""

from __future__ import annotations

import time

import pytest

from tests.conftest import confirmed_session
from tests.webapp.worker.conftest import wait_until_running
from webapp.fleet import services as fleet_services
from webapp.fleet.models import Worker
from webapp.play.models import PlaySession
from webapp.play.services import record_connection
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def playing(world, user, process, run_in_thread):
    session = confirmed_session(world, user, worker=process.worker)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    wait_until_running(session, thread)
    return session, thread, result


def test_a_sigterm_drain_takes_no_one_new_and_ends_sessions_at_the_bound(
    world, owner, make_user, process, run_in_thread
):
    session, thread, result = playing(world, owner, process, run_in_thread)
    started = time.monotonic()
    process.drain(1.5, exits=True)  # what rungpuworker does on Celery's warm shutdown
    assert Worker.objects.get(pk=process.worker.pk).state == Worker.State.DRAINING
    assert process.readiness() == (False, "draining")
    newcomer = services.join(make_user(), world)  # a free slot here, but a draining worker
    thread.join(5)
    took = time.monotonic() - started
    newcomer.refresh_from_db()
    session.refresh_from_db()
    assert result["reason"] == PlaySession.EndReason.WORKER_SHUTDOWN
    assert 1.4 <= took <= 3.5
    assert session.has_front_pass()
    assert newcomer.state == Ticket.State.WAITING


def test_admins_drain_honours_the_bound_without_stopping_the_worker_and_can_be_undone(
    world, owner, process, run_in_thread, settings
):
    settings.WORKER_DRAIN_SECONDS = 1
    settings.WORKER_HEARTBEAT_SECONDS = 0.2
    session, thread, result = playing(world, owner, process, run_in_thread)
    fleet_services.set_draining(process.worker, True)  # admin's "Drain" action
    thread.join(8)
    assert result["reason"] == PlaySession.EndReason.WORKER_SHUTDOWN
    session.refresh_from_db()
    assert session.has_front_pass()
    assert process.readiness() == (False, "draining") and not process.shutting_down.is_set()
    fleet_services.set_draining(process.worker, False)  # admin's "Enable"
    for _ in range(50):
        if process.readiness()[0]:
            break
        time.sleep(0.1)
    assert process.readiness() == (True, "ready")
    assert process.drain_deadline is None
