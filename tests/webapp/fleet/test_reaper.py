from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import confirmed_session, make_worker
from webapp.fleet.models import Slot, Worker
from webapp.fleet.services import heartbeat, reap_workers
from webapp.play.models import PlaySession
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def silence(worker, seconds):
    Worker.objects.filter(pk=worker.pk).update(
        last_heartbeat=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_silent_worker_is_reaped_and_its_players_get_a_front_pass(world, owner, make_user):
    worker = make_worker(world.pool, slots=2)
    session = confirmed_session(world, owner, worker=worker)
    waiting = services.join(make_user(), world)
    waiting.refresh_from_db()
    assert waiting.state == Ticket.State.OFFERED
    silence(worker, 60)
    assert [w.pk for w in reap_workers()] == [worker.pk]
    session.refresh_from_db()
    waiting.refresh_from_db()
    worker.refresh_from_db()
    assert worker.state == Worker.State.LOST
    assert session.end_reason == PlaySession.EndReason.WORKER_LOST
    assert session.has_front_pass()
    assert not Slot.objects.filter(worker=worker).exists()
    # The offer on the lost worker goes back to waiting, keeping its place.
    assert waiting.state == Ticket.State.WAITING
    assert services.status(waiting).position == 1


def test_the_front_pass_puts_the_player_ahead_once(world, owner, make_user):
    worker = make_worker(world.pool, slots=1)
    session = confirmed_session(world, owner, worker=worker)
    others = [services.join(make_user(), world) for _ in range(2)]
    silence(worker, 60)
    reap_workers()
    session.refresh_from_db()
    again = services.join(owner, world, front_pass_session=session)
    assert again.front
    assert services.status(again).position == 1
    assert services.status(others[0]).position == 2
    services.leave(again)
    assert not services.join(owner, world, front_pass_session=session).front


def test_a_fresh_worker_is_left_alone(world):
    worker = make_worker(world.pool)
    silence(worker, 3)
    assert reap_workers() == []


def test_a_reaped_worker_cannot_come_back_by_heartbeating(world):
    worker = make_worker(world.pool)
    silence(worker, 60)
    reap_workers()
    assert heartbeat(worker) is False
