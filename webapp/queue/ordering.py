"""Who is served next: FIFO per tier, front passes first, and a share that keeps tiers fair."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from webapp.accounts.models import GroupPolicy
from webapp.queue.models import Ticket

# How many recent offers the share looks back on. Long enough to smooth, short enough that a
# burst of priority players an hour ago does not starve them now.
SHARE_WINDOW = 20


@dataclass(frozen=True)
class Waiting:
    id: int
    tier: int
    front: bool


def _recent_priority_offers(pool) -> tuple[int, int]:
    recent = list(
        Ticket.objects.filter(pool=pool, offered_at__isnull=False, front=False)
        .order_by("-offered_at")
        .values_list("tier", flat=True)[:SHARE_WINDOW]
    )
    priority = sum(1 for tier in recent if tier >= GroupPolicy.Tier.PRIORITY)
    return priority, len(recent) - priority


def merge_tiers(
    waiting: list[Waiting], share: float, priority_served: int, normal_served: int
) -> list[int]:
    """The order tickets would be served in if nobody new arrived.

    Within a tier the order is FIFO. Between tiers the priority tier gets the next offer while
    its share of recent offers would stay at or under `share`; so with any share below 1 the
    normal tier keeps moving.
    """
    fronts = [w.id for w in waiting if w.front]
    priority = deque(w.id for w in waiting if not w.front and w.tier >= GroupPolicy.Tier.PRIORITY)
    normal = deque(w.id for w in waiting if not w.front and w.tier < GroupPolicy.Tier.PRIORITY)
    order = fronts
    while priority or normal:
        if _priority_next(bool(priority), bool(normal), share, priority_served, normal_served):
            order.append(priority.popleft())
            priority_served += 1
        else:
            order.append(normal.popleft())
            normal_served += 1
    return order


def _priority_next(
    priority: bool, normal: bool, share: float, priority_served: int, normal_served: int
) -> bool:
    """Whether the priority tier takes the next offer: while its share would stay in bounds."""
    total = priority_served + normal_served + 1
    return priority and (not normal or (priority_served + 1) / total <= share)


def queue_order(pool) -> list[int]:
    """Primary keys of the pool's waiting tickets, next-served first."""
    waiting = [
        Waiting(id=row[0], tier=row[1], front=row[2])
        for row in Ticket.objects.filter(pool=pool, state=Ticket.State.WAITING)
        .order_by("-front", "created_at", "id")
        .values_list("id", "tier", "front")
    ]
    if not waiting:
        return []
    priority_served, normal_served = _recent_priority_offers(pool)
    return merge_tiers(waiting, pool.priority_share, priority_served, normal_served)


def next_in_line(pool) -> int | None:
    """The primary key of the ticket served next (`queue_order(pool)[0]`), read in a few
    one-row queries however long the line is, for the dispatcher that offers each free slot."""
    waiting = Ticket.objects.filter(pool=pool, state=Ticket.State.WAITING)
    first = waiting.order_by("-front", "created_at", "id").values_list("id", "front").first()
    if first is None or first[1]:
        return None if first is None else first[0]
    oldest = waiting.filter(front=False).order_by("created_at", "id")
    priority = oldest.filter(tier__gte=GroupPolicy.Tier.PRIORITY).values_list("id", flat=True)
    normal = oldest.filter(tier__lt=GroupPolicy.Tier.PRIORITY).values_list("id", flat=True)
    first_priority, first_normal = priority.first(), normal.first()
    served = _recent_priority_offers(pool)
    has_priority, has_normal = first_priority is not None, first_normal is not None
    if _priority_next(has_priority, has_normal, pool.priority_share, *served):
        return first_priority
    return first_normal
