"""Worlds: the starting scenes a player can pick, each bound to the pool that runs its model."""

from __future__ import annotations

import hashlib
import uuid

from django.db import models
from django.utils import timezone


class World(models.Model):
    """A starting scene for a model; images live in the database so every worker can read them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    pool = models.ForeignKey("fleet.GpuPool", on_delete=models.PROTECT, related_name="worlds")
    thumbnail_png = models.BinaryField(editable=False)
    listed = models.BooleanField(default=True)
    # Set for a player's own uploaded world: only its owner sees it and can play it.
    owner = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="worlds"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def playable_by(cls, user) -> models.QuerySet[World]:
        """Listed worlds plus the player's own uploads."""
        mine = models.Q(owner=user) if user.is_authenticated else models.Q(pk__in=[])
        return cls.objects.filter(models.Q(listed=True) | mine)

    def thumbnail_etag(self) -> str:
        return hashlib.sha256(bytes(self.thumbnail_png)).hexdigest()[:16]


class PromptImage(models.Model):
    """One prompt frame of a world, in order; the session starts from these frames."""

    world = models.ForeignKey(World, on_delete=models.CASCADE, related_name="prompts")
    index = models.PositiveIntegerField(default=0)
    png = models.BinaryField()

    class Meta:
        ordering = ["world", "index"]
        constraints = [
            models.UniqueConstraint(fields=["world", "index"], name="worlds_prompt_unique_index"),
        ]
