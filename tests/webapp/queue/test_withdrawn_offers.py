"""Offers taken back by a drain or a lost worker: nobody is double-booked, nobody loses a place."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import confirmed_session, make_worker
from webapp.fleet import services as fleet
from webapp.fleet.models import Slot, Worker
from webapp.play.models import PlaySession
from webapp.play.services import ConfirmError, confirm
from webapp.queue import services
from webapp.queue.estimate import estimate_wait_seconds
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def offered(world, user):
    ticket = services.join(user, world)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.OFFERED
    return ticket


def test_a_confirm_after_a_drain_gets_no_slot_and_keeps_the_place(world, owner):
    worker = make_worker(world.pool, slots=1)
    ticket = offered(world, owner)
    fleet.set_draining(worker, True)
    with pytest.raises(ConfirmError, match="withdrawn"):
        confirm(ticket)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.WAITING
    assert not PlaySession.objects.exists()
    assert Slot.objects.get(worker=worker).is_free


def test_a_confirm_whose_slot_vanished_returns_the_ticket_to_the_line(world, owner):
    worker = make_worker(world.pool, slots=1)
    ticket = offered(world, owner)
    Worker.objects.filter(pk=worker.pk).update(state=Worker.State.LOST)
    with pytest.raises(ConfirmError, match="keep your place"):
        confirm(ticket)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.WAITING
    assert not PlaySession.objects.exists()


def test_offers_left_without_a_slot_are_swept_back_to_waiting(world, owner):
    worker = make_worker(world.pool, slots=1)
    ticket = offered(world, owner)
    Slot.objects.filter(worker=worker).delete()
    assert services.return_orphaned_offers() == 1
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.WAITING


def test_a_heartbeat_that_lands_before_the_reap_saves_the_worker(world):
    worker = make_worker(world.pool)
    looked_at = timezone.now() - timedelta(seconds=1)  # the heartbeat is newer than this
    assert not fleet.retire_worker(
        worker, Worker.State.LOST, PlaySession.EndReason.WORKER_LOST, stale_before=looked_at
    )
    worker.refresh_from_db()
    assert worker.state == Worker.State.READY


def test_draining_a_pool_takes_back_outstanding_offers(world, owner):
    make_worker(world.pool, slots=1)
    ticket = offered(world, owner)
    fleet.set_pool_state(world.pool, draining=True)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.WAITING


def test_a_front_pass_moves_an_existing_ticket_to_the_front(world, owner, make_user):
    worker = make_worker(world.pool, slots=1)
    session = confirmed_session(world, owner, worker=worker)
    Worker.objects.filter(pk=worker.pk).update(last_heartbeat=timezone.now() - timedelta(60))
    fleet.reap_workers()
    session.refresh_from_db()
    others = [services.join(make_user(), world) for _ in range(2)]
    mine = services.join(owner, world)
    assert services.status(mine).position == 3
    mine = services.join(owner, world, front_pass_session=session)
    assert mine.front and services.status(mine).position == 1
    assert services.status(others[0]).position == 2


def test_someone_elses_front_pass_does_nothing_for_an_outsider(client, world, owner, outsider):
    worker = make_worker(world.pool, slots=1)
    session = confirmed_session(world, owner, worker=worker)
    fleet.retire_worker(worker, Worker.State.LOST, PlaySession.EndReason.WORKER_LOST)
    client.force_login(outsider)
    from django.urls import reverse

    assert client.post(reverse("queue-rejoin", args=[session.public_id])).status_code == 404
    assert not Ticket.objects.filter(user=outsider).exists()


def test_a_slot_held_for_an_offer_counts_as_a_coming_session(world, owner, make_user):
    make_worker(world.pool, slots=1)
    offered(world, owner)
    assert estimate_wait_seconds(world.pool, 1) == pytest.approx(world.pool.session_seconds)
