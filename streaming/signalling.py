"""Signalling between a play page and the worker that owns its session, over the channel layer.

The page sends its offer on the play websocket; the web tier only relays it to the group
`session.<uuid>.worker`, which exactly one listener joins: the `SessionStream` of the worker
that runs the session. The answer goes back to the channel of the websocket that asked.
A new offer (a reload, a second tab) replaces the session's peer connection; the session and
its world carry on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.layers import get_channel_layer

from streaming.controls import Controls
from streaming.peer import SessionPeer, StreamingLoop
from streaming.protocol import InputFolder

logger = logging.getLogger(__name__)

MAX_SDP_CHARS = 32_000
# Peer states after which the player has no picture; the grace period runs from the first.
UNHEALTHY_STATES = frozenset({"new", "connecting", "disconnected", "failed", "closed"})


def worker_group(session_id: str) -> str:
    """The group the owning worker listens on; named from the session UUID only."""
    return f"session.{session_id}.worker"


class SessionStream:
    """A session's streaming side: its input folder, current peer and signalling listener."""

    def __init__(self, streaming: StreamingLoop, session_id: str, controls: Controls,
                 codec: str = "vp8", scale: int = 1, frame_rate: float = 20.0):
        self.streaming = streaming
        self.session_id = session_id
        self.controls = controls
        self.codec = codec
        self.scale = scale
        self.frame_rate = frame_rate
        self.folder = InputFolder()
        self.peer: SessionPeer | None = None
        self.offers = 0
        # monotonic time since when the player has had no working peer; None while connected
        # or before the first offer (the websocket grace covers a page that never offers).
        self.unhealthy_since: float | None = None
        self._channel: str | None = None
        self._listener: asyncio.Task | None = None
        self._closed = False

    # --- called from the session runner's thread ---------------------------------------------
    def open(self) -> None:
        """Join the session's worker group; offers are answered from then on."""
        self.streaming.call(self._open())

    def close(self) -> None:
        """Stop listening and close the peer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.streaming.call(self._close(), timeout=10)
        except Exception:
            logger.exception("session %s: closing the stream failed", self.session_id)

    def on_frame(self, image, info) -> None:
        """Device-loop sink: the frame goes to the current peer, if there is one."""
        peer = self.peer
        if peer is not None:
            peer.frame(image, info.number, info.seq, info.generated_at)

    def peer_gone_for(self, now: float | None = None) -> float:
        """Seconds the player has been without a working peer (0 when connected)."""
        since = self.unhealthy_since
        return 0.0 if since is None else (now or time.monotonic()) - since

    # --- on the streaming loop ------------------------------------------------------------------
    async def _open(self) -> None:
        layer = get_channel_layer()
        # channels_redis lets one receiver at a time pull a process's "!" channels, and it only
        # serves channels of its own prefix: every receiver here keeps the default prefix.
        self._channel = await layer.new_channel()
        await layer.group_add(worker_group(self.session_id), self._channel)
        self._listener = asyncio.ensure_future(self._listen(layer))
        logger.info("session %s listening for signalling", self.session_id)

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        layer = get_channel_layer()
        if self._channel is not None:
            await layer.group_discard(worker_group(self.session_id), self._channel)
        if self.peer is not None:
            await self.peer.close()

    async def _listen(self, layer) -> None:
        while True:
            try:
                message = await layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("session %s: channel layer receive failed", self.session_id)
                await asyncio.sleep(1)
                continue
            try:
                await self.handle(layer, message)
            except Exception:
                logger.exception("session %s: signalling message failed", self.session_id)

    async def handle(self, layer, message: dict[str, Any]) -> None:
        """One relayed message from the page: only offers are expected."""
        if message.get("type") != "signal.offer":
            logger.warning("session %s: unexpected signalling %r", self.session_id,
                           message.get("type"))
            return
        reply_to = message.get("reply_to")
        sdp = message.get("sdp")
        if not isinstance(reply_to, str):
            return
        if not isinstance(sdp, str) or not 0 < len(sdp) <= MAX_SDP_CHARS:
            await self._reply(layer, reply_to, {"kind": "error", "error": "offer SDP is missing "
                                                 f"or larger than {MAX_SDP_CHARS} characters"})
            return
        await self._reply(layer, reply_to, await self._answer(sdp))

    async def _answer(self, sdp: str) -> dict[str, Any]:
        old, self.peer = self.peer, None
        if old is not None:
            await old.close()  # one peer per session: the newest page wins
        self.folder.release()
        self.offers += 1
        self.unhealthy_since = time.monotonic()
        peer = SessionPeer(self.streaming, self.session_id, self.folder, self.codec,
                           self.scale, on_state=lambda state: self._peer_state(peer, state))
        try:
            answer = await peer.answer(sdp)
        except Exception as exc:
            logger.warning("session %s: bad offer: %s", self.session_id, exc)
            await peer.close()
            return {"kind": "error", "error": f"the offer could not be answered: {exc}"}
        self.peer = peer
        return {"kind": "answer", "sdp": answer, "controls": self.controls.bindings(),
                "frame_rate": self.frame_rate}

    def _peer_state(self, peer: SessionPeer, state: str) -> None:
        if peer is not self.peer:
            return  # a replaced peer closing must not count against the new one
        if state == "connected":
            self.unhealthy_since = None
        elif state in UNHEALTHY_STATES and self.unhealthy_since is None:
            self.unhealthy_since = time.monotonic()
        if state in ("failed", "closed", "disconnected"):
            self.folder.release()

    async def _reply(self, layer, channel: str, signal: dict[str, Any]) -> None:
        await layer.send(channel, {"type": "session.signal", "signal": signal})
