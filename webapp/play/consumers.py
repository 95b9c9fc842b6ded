"""The play page's control channel: status, time left, idle warnings, end reasons, leave, and
WebRTC signalling relayed between the page and the worker that owns the session.

The web tier only relays: an offer goes to the group the owning worker's session listens on
(`session.<uuid>.worker`) with this consumer's channel as the reply address, and the worker's
answer comes back as a "session.signal" event to this consumer alone.
"""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async

from streaming import channel_groups
from streaming.relay import MAX_SDP_CHARS, worker_group
from webapp import logcontext, notify
from webapp.play import services
from webapp.play.models import PlaySession
from webapp.wsutil import CLOSE_FORBIDDEN, OwnedObjectConsumer

logger = logging.getLogger(__name__)

# An offer carries an SDP of a few kilobytes, more than the other consumers ever accept.
MAX_PLAY_MESSAGE_BYTES = MAX_SDP_CHARS + 1024
# Every relayed offer costs the worker a peer connection: one per page this often at most. This is
# the only offer rate limit; the worker answers whatever reaches it (newest first).
OFFER_INTERVAL_SECONDS = 2.0
MAX_OFFER_ID = 2**53  # the page's offer ids are JavaScript numbers


class PlayConsumer(OwnedObjectConsumer):
    allowed_types = frozenset({"leave", "offer"})
    offer_interval = OFFER_INTERVAL_SECONDS
    max_message_bytes = MAX_PLAY_MESSAGE_BYTES  # an SDP offer is a few kilobytes

    async def connect(self):
        if not await self.reject_unless_user():
            return
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.session = await self._own_session(session_id)
        if self.session is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        logcontext.bind(session=self.session.public_id)
        self.group = notify.session_group(self.session.public_id)
        await channel_groups.join(self.channel_layer, self.group, self.channel_name)
        await self.accept()
        self.last_offer_at: float | None = None
        await database_sync_to_async(services.record_connection)(self.session, True)
        await self.send_status()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await channel_groups.leave(self.channel_layer, self.group, self.channel_name)
            await database_sync_to_async(services.record_connection)(self.session, False)

    async def receive_json(self, content, **kwargs):
        # Input goes over the data channel straight to the worker, which records activity.
        kind = content["type"]
        if kind == "leave":
            await database_sync_to_async(services.end_session)(
                self.session, PlaySession.EndReason.LEFT
            )
        elif kind == "offer":
            await self._relay_offer(content)

    async def _relay_offer(self, content: dict) -> None:
        sdp = content.get("sdp")
        offer_id = content.get("offer_id")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            await self.reject("bad_field", "an offer needs an SDP string")
            return
        if offer_id is not None and (
            isinstance(offer_id, bool)
            or not isinstance(offer_id, int)
            or not 0 <= offer_id < MAX_OFFER_ID
        ):
            await self.reject("bad_field", "offer_id must be an integer")
            return
        status = await self._status()
        if status["state"] != PlaySession.State.RUNNING:
            # Before the worker claims the session nobody listens; the page offers again
            # when the status says "running".
            await self.send_json(
                {
                    "type": "signal",
                    "kind": "not_ready",
                    "state": status["state"],
                    "offer_id": offer_id,
                }
            )
            return
        if self._offering_too_fast():
            await self.reject(
                "too_fast",
                "too many offers; try again in a moment",
                reply={"type": "signal", "kind": "error", "offer_id": offer_id},
            )
            return
        await self.channel_layer.group_send(
            worker_group(str(self.session.public_id)),
            {
                "type": "signal.offer",
                "sdp": sdp,
                "offer_id": offer_id,
                "reply_to": self.channel_name,
            },
        )

    def _offering_too_fast(self) -> bool:
        """Counts relayed offers only, so waiting for the worker to start costs nothing."""
        now = time.monotonic()
        if self.last_offer_at is not None and now - self.last_offer_at < self.offer_interval:
            return True
        self.last_offer_at = now
        return False

    @database_sync_to_async
    def _own_session(self, session_id):
        return (
            PlaySession.objects.select_related("pool", "world")
            .filter(public_id=session_id, user=self.scope["user"])
            .first()
        )

    @database_sync_to_async
    def _status(self) -> dict:
        session = self.session
        session.refresh_from_db()
        return {
            "type": "status",
            "state": session.state,
            "seconds_left": session.seconds_left(),
            "allowed_seconds": session.allowed_seconds,
            "idle_seconds": session.pool.idle_seconds,
            "end_reason": session.end_reason,
            "end_label": session.get_end_reason_display() if session.end_reason else "",
            "front_pass": session.has_front_pass(),
        }

    async def send_status(self):
        await self.send_json(await self._status())

    async def session_changed(self, event):
        await self.send_status()

    async def session_ended(self, event):
        await self.send_json(
            {
                "type": "ended",
                "reason": event["reason"],
                "label": event["label"],
                "front_pass": event["front_pass"],
            }
        )

    async def session_signal(self, event):
        await self.send_json({"type": "signal", **event["signal"]})

    async def session_idle_warning(self, event):
        await self.send_json({"type": "idle_warning", "seconds": event["seconds"]})
