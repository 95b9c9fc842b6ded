"""Queue tickets: the database is the source of truth for every player's place."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Ticket(models.Model):
    """One player's place in one pool's queue, from joining until offered, confirmed or gone."""

    class State(models.TextChoices):
        WAITING = "waiting", "waiting"
        OFFERED = "offered", "offered a slot"
        CONFIRMED = "confirmed", "confirmed"
        LEFT = "left", "left the queue"
        EXPIRED = "expired", "missed the confirm"
        DROPPED = "dropped", "browser gone"
        REFUSED = "refused", "over the daily limit"

    ACTIVE_STATES = (State.WAITING, State.OFFERED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tickets"
    )
    world = models.ForeignKey("worlds.World", on_delete=models.CASCADE, related_name="tickets")
    pool = models.ForeignKey("fleet.GpuPool", on_delete=models.CASCADE, related_name="tickets")
    tier = models.IntegerField(default=0)
    # A player whose session was lost to a dead worker rejoins ahead of everyone.
    front = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-front", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(state__in=["waiting", "offered"]),
                name="queue_one_active_ticket_per_user",
            ),
        ]
        indexes = [
            models.Index(fields=["pool", "state", "created_at"]),
            models.Index(fields=["pool", "offered_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.pool} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES
