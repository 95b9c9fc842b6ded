"""TURN through a real coturn (Debian's package) with deploy/turn/turnserver.conf.

The relay listens on loopback; loopback peers are denied by the shipped config, so the test
server allows exactly 127.0.0.1 as a peer (allowed-peer-ip), and a relay to 127.0.0.2, still
inside the denied 127/8, shows the denial.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

from streaming.turn import turn_credentials
from tests.streaming.client import ClientPeer
from tests.streaming.test_peer import open_stream, until

CONF = Path(__file__).resolve().parents[2] / "deploy" / "turn" / "turnserver.conf"
SECRET = "test-turn-secret"

pytestmark = pytest.mark.skipif(
    shutil.which("turnserver") is None, reason="coturn is not installed (make test installs it)"
)


@dataclass(frozen=True)
class TurnServer:
    port: int  # turn: over UDP
    tls_port: int  # turns: (TLS over TCP)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def turn_server(tmp_path):
    port, tls_port = free_port(), free_port(socket.SOCK_STREAM)
    cert, key = self_signed_certificate(tmp_path)
    log = tmp_path / "turn.log"
    command = [
        "turnserver",
        "-c",
        str(CONF),
        f"--static-auth-secret={SECRET}",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--tls-listening-port={tls_port}",  # the shipped turns: listener, on a free port
        f"--cert={cert}",
        f"--pkey={key}",
        # coturn refuses every loopback peer on its own; the shipped denied-peer-ip ranges
        # then refuse all of 127/8 but the one address allowed here.
        "--allow-loopback-peers",
        "--allowed-peer-ip=127.0.0.1",
        f"--userdb={tmp_path / 'turndb'}",
        f"--pidfile={tmp_path / 'turn.pid'}",
        f"--log-file={log}",
        "--simple-log",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_binding(port, server)
        yield TurnServer(port, tls_port)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for_binding(port: int, server: subprocess.Popen) -> None:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.poll() is None:
            sock.sendto(bytes(request), ("127.0.0.1", port))
            try:
                sock.recv(2048)
                return
            except OSError:
                continue
    raise RuntimeError("coturn did not answer a STUN binding request")


async def allocate(port: int, username: str, password: str) -> TurnClientUdpProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: TurnClientUdpProtocol(
            ("127.0.0.1", port), username, password, lifetime=600, channel_refresh_time=500
        ),
        remote_addr=("127.0.0.1", port),
    )
    await protocol.connect()
    return protocol


async def allocate_over_tls(port: int, username: str, password: str) -> TurnClientTcpProtocol:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: TurnClientTcpProtocol(
            ("127.0.0.1", port), username, password, lifetime=600, channel_refresh_time=500
        ),
        host="127.0.0.1",
        port=port,
        ssl=context,
    )
    await protocol.connect()
    return protocol


def test_minted_credentials_allocate_a_relay_and_expired_or_forged_ones_are_refused(turn_server):
    async def scenario():
        fresh = turn_credentials(SECRET, "session-a", ttl=600)
        relay = await allocate(turn_server.port, fresh["username"], fresh["credential"])
        relayed = relay.relayed_address
        await relay.delete()
        refused = []
        expired = turn_credentials(SECRET, "session-b", ttl=600, now=time.time() - 3600)
        forged = turn_credentials("not-the-secret", "session-c", ttl=600)
        for pair in (expired, forged):
            with pytest.raises(stun.TransactionFailed) as failure:
                await allocate(turn_server.port, pair["username"], pair["credential"])
            refused.append(failure.value.response.attributes["ERROR-CODE"][0])
        return relayed, refused

    relayed, refused = asyncio.run(scenario())
    assert relayed[0] == "127.0.0.1" and relayed[1] >= 49160
    assert refused == [401, 401]


def test_the_turns_listener_allocates_over_tls_with_minted_credentials(turn_server):
    async def scenario():
        pair = turn_credentials(SECRET, "session-tls", ttl=600)
        relay = await allocate_over_tls(turn_server.tls_port, pair["username"], pair["credential"])
        relayed = relay.relayed_address
        await relay.delete()
        return relayed

    assert asyncio.run(scenario())[0] == "127.0.0.1"


def test_a_relay_into_a_denied_address_is_refused(turn_server):
    async def scenario():
        pair = turn_credentials(SECRET, "session-d", ttl=600)
        relay = await allocate(turn_server.port, pair["username"], pair["credential"])
        await relay.channel_bind(0x4000, ("127.0.0.1", 9))  # allowed for the test
        with pytest.raises(stun.TransactionFailed) as failure:
            await relay.channel_bind(0x4001, ("127.0.0.2", 9))  # 127/8: denied
        await relay.delete()
        return failure.value.response.attributes["ERROR-CODE"][0]

    assert asyncio.run(scenario()) == 403


def test_a_worker_on_relay_policy_streams_to_a_player_only_through_the_relay(
    turn_server, streaming, device, settings
):
    settings.TURN_URLS = [f"turn:127.0.0.1:{turn_server.port}?transport=udp"]
    settings.TURN_SECRET = SECRET
    settings.WEBRTC_ICE_POLICY = "relay"
    stream = open_stream(streaming, device)

    async def scenario():
        client = ClientPeer()
        answer = await client.connect(stream.session_id)
        await until(lambda: len(client.frames) >= 5)
        # aioice's nominated pairs (sctp -> DTLS -> ICE transport -> aioice connection).
        ice = stream.peer.pc.sctp.transport.transport._connection
        pair = dict(ice._nominated)
        await client.close()
        return answer, pair

    answer, nominated = streaming.call(scenario(), timeout=30)
    candidates = [line for line in answer["sdp"].splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" typ relay " in line for line in candidates)
    assert nominated and all(pair.local_candidate.type == "relay" for pair in nominated.values())
    stream.close()
