"""Estimated waits from measured session lengths and live capacity, never from a constant."""

from __future__ import annotations

import heapq

from django.db.models import F
from django.utils import timezone

from webapp.play.models import PlaySession

# Recent sessions that make the average; old enough ones stop describing today's players.
SAMPLE_SIZE = 50


def typical_session_seconds(pool) -> float:
    """Mean length of the pool's recent finished sessions; the limit when none were measured."""
    durations = (
        PlaySession.objects.filter(
            pool=pool, state=PlaySession.State.ENDED, started_at__isnull=False
        )
        .order_by("-ended_at")
        .annotate(length=F("ended_at") - F("started_at"))
        .values_list("length", flat=True)[:SAMPLE_SIZE]
    )
    lengths = sorted(d.total_seconds() for d in durations)
    if not lengths:
        return float(pool.session_seconds)
    # The median: a few sessions that crashed after seconds should not halve every estimate.
    middle = len(lengths) // 2
    return lengths[middle] if len(lengths) % 2 else (lengths[middle - 1] + lengths[middle]) / 2


def slot_free_times(pool, typical: float, now=None) -> list[float] | None:
    """Seconds until each live slot frees: 0 when free, else the session's expected remainder."""
    now = now or timezone.now()
    slots = list(pool.live_slots().select_related("session"))
    if not slots:
        return None
    times = []
    for slot in slots:
        session = slot.session
        if slot.ticket_id is not None:
            # Reserved for an offer: most offers are taken, and then a whole session follows.
            times.append(typical)
            continue
        if session is None:
            times.append(0.0)
            continue
        played = session.played_seconds(now)
        by_habit = max(0.0, typical - played)
        by_limit = session.seconds_left(now)
        times.append(min(by_habit, by_limit) if by_limit is not None else by_habit)
    return times


def estimate_turns(pool, count: int, now=None) -> list[float] | None:
    """Expected seconds until each of the next `count` players gets a slot; None if no capacity.

    Each slot frees at its own expected time and then serves back-to-back sessions of the
    typical length; the n-th slot-freeing event is the n-th player's turn. One pass serves every
    position, so the whole queue costs O(count log slots), not a pass per waiting player.
    """
    typical = typical_session_seconds(pool)
    times = slot_free_times(pool, typical, now)
    if times is None:
        return None
    heapq.heapify(times)
    turns = []
    for _ in range(count):
        turn = heapq.heappop(times)
        heapq.heappush(times, turn + typical)
        turns.append(turn)
    return turns


def estimate_wait_seconds(pool, position: int, now=None) -> float | None:
    """Seconds until the player at `position` (1 = next) gets a slot; None if no capacity."""
    if position < 1:
        return 0.0
    turns = estimate_turns(pool, position, now)
    return None if turns is None else turns[-1]
