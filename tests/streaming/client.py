"""A real aiortc player for tests and benchmarks: offers like the play page, receives video."""

from __future__ import annotations

import asyncio
import json

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from channels.layers import get_channel_layer

from streaming.relay import worker_group


class ClientPeer:
    """Offers recvonly video plus an unordered, no-retransmit input channel, as the page does."""

    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("input", ordered=False, maxRetransmits=0)
        self.opened = asyncio.Event()
        self.replies: list[dict] = []
        self.frames: list = []
        self.channel.on("open", self.opened.set)
        self.channel.on("message", lambda data: self.replies.append(json.loads(data)))
        self.pc.on("track", self._track)
        self.answer: dict | None = None
        self.reply_to: str | None = None  # the channel this player's signalling replies reach

    def _track(self, track) -> None:
        async def pull():
            while True:
                try:
                    self.frames.append(await track.recv())
                except Exception:
                    return

        asyncio.ensure_future(pull())

    async def connect(self, session_id: str, timeout: float = 10.0) -> dict:
        """Offer through the channel layer, as the web tier relays it; returns the answer."""
        layer = get_channel_layer()
        reply_to = self.reply_to = await layer.new_channel()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await layer.group_send(
            worker_group(session_id),
            {
                "type": "signal.offer",
                "sdp": self.pc.localDescription.sdp,
                "reply_to": reply_to,
                "offer_id": 1,
            },
        )
        message = await asyncio.wait_for(layer.receive(reply_to), timeout)
        self.answer = message["signal"]
        if self.answer["kind"] == "answer":
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=self.answer["sdp"], type="answer")
            )
            await asyncio.wait_for(self.opened.wait(), timeout)
        return self.answer

    async def close(self) -> None:
        await self.pc.close()
