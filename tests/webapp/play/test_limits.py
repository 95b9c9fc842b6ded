from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from webapp.accounts.models import GroupPolicy
from webapp.play import limits
from webapp.play.models import PlaySession
from webapp.queue import services

pytestmark = pytest.mark.django_db


def played(user, world, seconds):
    now = timezone.now()
    return PlaySession.objects.create(
        user=user,
        world=world,
        pool=world.pool,
        allowed_seconds=300,
        state=PlaySession.State.ENDED,
        started_at=now - timedelta(seconds=seconds),
        ended_at=now,
        end_reason=PlaySession.EndReason.TIME_UP,
    )


def limited_group(user, sessions, minutes):
    group = Group.objects.create(name=f"limited-{user.pk}")
    GroupPolicy.objects.create(group=group, sessions_per_day=sessions, minutes_per_day=minutes)
    user.groups.add(group)


def test_sessions_per_day_are_enforced_when_joining(world, owner):
    limited_group(owner, sessions=2, minutes=60)
    played(owner, world, 10)
    played(owner, world, 10)
    with pytest.raises(limits.LimitReached, match="2 sessions today"):
        services.join(owner, world)


def test_minutes_per_day_are_enforced(world, owner):
    limited_group(owner, sessions=10, minutes=5)
    played(owner, world, 300)
    with pytest.raises(limits.LimitReached, match="5 minutes"):
        limits.check_allowance(owner)


def test_the_last_session_of_the_day_is_cut_to_what_is_left(world, owner):
    limited_group(owner, sessions=10, minutes=5)
    played(owner, world, 200)
    assert limits.remaining_seconds(owner) == pytest.approx(100, abs=2)


def test_yesterdays_play_does_not_count(world, owner):
    limited_group(owner, sessions=1, minutes=5)
    old = played(owner, world, 300)
    PlaySession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    limits.check_allowance(owner)


def test_the_most_generous_group_wins(world, owner):
    limited_group(owner, sessions=1, minutes=5)
    group = Group.objects.create(name="generous")
    GroupPolicy.objects.create(group=group, sessions_per_day=9, minutes_per_day=90)
    owner.groups.add(group)
    assert owner.policy().sessions_per_day == 9


def test_sessions_lost_to_a_worker_do_not_use_up_the_day(world, owner):
    limited_group(owner, sessions=1, minutes=60)
    lost = played(owner, world, 30)
    PlaySession.objects.filter(pk=lost.pk).update(end_reason=PlaySession.EndReason.WORKER_LOST)
    limits.check_allowance(owner)


def test_a_player_over_the_limit_is_refused_at_confirm(world, owner):
    from tests.conftest import make_worker
    from webapp.play.services import ConfirmError, confirm
    from webapp.queue.models import Ticket

    make_worker(world.pool, slots=1)
    limited_group(owner, sessions=1, minutes=60)
    ticket = services.join(owner, world)
    played(owner, world, 10)  # a session finished in another tab meanwhile
    ticket.refresh_from_db()
    with pytest.raises(ConfirmError, match="daily limit"):
        confirm(ticket)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.REFUSED
