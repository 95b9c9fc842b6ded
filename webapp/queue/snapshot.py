"""One computation of a pool's queue serves every waiting page of a web process.

Each waiting page used to recompute the whole queue order on every change (and on every
heartbeat): W pages times an O(W) computation, so the cost of one change grew with the square of
the queue. Now a process computes a pool's snapshot once per change and each page reads its own
line from it; a change reaches each page as an event with an id, and a snapshot knows which
events had arrived before it was computed, so a page never shows a place older than the event
that woke it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from webapp.queue.estimate import estimate_turns
from webapp.queue.ordering import queue_order

logger = logging.getLogger(__name__)

# A heartbeat's reply may reuse a snapshot this young; changes are pushed as events anyway, so
# this only bounds how stale an estimate can get between changes.
HEARTBEAT_MAX_AGE = 2.0
# Event ids a snapshot remembers; far more than the events a process handles in MAX_AGE.
REMEMBERED_EVENTS = 512


@dataclass(frozen=True)
class Place:
    position: int
    estimated_wait: float | None


@dataclass(frozen=True)
class PoolSnapshot:
    """A pool's waiting line at one moment: the place of each waiting ticket (by primary key)."""

    places: dict[int, Place]
    waiting: int
    capacity: int
    computed_at: float  # time.monotonic() when the reading began


def compute(pool, now=None) -> PoolSnapshot:
    """The pool's order, capacity and every position's estimate, in a few queries."""
    started = time.monotonic()
    order = queue_order(pool)
    turns = estimate_turns(pool, len(order), now) if order else []
    places = {
        ticket_id: Place(index + 1, None if turns is None else round(turns[index], 1))
        for index, ticket_id in enumerate(order)
    }
    capacity = pool.live_slots().count()
    return PoolSnapshot(places, waiting=len(order), capacity=capacity, computed_at=started)


@dataclass
class _Entry:
    snapshot: PoolSnapshot
    events: deque[str]


class SnapshotCache:
    """The latest snapshot of each pool in this process, and the events it already reflects."""

    def __init__(self, max_age: float = HEARTBEAT_MAX_AGE) -> None:
        self.max_age = max_age
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, pool, event_id: str | None = None) -> PoolSnapshot:
        """A snapshot computed after `event_id` arrived; without one, any snapshot young enough."""
        with self._lock:
            entry = self._entries.get(pool.pk)
            if entry is not None and self._covers(entry, event_id):
                return entry.snapshot
        return self.refresh(pool, event_id)

    def refresh(self, pool, event_id: str | None = None) -> PoolSnapshot:
        """Compute the pool's snapshot now; it reflects every event that has arrived so far."""
        with self._lock:
            entry = self._entries.get(pool.pk)
            seen = list(entry.events) if entry is not None else []
        if event_id is not None:
            seen.append(event_id)
        snapshot = compute(pool)
        with self._lock:
            current = self._entries.get(pool.pk)
            if current is not None and current.snapshot.computed_at > snapshot.computed_at:
                return snapshot  # a newer one landed while this was computed
            # Ids that arrived during the computation stay out: it may predate their change.
            self._entries[pool.pk] = _Entry(snapshot, deque(seen, maxlen=REMEMBERED_EVENTS))
        return snapshot

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _covers(self, entry: _Entry, event_id: str | None) -> bool:
        if event_id is None:
            return time.monotonic() - entry.snapshot.computed_at <= self.max_age
        return event_id in entry.events


snapshots = SnapshotCache()
