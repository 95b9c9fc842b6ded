"""Shared pieces of the websocket consumers: auth, message validation, error replies."""

from __future__ import annotations

import json
import logging
from collections import Counter

from channels.generic.websocket import AsyncJsonWebsocketConsumer

logger = logging.getLogger(__name__)

# Close codes in the application range, so the page can tell "not yours" from a network error.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
MAX_MESSAGE_BYTES = 4096


class BadMessage(Exception):
    """A websocket message that is not JSON, too big, or of an unknown type; `reason` names it."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


# Why a message can be refused: the `reason` of each error reply (and of the per-socket count).
REJECT_REASONS = frozenset(
    {"not_text", "too_large", "not_json", "bad_type", "bad_field", "too_fast"}
)


class OwnedObjectConsumer(AsyncJsonWebsocketConsumer):
    """A consumer for one object the logged-in user owns; bad messages get an error reply."""

    allowed_types: frozenset[str] = frozenset()
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rejected: Counter[str] = Counter()  # refused messages on this socket, by reason

    async def websocket_disconnect(self, message):
        # Here rather than in each consumer's disconnect(): every socket logs its refusals.
        if self.rejected:
            logger.info(
                "socket closed after %d refused messages: %s",
                self.rejected.total(),
                dict(self.rejected),
            )
        await super().websocket_disconnect(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = self.parse(text_data, bytes_data)
        except BadMessage as exc:
            await self.reject(exc.reason, str(exc))
            return
        await self.receive_json(content)

    async def reject(self, reason: str, error: str, reply: dict | None = None) -> None:
        """Refuse one message: an error reply naming the reason, counted; the socket stays open.

        The reply (an "error" message unless the consumer gives its own) carries the socket's
        running count, so a page or a test can tell one refusal from many; the counts are
        logged when the socket closes."""
        self.rejected[reason] += 1
        logger.debug("rejected a websocket message (%s): %s", reason, error)
        base = {"type": "error"} if reply is None else reply
        total = self.rejected.total()
        await self.send_json({**base, "reason": reason, "error": error, "rejected": total})

    def parse(self, text_data, bytes_data) -> dict:
        if text_data is None:
            raise BadMessage("messages must be JSON text", "not_text")
        if len(text_data) > self.max_message_bytes:
            raise BadMessage(f"message larger than {self.max_message_bytes} bytes", "too_large")
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError) as exc:  # "[[[[..." a thousand deep recurses out
            raise BadMessage("message is not valid JSON", "not_json") from exc
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str) or kind not in self.allowed_types:  # a list is unhashable
            raise BadMessage(
                f"message type must be one of {sorted(self.allowed_types)}", "bad_type"
            )
        return content

    async def reject_unless_user(self) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        return True
