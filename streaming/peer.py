"""Peer connections of one worker process: the asyncio loop they live on, ICE setup, registry.

aiortc needs an asyncio loop, while the session runners are Celery threads; each worker process
runs one `StreamingLoop` thread and schedules all peer and signalling work there. Every live peer
sits in the loop's registry, is logged by session id, closes idempotently, and all of them close
when the loop shuts down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs import h264, vpx
from aiortc.rtcrtpsender import RTCRtpSender
from django.conf import settings

from streaming import metrics
from streaming.protocol import (
    InputFolder,
    PhotonMessage,
    PingMessage,
    encode_ack,
    encode_pong,
)
from streaming.tracks import FrameTrack, Outgoing
from streaming.turn import ice_server_dicts

if TYPE_CHECKING:
    from webapp.worker.device_loop import FrameInfo

logger = logging.getLogger(__name__)

_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    # aioice leaves 127.0.0.1 out of its host candidates; WEBRTC_HOST_ADDRESSES names the
    # addresses to offer instead (e.g. 127.0.0.1 for loopback-only tests and development).
    chosen = list(settings.WEBRTC_HOST_ADDRESSES)
    if not chosen:
        return _aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in chosen if (use_ipv4 and ":" not in a) or (use_ipv6 and ":" in a)]


def configure_aiortc() -> None:
    """Apply the ICE-address and bitrate settings to aiortc and aioice (process-wide)."""
    aioice.ice.get_host_addresses = _host_addresses
    codecs: tuple[Any, ...] = (vpx, h264)  # modules whose limits are plain globals
    for codec in codecs:
        # The encoders read these module limits whenever the receiver's estimate moves.
        codec.MIN_BITRATE = settings.WEBRTC_MIN_BITRATE
        codec.MAX_BITRATE = settings.WEBRTC_MAX_BITRATE
        codec.DEFAULT_BITRATE = settings.WEBRTC_START_BITRATE


def peer_configuration(label: str) -> RTCConfiguration:
    """ICE servers (none unless set; TURN with credentials minted for `label`) and policy."""
    servers = [
        RTCIceServer(
            urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
        )
        for entry in ice_server_dicts(label)
    ]
    policy = (
        RTCIceTransportPolicy.RELAY
        if settings.WEBRTC_ICE_POLICY == "relay"
        else RTCIceTransportPolicy.ALL
    )
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def loopback_only() -> bool:
    addresses = settings.WEBRTC_HOST_ADDRESSES
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def filter_candidates(sdp: str, keep: Callable[[str], bool]) -> str:
    """Drop `a=candidate` lines whose address `keep` refuses (e.g. non-loopback in tests)."""
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 5 or not keep(parts[4]):
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # an mDNS name: resolving it would leave loopback
        return False


def _unix(monotonic: float) -> float:
    """time.time() of a time.monotonic() reading (the page compares Unix times)."""
    return time.time() - (time.monotonic() - monotonic)


def _ms(unix_seconds: float) -> float:
    return round(unix_seconds * 1000, 1)


class StreamingLoop:
    """The worker's asyncio thread: runs every peer connection and signalling listener."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.peers: dict[str, SessionPeer] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="streaming-loop", daemon=True)

    def start(self) -> None:
        configure_aiortc()
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine, timeout: float = 10.0) -> Any:
        """Run a coroutine on the loop from another thread and wait for its result."""
        if self._stopping or self.loop.is_closed() or not self._thread.is_alive():
            coro.close()  # never scheduled: close it so it is not reported as never awaited
            raise RuntimeError("the streaming loop is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # a caller that gave up must not leave the work running
            raise

    def shutdown(self, timeout: float = 5.0) -> None:
        """Close every live peer, then stop the loop."""
        if not self._thread.is_alive():
            return
        try:
            self.call(self.close_all(), timeout)
        except Exception:
            logger.exception("closing peers on shutdown failed")
        self._stopping = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    async def close_all(self) -> None:
        await asyncio.gather(
            *(peer.close() for peer in list(self.peers.values())), return_exceptions=True
        )


class SessionPeer:
    """One RTCPeerConnection answering a page's offer: video out, input data channel in."""

    def __init__(
        self,
        streaming: StreamingLoop,
        session_id: str,
        folder: InputFolder,
        codec: str,
        scale: int,
        on_state: Callable[[str], None],
    ):
        self.streaming = streaming
        self.session_id = session_id
        self.folder = folder
        self.codec = codec
        self.on_state = on_state
        self.track = FrameTrack(
            streaming.loop, scale=scale, depth=settings.WEBRTC_FRAME_QUEUE, label=session_id
        )
        self.track.on_sent = self._frame_sent
        self.pc = RTCPeerConnection(peer_configuration(session_id))
        self.channel = None
        self.closed = False
        # monotonic time of the last sign of life from the page (connected, or a message)
        self.last_heard: float | None = None
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("datachannel", self._channel_opened)

    async def answer(self, offer_sdp: str) -> str:
        """Take the page's offer; returns the answer SDP with every local candidate in it."""
        if loopback_only():
            offer_sdp = filter_candidates(offer_sdp, _is_loopback)
        self.streaming.peers[self.session_id] = self
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        video = [t for t in self.pc.getTransceivers() if t.kind == "video"]
        if not video:
            raise ValueError("the offer has no video section")
        self.pc.addTrack(self.track)
        self._prefer_codec(video[0])
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)  # gathers every candidate before returning
        logger.info("session %s answered an offer (%s)", self.session_id, self.codec)
        return self.pc.localDescription.sdp

    def _prefer_codec(self, transceiver) -> None:
        wanted = {"vp8": "video/VP8", "h264": "video/H264"}.get(self.codec, "video/VP8")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        preferred = [c for c in codecs if c.mimeType == wanted]
        # rtx stays offered after the chosen codec: it repairs loss without changing codec.
        transceiver.setCodecPreferences(
            preferred + [c for c in codecs if c.mimeType == "video/rtx"]
        )

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        logger.info("session %s peer connection %s", self.session_id, state)
        if state == "connected":
            self.last_heard = time.monotonic()
        self.on_state(state)
        if state in ("failed", "closed"):
            asyncio.ensure_future(self.close())

    def _channel_opened(self, channel) -> None:
        self.channel = channel
        channel.on("message", self._message)

    def _message(self, data) -> None:
        self.last_heard = time.monotonic()
        message = self.folder.receive(data)
        if isinstance(message, PingMessage):
            self._send(encode_pong(message.t))
        elif isinstance(message, PhotonMessage):
            metrics.key_to_photon(message.ms)

    def _send(self, text: str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)

    def frame(self, image, info: FrameInfo) -> None:
        """Device-loop thread: queue the frame; the input it first reflects is acknowledged
        once it is sent (`_frame_sent`)."""
        if self.closed:
            return
        ack = None
        if info.seq is not None:
            hops = None
            if info.changed_seq is not None and info.changed_at is not None:
                hops = {
                    "changed": info.changed_seq,
                    "recv": _ms(info.changed_at),
                    "take": _ms(_unix(info.taken_at or info.generated_at)),
                    "step": _ms(_unix(info.generated_at)),
                }
            ack = (info.seq, hops)
        self.track.push(image, info.generated_at, info.number, ack)

    def _frame_sent(self, outgoing: Outgoing, taken_at: float, sent_at: float) -> None:
        """Streaming loop: `outgoing` is encoded and sent; acknowledge what it carries."""
        pts = outgoing.pts
        for seq, hops in outgoing.acks:
            if hops is not None:
                hops = {
                    **hops,
                    "push": _ms(outgoing.pushed_at),
                    "encode": _ms(taken_at),
                    "sent": _ms(sent_at),
                }
            self._send(encode_ack(seq, outgoing.number, pts, hops))

    async def close(self) -> None:
        """Close once; safe to call from any path that ends the peer."""
        if self.closed:
            return
        self.closed = True
        self.track.stop()
        if self.streaming.peers.get(self.session_id) is self:
            del self.streaming.peers[self.session_id]
        await self.pc.close()
        logger.info(
            "session %s peer closed (frames sent %d, dropped %d, bad input %s)",
            self.session_id,
            self.track.sent,
            self.track.dropped,
            dict(self.folder.dropped) or "none",
        )
