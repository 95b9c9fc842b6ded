"""Signalling between a play page and the worker that owns its session, over the channel layer.

The page sends its offer on the play websocket; the web tier only relays it (rate-limited per
page, webapp/play/consumers.py) to the group `session.<uuid>.worker`, which exactly one listener
joins: the `SessionStream` of the worker
that runs the session. The answer goes back to the channel of the websocket that asked.
A new offer (a reload, a second tab) replaces the session's peer connection; the session and
its world carry on, and the replaced page is told so it stops offering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from channels.layers import get_channel_layer

from streaming import channel_groups
from streaming.peer import SessionPeer, StreamingLoop
from streaming.protocol import InputFolder
from streaming.relay import MAX_SDP_CHARS, worker_group

logger = logging.getLogger(__name__)

# Peer states in which the player has no picture; the grace period runs from the first.
# aiortc never reports "disconnected": a silent data channel stands in for it (see below).
UNHEALTHY_STATES = frozenset({"new", "connecting", "failed", "closed"})
# The page pings every second; this much silence means the player is gone.
SILENCE_SECONDS = 3.0
# Offers waiting to be answered; more than this is a flood, and only the newest matter.
MAX_WAITING = 8


class SessionStream:
    """A session's streaming side: its input folder, current peer and signalling listener."""

    def __init__(
        self,
        streaming: StreamingLoop,
        session_id: str,
        bindings: list[dict[str, Any]],
        codec: str = "vp8",
        scale: int = 1,
    ):
        self.streaming = streaming
        self.session_id = session_id
        self.bindings = bindings  # the model's key list, sent to the page with each answer
        self.codec = codec
        self.scale = scale
        self.folder = InputFolder()
        self.peer: SessionPeer | None = None
        # monotonic time since when the player has had no working peer; None while connected
        # or before the first offer (the websocket grace covers a page that never offers).
        self.unhealthy_since: float | None = None
        self._peer_page: str | None = None  # reply channel of the page that owns the peer
        self._channel: str | None = None
        self._inbox: deque[dict[str, Any]] = deque(maxlen=MAX_WAITING)
        self._tasks: list[asyncio.Task] = []
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
        except RuntimeError:
            # The worker stopped its streaming loop first; that closed every peer already.
            logger.info("session %s: streaming loop already stopped", self.session_id)
        except Exception:
            logger.exception("session %s: closing the stream failed", self.session_id)

    def on_frame(self, image, info) -> None:
        """Device-loop sink: the frame goes to the current peer, if there is one."""
        peer = self.peer
        if peer is not None:
            peer.frame(image, info)

    def peer_gone_for(self, now: float | None = None) -> float:
        """Seconds the player has been without a working peer (0 when connected)."""
        now = time.monotonic() if now is None else now
        since = self._unhealthy_from(now)
        return 0.0 if since is None else max(0.0, now - since)

    def _unhealthy_from(self, now: float) -> float | None:
        if self.unhealthy_since is not None:
            return self.unhealthy_since
        peer = self.peer
        heard = peer.last_heard if peer is not None else None
        if heard is not None and now - heard > SILENCE_SECONDS:
            return heard + SILENCE_SECONDS  # a connected peer whose page stopped talking
        return None

    # --- on the streaming loop ------------------------------------------------------------------
    async def _open(self) -> None:
        if self._closed:
            return  # closed before the loop got to it: never join the group
        layer = get_channel_layer()
        # channels_redis lets one receiver at a time pull a process's "!" channels, and it only
        # serves channels of its own prefix: every receiver here keeps the default prefix.
        self._channel = await layer.new_channel()
        await channel_groups.join(layer, worker_group(self.session_id), self._channel)
        arrived = asyncio.Event()  # set by the receiver whenever the inbox gains a message
        self._tasks = [
            asyncio.ensure_future(self._receive(layer, arrived)),
            asyncio.ensure_future(self._serve(layer, arrived)),
        ]
        logger.info("session %s listening for signalling", self.session_id)

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await _finished(task)
        if self._channel is not None:
            await channel_groups.leave(
                get_channel_layer(), worker_group(self.session_id), self._channel
            )
        if self.peer is not None:
            await self.peer.close()

    async def _receive(self, layer, arrived: asyncio.Event) -> None:
        # Receiving runs apart from answering, so offers that arrive during an answer are
        # seen, and only the newest of them is answered.
        while True:
            try:
                message = await layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("session %s: channel layer receive failed", self.session_id)
                await asyncio.sleep(1)
                continue
            self._inbox.append(message)
            arrived.set()

    async def _serve(self, layer, arrived: asyncio.Event) -> None:
        while True:
            arrived.clear()
            while self._inbox:
                message = self._inbox.popleft()
                try:
                    await self.handle(layer, message, superseded=self._newer_offer_waiting())
                except Exception:
                    logger.exception("session %s: signalling message failed", self.session_id)
            await arrived.wait()

    def _newer_offer_waiting(self) -> str | None:
        """The reply channel of the newest waiting offer, if any."""
        for message in reversed(self._inbox):
            if message.get("type") == "signal.offer":
                return message.get("reply_to") or ""
        return None

    async def handle(self, layer, message: dict[str, Any], superseded: str | None = None) -> None:
        """One relayed message from the page: only offers are expected."""
        if message.get("type") != "signal.offer":
            logger.warning(
                "session %s: unexpected signalling %r", self.session_id, message.get("type")
            )
            return
        reply_to = message.get("reply_to")
        if not isinstance(reply_to, str):
            return
        offer_id = message.get("offer_id")
        if superseded is not None:
            # A newer offer waits: answering this one would only be replaced at once.
            if superseded != reply_to:
                await self._reply(layer, reply_to, {"kind": "replaced"}, offer_id)
            return
        sdp = message.get("sdp")
        if not isinstance(sdp, str) or not 0 < len(sdp) <= MAX_SDP_CHARS:
            await self._reply(
                layer,
                reply_to,
                {
                    "kind": "error",
                    "error": f"offer SDP is missing or larger than {MAX_SDP_CHARS} characters",
                },
                offer_id,
            )
            return
        await self._tell_replaced(layer, reply_to)
        await self._reply(layer, reply_to, await self._answer(sdp, reply_to), offer_id)

    async def _tell_replaced(self, layer, reply_to: str) -> None:
        # The other page stops offering; otherwise two tabs take the session back and forth.
        old_page = self._peer_page
        if self.peer is not None and old_page is not None and old_page != reply_to:
            await self._reply(layer, old_page, {"kind": "replaced"}, None)

    async def _answer(self, sdp: str, reply_to: str | None = None) -> dict[str, Any]:
        old, self.peer = self.peer, None
        if self.unhealthy_since is None:
            # Only the first offer since the player lost the picture starts the grace clock; a
            # page that keeps offering without connecting must still run out of grace.
            self.unhealthy_since = self._unhealthy_from(time.monotonic()) or time.monotonic()
        if old is not None:
            await old.close()  # one peer per session: the newest page wins
        self.folder.restart()  # the new page counts its input from seq 1
        peer = SessionPeer(
            self.streaming,
            self.session_id,
            self.folder,
            self.codec,
            self.scale,
            on_state=lambda state: self._peer_state(peer, state),
        )
        try:
            answer = await peer.answer(sdp)
        except Exception as exc:
            logger.warning("session %s: bad offer: %s", self.session_id, exc)
            await _close_shielded(peer)
            return {"kind": "error", "error": f"the offer could not be answered: {exc}"}
        except BaseException:
            # Cancelled (the session ended mid-answer): the peer must not outlive it.
            await _close_shielded(peer)
            raise
        self.peer, self._peer_page = peer, reply_to
        return {"kind": "answer", "sdp": answer, "controls": self.bindings}

    def _peer_state(self, peer: SessionPeer, state: str) -> None:
        if peer is not self.peer:
            return  # a replaced peer closing must not count against the new one
        if state == "connected":
            self.unhealthy_since = None
        elif state in UNHEALTHY_STATES and self.unhealthy_since is None:
            self.unhealthy_since = time.monotonic()
        if state in ("failed", "closed"):
            self.folder.release()

    async def _reply(self, layer, channel: str, signal: dict[str, Any], offer_id: Any) -> None:
        # The page matches answers to its latest offer by this id and ignores the rest.
        await layer.send(
            channel, {"type": "session.signal", "signal": {**signal, "offer_id": offer_id}}
        )


async def _close_shielded(peer: SessionPeer) -> None:
    """Close a peer even if the awaiting task is cancelled meanwhile."""
    await asyncio.shield(peer.close())


async def _finished(task: asyncio.Task) -> None:
    """Wait for a cancelled task to end; only the caller's own cancellation propagates."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        logger.exception("signalling task failed")
