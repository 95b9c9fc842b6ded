"""Play sessions: one player on one slot for a bounded time, with the reason it ended."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class PlaySession(models.Model):
    """A player's session on a worker slot; limits are enforced from these server-side times."""

    class State(models.TextChoices):
        STARTING = "starting", "starting"
        RUNNING = "running", "running"
        ENDED = "ended", "ended"

    class EndReason(models.TextChoices):
        TIME_UP = "time_up", "time is up"
        IDLE = "idle", "no input for too long"
        LEFT = "left", "you left"
        DISCONNECTED = "disconnected", "connection lost"
        WORKER_LOST = "worker_lost", "the worker was lost"
        WORKER_SHUTDOWN = "worker_shutdown", "the worker shut down"
        ADMIN_ENDED = "admin_ended", "ended by operator"
        ERROR = "error", "an error ended the session"

    LIVE_STATES = (State.STARTING, State.RUNNING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="play_sessions"
    )
    world = models.ForeignKey("worlds.World", on_delete=models.PROTECT, related_name="sessions")
    pool = models.ForeignKey("fleet.GpuPool", on_delete=models.PROTECT, related_name="sessions")
    worker = models.ForeignKey(
        "fleet.Worker", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    ticket = models.OneToOneField(
        "queue.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="session"
    )
    slot_index = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.STARTING)
    allowed_seconds = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    last_input_at = models.DateTimeField(null=True, blank=True)
    # Open play pages (a player may have two tabs); zero starts the disconnect grace period.
    client_connections = models.PositiveIntegerField(default=0)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    front_pass_until = models.DateTimeField(null=True, blank=True)
    front_pass_used = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["pool", "state"]),
            models.Index(fields=["user", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.world} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES

    def seconds_left(self, now=None) -> float | None:
        if self.deadline is None:
            return None if self.is_live else 0.0
        now = now or timezone.now()
        return max(0.0, (self.deadline - now).total_seconds())

    def played_seconds(self, now=None) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at or now or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    def has_front_pass(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.front_pass_until is not None
            and not self.front_pass_used
            and self.front_pass_until > now
        )


def front_pass_deadline():
    return timezone.now() + timedelta(seconds=settings.QUEUE_FRONT_PASS_SECONDS)
