"""Websockets through the real ASGI stack (origin check, auth) and the real Redis channel layer."""

import json

import pytest
from channels.db import database_sync_to_async as sync_to_async  # closes its connections
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.conftest import confirmed_session, make_worker
from webapp.asgi import application
from webapp.play.models import PlaySession
from webapp.play.services import confirm, end_session
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def cookie_for(user):
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def communicator(path, user=None, origin=b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(cookie_for)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_type(comm, kind, timeout=5):
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


async def test_the_queue_socket_pushes_position_changes(world, owner, make_user):
    ahead = await sync_to_async(services.join)(await sync_to_async(make_user)(), world)
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(f"/ws/queue/{ticket.public_id}/", owner)
    connected, _ = await comm.connect()
    assert connected
    try:
        status = await receive_type(comm, "status")
        assert status["position"] == 2 and status["waiting"] == 2
        await sync_to_async(services.leave)(ahead)
        status = await receive_type(comm, "status")
        assert status["position"] == 1
    finally:
        await comm.disconnect()


async def test_an_offer_and_its_confirm_reach_the_page(world, owner):
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(f"/ws/queue/{ticket.public_id}/", owner)
    await comm.connect()
    try:
        await receive_type(comm, "status")
        await sync_to_async(make_worker)(world.pool, 1)
        from webapp.queue.dispatch import dispatch_pool

        await sync_to_async(dispatch_pool)(world.pool)
        status = await receive_type(comm, "status")
        assert status["state"] == Ticket.State.OFFERED
        assert 0 < status["offer_seconds_left"] <= 20
        await sync_to_async(ticket.refresh_from_db)()
        session = await sync_to_async(confirm)(ticket)
        status = await receive_type(comm, "status")
        assert status["play_url"] == f"/play/{session.public_id}/"
    finally:
        await comm.disconnect()


async def test_anonymous_sockets_are_refused(world, owner):
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(f"/ws/queue/{ticket.public_id}/")
    connected, code = await comm.connect()
    await comm.disconnect()
    assert not connected and code == 4401


async def test_an_outsider_cannot_watch_someone_elses_ticket(world, owner, outsider):
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(f"/ws/queue/{ticket.public_id}/", outsider)
    connected, code = await comm.connect()
    await comm.disconnect()
    assert not connected and code == 4403


async def test_a_foreign_origin_is_refused(world, owner):
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(
        f"/ws/queue/{ticket.public_id}/", owner, origin=b"http://evil.example"
    )
    connected, _ = await comm.connect()
    await comm.disconnect()
    assert not connected


async def test_bad_messages_get_a_clear_error_and_the_socket_lives_on(world, owner):
    ticket = await sync_to_async(services.join)(owner, world)
    comm = await communicator(f"/ws/queue/{ticket.public_id}/", owner)
    await comm.connect()
    try:
        await receive_type(comm, "status")
        for bad in ["not json", json.dumps([1, 2]), json.dumps({"type": "steal"}), "x" * 5000]:
            await comm.send_to(text_data=bad)
            error = await receive_type(comm, "error")
            assert error["error"]
        await comm.send_json_to({"type": "leave"})
        status = await receive_type(comm, "status")
        assert status["state"] == Ticket.State.LEFT
    finally:
        await comm.disconnect()


async def start_session(world, owner):
    return await sync_to_async(confirmed_session)(world, owner)


async def test_the_play_socket_counts_open_pages_for_the_grace_period(world, owner):
    session = await start_session(world, owner)
    comm = await communicator(f"/ws/play/{session.public_id}/", owner)
    await comm.connect()
    try:
        status = await receive_type(comm, "status")
        assert status["state"] == PlaySession.State.STARTING
        await sync_to_async(session.refresh_from_db)()
        assert session.client_connections == 1
    finally:
        await comm.disconnect()
    await sync_to_async(session.refresh_from_db)()
    assert session.client_connections == 0 and session.disconnected_at is not None


async def test_the_play_socket_reports_why_the_session_ended(world, owner):
    session = await start_session(world, owner)
    comm = await communicator(f"/ws/play/{session.public_id}/", owner)
    await comm.connect()
    try:
        await receive_type(comm, "status")
        await sync_to_async(end_session)(session, PlaySession.EndReason.ADMIN_ENDED)
        ended = await receive_type(comm, "ended")
        assert ended["label"] == "ended by operator"
    finally:
        await comm.disconnect()


async def test_an_outsider_cannot_join_someone_elses_session(world, owner, outsider):
    session = await start_session(world, owner)
    comm = await communicator(f"/ws/play/{session.public_id}/", outsider)
    connected, code = await comm.connect()
    await comm.disconnect()
    assert not connected and code == 4403
