"""Tell live pages what changed, through the channel layer; group names come from UUIDs."""

from __future__ import annotations

import logging
from uuid import UUID, uuid4

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def pool_group(pool_public_id: UUID | str) -> str:
    return f"pool.{pool_public_id}"


def ticket_group(ticket_public_id: UUID | str) -> str:
    return f"ticket.{ticket_public_id}"


def session_group(session_public_id: UUID | str) -> str:
    return f"session.{session_public_id}"


def send_now(group: str, message: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:  # a page that misses one push catches up on its next refresh
        logger.exception("could not notify group %s", group)


def send(group: str, event_type: str, **payload) -> None:
    """Send after the current transaction commits, so pages never read a state not yet saved.

    Each message carries a fresh `event_id`: a page that reads shared state on an event asks for
    a reading taken after that event arrived (webapp/queue/snapshot.py).
    """
    message = {"type": event_type, "event_id": uuid4().hex, **payload}
    transaction.on_commit(lambda: send_now(group, message))


def queue_changed(pool_public_id: UUID | str) -> None:
    """Every waiting page of the pool recomputes its own position."""
    send(pool_group(pool_public_id), "queue.changed")
