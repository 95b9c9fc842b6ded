from __future__ import annotations

from django.contrib.auth.backends import ModelBackend


class CaseInsensitiveModelBackend(ModelBackend):
    """Log in as "Alice" or "alice" alike; the manager looks usernames up case-insensitively."""
