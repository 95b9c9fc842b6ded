"""The live queue page: position, total waiting, estimated wait, offers; plus heartbeats."""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async
from django.urls import reverse

from streaming import channel_groups
from webapp import logcontext, notify
from webapp.queue import services
from webapp.queue.models import Ticket
from webapp.queue.snapshot import snapshots
from webapp.wsutil import CLOSE_FORBIDDEN, OwnedObjectConsumer

logger = logging.getLogger(__name__)

HEARTBEAT_MIN_PERIOD = 1.0


class QueueConsumer(OwnedObjectConsumer):
    """Pushes the ticket's status on every queue change; the page sends heartbeats."""

    allowed_types = frozenset({"heartbeat", "leave"})

    async def connect(self):
        if not await self.reject_unless_user():
            return
        ticket_id = self.scope["url_route"]["kwargs"]["ticket_id"]
        self.ticket = await self._own_ticket(ticket_id)
        if self.ticket is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Kept apart: refreshing the ticket's row drops its cached pool.
        self.pool = self.ticket.pool
        logcontext.bind(ticket=self.ticket.public_id)
        self.groups_joined = [
            notify.ticket_group(self.ticket.public_id),
            notify.pool_group(self.ticket.pool.public_id),
        ]
        for group in self.groups_joined:
            await channel_groups.join(self.channel_layer, group, self.channel_name)
        await self.accept()
        self.last_heartbeat = time.monotonic()
        await database_sync_to_async(services.heartbeat)(self.ticket)
        await self.send_status()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await channel_groups.leave(self.channel_layer, group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content["type"] == "heartbeat":
            now = time.monotonic()
            if now - self.last_heartbeat < HEARTBEAT_MIN_PERIOD:
                return  # a flood of heartbeats costs one status computation a second at most
            self.last_heartbeat = now
            await database_sync_to_async(services.heartbeat)(self.ticket)
            # Pushes are best effort; the heartbeat's reply repairs a missed one within seconds.
            await self.send_status()
        elif content["type"] == "leave":
            await database_sync_to_async(services.leave)(self.ticket)
            await self.send_status()

    @database_sync_to_async
    def _own_ticket(self, ticket_id):
        return (
            Ticket.objects.select_related("pool", "world")
            .filter(public_id=ticket_id, user=self.scope["user"])
            .first()
        )

    @database_sync_to_async
    def _status(self, event_id: str | None) -> dict:
        if event_id is None:
            # No event woke us (connect, heartbeat, leave): the row says whether the ticket
            # still waits, in case a push was missed; a young snapshot gives the place.
            self.ticket.refresh_from_db()
        snapshot = snapshots.get(self.pool, event_id)
        data = services.status(self.ticket, snapshot, row_fresh=event_id is None).as_dict()
        if data["session"]:
            data["play_url"] = reverse("play-session", args=[data["session"]])
        return data

    async def send_status(self, event_id: str | None = None):
        await self.send_json({"type": "status", **await self._status(event_id)})

    async def queue_changed(self, event):
        await self.send_status(event.get("event_id"))

    async def ticket_changed(self, event):
        await self.send_status(event.get("event_id"))
