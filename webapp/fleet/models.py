"""The GPU fleet: pools of workers, each worker owning a few play slots."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


# Module-level callables (migrations cannot serialise lambdas): new pools take the site defaults.
def default_session_seconds() -> int:
    return settings.SESSION_SECONDS


def default_idle_seconds() -> int:
    return settings.SESSION_IDLE_SECONDS


def default_idle_warning_seconds() -> int:
    return settings.SESSION_IDLE_WARNING_SECONDS


def default_disconnect_grace() -> int:
    return settings.SESSION_DISCONNECT_GRACE


def default_priority_share() -> float:
    return settings.QUEUE_PRIORITY_SHARE


def stored_checkpoint(path: str) -> str:
    """How a pool stores a model path: relative to MODELS_DIR when the file is inside it."""
    if not path:
        return ""
    try:
        return str(Path(path).resolve().relative_to(Path(settings.MODELS_DIR).resolve()))
    except ValueError:
        return path  # elsewhere: kept as given


def resolve_checkpoint(stored: str) -> str:
    """The stored checkpoint as a path on this host: relative ones are under MODELS_DIR."""
    if not stored or Path(stored).is_absolute():
        return stored
    return str(Path(settings.MODELS_DIR) / stored)


class GpuPool(models.Model):
    """A set of workers that run one model with one set of session limits."""

    class Device(models.TextChoices):
        CPU = "cpu", "CPU"
        CUDA = "cuda", "CUDA GPU"

    class Codec(models.TextChoices):
        VP8 = "vp8", "VP8"
        H264 = "h264", "H.264"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    checkpoint = models.CharField(
        max_length=500, blank=True, help_text="the model file, relative to MODELS_DIR (or absolute)"
    )
    device_kind = models.CharField(max_length=8, choices=Device.choices, default=Device.CPU)
    slots_per_worker = models.PositiveIntegerField(default=2)
    session_seconds = models.PositiveIntegerField(default=default_session_seconds)
    idle_seconds = models.PositiveIntegerField(default=default_idle_seconds)
    idle_warning_seconds = models.PositiveIntegerField(default=default_idle_warning_seconds)
    disconnect_grace_seconds = models.PositiveIntegerField(default=default_disconnect_grace)
    frame_rate = models.PositiveIntegerField(default=20)
    codec = models.CharField(max_length=8, choices=Codec.choices, default=Codec.VP8)
    priority_share = models.FloatField(
        default=default_priority_share,
        # Below 1, so the normal tier keeps moving however many priority players wait.
        validators=[MinValueValidator(0.0), MaxValueValidator(0.95)],
        help_text="share of offers that go to the priority tier while both tiers wait (0-0.95)",
    )
    enabled = models.BooleanField(default=True)
    draining = models.BooleanField(default=False)

    class Meta:
        verbose_name = "GPU pool"

    def __str__(self) -> str:
        return self.name

    def clean(self):
        longest = self.session_seconds + self.disconnect_grace_seconds
        if longest >= settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]:
            raise ValidationError(
                {
                    "session_seconds": (
                        "Sessions this long outlast the broker's visibility timeout "
                        "(CELERY_VISIBILITY_TIMEOUT); the task would be delivered twice."
                    )
                }
            )
        if self.idle_warning_seconds >= self.idle_seconds:
            raise ValidationError({"idle_warning_seconds": "Must be below the idle timeout."})

    def checkpoint_path(self) -> str:
        """The checkpoint as a path on this host ("" when the pool has none)."""
        return resolve_checkpoint(self.checkpoint)

    def live_slots(self) -> models.QuerySet[Slot]:
        """Slots of workers that are ready and heard from recently."""
        return Slot.objects.filter(worker__in=Worker.objects.live().filter(pool=self))

    def accepts_players(self) -> bool:
        return self.enabled and not self.draining


class WorkerQuerySet(models.QuerySet):
    def live(self) -> WorkerQuerySet:
        fresh_since = timezone.now() - timedelta(seconds=settings.WORKER_TIMEOUT)
        return self.filter(state=Worker.State.READY, last_heartbeat__gte=fresh_since)


class Worker(models.Model):
    """One worker process; it owns its slots and takes sessions only on its own queue."""

    class State(models.TextChoices):
        WARMING = "warming", "warming up"
        READY = "ready", "ready"
        DRAINING = "draining", "draining"
        STOPPED = "stopped", "stopped"
        LOST = "lost", "lost"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    pool = models.ForeignKey(GpuPool, on_delete=models.PROTECT, related_name="workers")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField(default=0)
    slot_count = models.PositiveIntegerField()
    version = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WARMING)
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat = models.DateTimeField(default=timezone.now)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["state", "last_heartbeat"])]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.pool})"

    @property
    def queue_name(self) -> str:
        """The Celery queue only this worker consumes: sessions wait nowhere else."""
        return f"worker.{self.public_id}"

    def heartbeat_age(self) -> float:
        return (timezone.now() - self.last_heartbeat).total_seconds()


class Slot(models.Model):
    """One player's place on a worker: free, reserved for an offered ticket, or playing."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="slots")
    index = models.PositiveIntegerField()
    ticket = models.OneToOneField(
        "queue.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reserved_slot",
    )
    session = models.OneToOneField(
        "play.PlaySession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="slot",
    )

    class Meta:
        ordering = ["worker", "index"]
        constraints = [
            models.UniqueConstraint(fields=["worker", "index"], name="fleet_slot_unique_index"),
        ]

    def __str__(self) -> str:
        return f"{self.worker} #{self.index}"

    @property
    def is_free(self) -> bool:
        return self.ticket_id is None and self.session_id is None
