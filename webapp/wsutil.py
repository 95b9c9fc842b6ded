"""Shared pieces of the websocket consumers: auth, message validation, error replies."""

from __future__ import annotations

import json
import logging

from channels.generic.websocket import AsyncJsonWebsocketConsumer

logger = logging.getLogger(__name__)

# Close codes in the application range, so the page can tell "not yours" from a network error.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
MAX_MESSAGE_BYTES = 4096


class BadMessage(Exception):
    """A websocket message that is not JSON, too big, or of an unknown type."""


class OwnedObjectConsumer(AsyncJsonWebsocketConsumer):
    """A consumer for one object the logged-in user owns; bad messages get an error reply."""

    allowed_types: frozenset[str] = frozenset()
    max_message_bytes: int = MAX_MESSAGE_BYTES

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = self.parse(text_data, bytes_data)
        except BadMessage as exc:
            await self.send_json({"type": "error", "error": str(exc)})
            return
        await self.receive_json(content)

    def parse(self, text_data, bytes_data) -> dict:
        if text_data is None:
            raise BadMessage("messages must be JSON text")
        if len(text_data) > self.max_message_bytes:
            raise BadMessage(f"message larger than {self.max_message_bytes} bytes")
        try:
            content = json.loads(text_data)
        except ValueError as exc:
            raise BadMessage("message is not valid JSON") from exc
        if not isinstance(content, dict) or content.get("type") not in self.allowed_types:
            raise BadMessage(f"message type must be one of {sorted(self.allowed_types)}")
        return content

    async def reject_unless_user(self) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        return True
