"""Players, and the per-group policy that sets their queue tier and daily limits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group, UserManager
from django.db import models
from django.db.models.functions import Lower


class CaseInsensitiveUserManager(UserManager):
    def get_by_natural_key(self, username):
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A player or operator; usernames are unique regardless of case."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    objects: ClassVar[CaseInsensitiveUserManager] = CaseInsensitiveUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def policy(self) -> Policy:
        """The most generous policy among the user's groups, or the site defaults."""
        policies = list(GroupPolicy.objects.filter(group__user=self))
        if not policies:
            return Policy(
                tier=GroupPolicy.Tier.NORMAL,
                sessions_per_day=settings.DAILY_SESSIONS,
                minutes_per_day=settings.DAILY_MINUTES,
            )
        return Policy(
            tier=max(p.tier for p in policies),
            sessions_per_day=max(p.sessions_per_day for p in policies),
            minutes_per_day=max(p.minutes_per_day for p in policies),
        )


@dataclass(frozen=True)
class Policy:
    """What one player may do: queue tier and daily allowance."""

    tier: int
    sessions_per_day: int
    minutes_per_day: int


class GroupPolicy(models.Model):
    """Queue tier and daily play limits for the members of one auth group."""

    class Tier(models.IntegerChoices):
        NORMAL = 0, "normal"
        PRIORITY = 1, "priority"

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="policy")
    tier = models.IntegerField(choices=Tier.choices, default=Tier.NORMAL)
    sessions_per_day = models.PositiveIntegerField(default=20)
    minutes_per_day = models.PositiveIntegerField(default=60)

    class Meta:
        verbose_name_plural = "group policies"

    def __str__(self) -> str:
        return f"{self.group.name}: {self.get_tier_display()}"
