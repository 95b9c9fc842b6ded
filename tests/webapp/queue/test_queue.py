"""Joining, position, fairness, confirm timeout and heartbeat loss, on the real database."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.utils import timezone

from tests.conftest import make_worker, make_world
from webapp.accounts.models import GroupPolicy
from webapp.fleet.models import Slot
from webapp.play.models import PlaySession
from webapp.play.services import ConfirmError, confirm
from webapp.queue import services
from webapp.queue.dispatch import dispatch_pool
from webapp.queue.models import Ticket
from webapp.queue.ordering import next_in_line, queue_order

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_player_holds_one_active_ticket(world, owner):
    first = services.join(owner, world)
    assert services.join(owner, world) == first
    other = make_world(world.pool, slug="forest", name="Forest")
    with pytest.raises(services.QueueError, match="already queued"):
        services.join(owner, other)
    assert Ticket.objects.filter(user=owner).count() == 1


def test_positions_move_up_as_earlier_players_leave(world, make_user):
    players = [make_user() for _ in range(3)]
    tickets = [services.join(p, world) for p in players]
    assert [services.status(t).position for t in tickets] == [1, 2, 3]
    services.leave(tickets[0])
    assert services.status(tickets[2]).position == 2
    assert services.status(tickets[2]).waiting == 2
    assert services.status(tickets[0]).position is None


def test_a_free_slot_is_offered_to_the_first_in_line(world, make_user):
    first, second = services.join(make_user(), world), services.join(make_user(), world)
    make_worker(world.pool, slots=1)
    dispatch_pool(world.pool)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == Ticket.State.OFFERED
    assert second.state == Ticket.State.WAITING
    assert Slot.objects.get(ticket=first)


@override_settings(QUEUE_CONFIRM_SECONDS=20)
def test_a_missed_confirm_drops_the_ticket_and_the_slot_goes_on(world, make_user):
    make_worker(world.pool, slots=1)
    first, second = services.join(make_user(), world), services.join(make_user(), world)
    first.refresh_from_db()
    assert first.state == Ticket.State.OFFERED
    later = timezone.now() + timedelta(seconds=21)
    assert services.expire_offers(now=later) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == Ticket.State.EXPIRED
    assert second.state == Ticket.State.OFFERED
    with pytest.raises(ConfirmError):
        confirm(first)


@override_settings(QUEUE_HEARTBEAT_TIMEOUT=30)
def test_a_browser_that_stops_heartbeating_loses_the_ticket(world, owner, make_user):
    stale = services.join(owner, world)
    fresh = services.join(make_user(), world)
    Ticket.objects.filter(pk=stale.pk).update(last_seen=timezone.now() - timedelta(seconds=31))
    assert services.drop_gone_browsers() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.state == Ticket.State.DROPPED
    assert fresh.state == Ticket.State.WAITING


@override_settings(QUEUE_HEARTBEAT_TIMEOUT=30)
def test_a_heartbeat_keeps_the_place(world, owner):
    ticket = services.join(owner, world)
    Ticket.objects.filter(pk=ticket.pk).update(last_seen=timezone.now() - timedelta(seconds=29))
    services.heartbeat(ticket)
    assert services.drop_gone_browsers(now=timezone.now() + timedelta(seconds=5)) == 0


def test_confirming_starts_a_session_on_the_reserved_slot(world, owner):
    worker = make_worker(world.pool, slots=1)
    ticket = services.join(owner, world)
    ticket.refresh_from_db()
    session = confirm(ticket)
    slot = Slot.objects.get(worker=worker)
    assert slot.session == session and slot.ticket is None
    assert session.state == PlaySession.State.STARTING
    assert session.allowed_seconds == world.pool.session_seconds


def test_the_priority_tier_shares_slots_with_the_normal_tier(world, make_user):
    group = Group.objects.create(name="supporters")
    GroupPolicy.objects.create(group=group, tier=GroupPolicy.Tier.PRIORITY)
    normal = [services.join(make_user(), world) for _ in range(2)]
    vip_users = [make_user() for _ in range(2)]
    for user in vip_users:
        user.groups.add(group)
    vips = [services.join(user, world) for user in vip_users]
    assert all(t.tier == GroupPolicy.Tier.PRIORITY for t in vips)
    order = [services.status(t).position for t in normal + vips]
    # share 0.5 alternates: normal first (it joined first), then a priority player, ...
    assert order == [1, 3, 2, 4]


def test_the_estimate_follows_measured_sessions_and_live_capacity(world, owner, make_user):
    worker = make_worker(world.pool, slots=1)
    now = timezone.now()
    for minutes in (2, 4):
        PlaySession.objects.create(
            user=make_user(),
            world=world,
            pool=world.pool,
            allowed_seconds=300,
            state=PlaySession.State.ENDED,
            started_at=now - timedelta(minutes=minutes),
            ended_at=now,
            end_reason=PlaySession.EndReason.LEFT,
        )
    playing = PlaySession.objects.create(
        user=make_user(),
        world=world,
        pool=world.pool,
        worker=worker,
        allowed_seconds=300,
        state=PlaySession.State.RUNNING,
        started_at=now - timedelta(seconds=60),
        deadline=now + timedelta(seconds=240),
    )
    Slot.objects.filter(worker=worker).update(session=playing)
    ticket = services.join(owner, world)
    estimate = services.status(ticket).estimated_wait
    # Typical session 180 s, the current one is 60 s in: about 120 s left.
    assert 115 <= estimate <= 125
    make_worker(world.pool, slots=1)
    dispatch_pool(world.pool)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.OFFERED


def test_without_live_capacity_the_estimate_says_so(world, owner):
    ticket = services.join(owner, world)
    status = services.status(ticket)
    assert status.capacity == 0
    assert status.estimated_wait is None


def test_a_draining_pool_takes_no_one(world, owner):
    world.pool.draining = True
    world.pool.save()
    with pytest.raises(services.QueueError, match="not taking players"):
        services.join(owner, world)


@pytest.mark.parametrize("share", [0.25, 0.5, 0.75])
def test_the_next_in_line_is_the_head_of_the_whole_order_at_every_step(world, make_user, share):
    world.pool.priority_share = share
    world.pool.save()
    group = Group.objects.create(name="supporters")
    GroupPolicy.objects.create(group=group, tier=GroupPolicy.Tier.PRIORITY)
    for n in range(14):
        user = make_user()
        if n % 3 != 1:
            user.groups.add(group)
        ticket = services.join(user, world)
        if n in (5, 9):
            Ticket.objects.filter(pk=ticket.pk).update(front=True)
    heads = []
    while order := queue_order(world.pool):
        assert next_in_line(world.pool) == order[0]
        heads.append(order[0])
        # Served: the offer history the share looks back on grows by one.
        Ticket.objects.filter(pk=order[0]).update(
            state=Ticket.State.OFFERED, offered_at=timezone.now()
        )
    assert next_in_line(world.pool) is None and len(heads) == 14
