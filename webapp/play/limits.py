"""Daily allowances per user group, enforced on the server from recorded sessions."""

from __future__ import annotations

from datetime import datetime, time

from django.utils import timezone

from webapp.play.models import PlaySession


class LimitReached(Exception):
    """The player has used today's allowance; the message says which one."""


def start_of_today(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


# Sessions the player did not end and could not help: they do not use up the day's count.
NOT_THE_PLAYERS_DOING = (
    PlaySession.EndReason.WORKER_LOST,
    PlaySession.EndReason.WORKER_SHUTDOWN,
    PlaySession.EndReason.ERROR,
)


def usage_today(user, now=None) -> tuple[int, float]:
    """Sessions counted today and seconds played today (minutes count whatever ended them)."""
    now = now or timezone.now()
    sessions = list(PlaySession.objects.filter(user=user, created_at__gte=start_of_today(now)))
    counted = [
        s
        for s in sessions
        if s.started_at is not None and s.end_reason not in NOT_THE_PLAYERS_DOING
    ]
    return len(counted), sum(s.played_seconds(now) for s in sessions)


def remaining_seconds(user, now=None) -> float:
    """Seconds the player may still play today, after checking the session count."""
    policy = user.policy()
    count, seconds = usage_today(user, now)
    if count >= policy.sessions_per_day:
        raise LimitReached(f"You have played {count} sessions today, the daily limit.")
    left = policy.minutes_per_day * 60 - seconds
    if left < 1:
        raise LimitReached(f"You have used today's {policy.minutes_per_day} minutes of play.")
    return left


def check_allowance(user) -> None:
    remaining_seconds(user)
