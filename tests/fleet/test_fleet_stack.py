"""The fleet across namespace hosts, quick subset: the production commands come up on their own
hosts (PostgreSQL and Redis on a data host, Celery control and beat on a control host, two
gunicorn web hosts behind haproxy, two GPU worker hosts with one slot each, a TURN host); the
client host reaches the web tier but no worker, and every player's video comes through the TURN
relay. In order: two players on both worker hosts; a killed web host; Redis and PostgreSQL
restarted under a full queue; a partitioned worker host; a killed worker host (last: it leaves
one worker)."""

import os
import shutil

import pytest

from bench.fleet.campaign import (
    kill_web_host,
    kill_worker_host,
    partition_worker_host,
    players_across_hosts,
    restart_data,
)
from bench.fleet.stack import WORKER_METRICS_PORT, FleetStack, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("turnserver", "runuser", "createdb")),
        reason="coturn and PostgreSQL's client programs are needed (make test-tools)",
    ),
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    stack = FleetStack(
        tmp_path_factory.mktemp("fleet"), tag=f"rf{os.getpid() % 1000}", worker_slots=1
    )
    stack.up()
    try:
        wait_until(lambda: stack.live_workers() == 2, 120, "two live GPU workers")
        yield stack
    finally:
        stack.down()
        assert stack.topology.leftovers() == []


def test_both_web_hosts_and_the_balancer_serve_the_fleet_to_the_client_host(fleet):
    for index in (0, 1, None):
        ready = fleet.readiness(index)
        assert ready["status"] == "ready", ready
        assert fleet.live_workers(index) == 2


def test_the_client_host_cannot_reach_any_worker_host(fleet):
    for gpu in fleet.gpus:
        address = gpu.address("fleet")
        assert fleet.webs[0].connects(address, WORKER_METRICS_PORT)  # the worker listens
        assert not fleet.client.connects(address, WORKER_METRICS_PORT)


def test_a_player_on_a_web_host_itself_gets_video_only_through_the_relay(fleet):
    played = fleet.play_in_browser("relayed", index=1, seconds=3)
    assert played["pair"]["local"] == "relay", played
    assert played["pair"]["local_address"] == fleet.turn.address("fleet")
    assert played["fps"] > 10, played


def test_two_players_play_on_both_worker_hosts_through_the_relay(fleet):
    players = players_across_hosts(fleet, count=2, seconds=4)["players"]
    assert sorted(p["host"] for p in players) == ["gpu1", "gpu2"], players
    for player in players:
        assert player["path"] == "relay" and player["fps"] > 10, player
        assert player["acked"] > 0 and player["acks p95"] < 1000, player


def test_browsers_keep_their_place_and_session_when_their_web_host_is_killed(fleet):
    result = kill_web_host(fleet, held=10, settle=5)
    assert result["its connections"] > 0, result
    assert result["held pages heard again after s"] <= 20, result
    assert result["held places kept"] and result["held tickets still waiting"] == 10, result
    assert result["pages not back after a reload"] == [], result
    for window in ("through the kill", "after the reload"):
        playing = [p for p in result[window] if p["kind"] == "playing"]
        queued = [p for p in result[window] if p["kind"] == "queued"]
        assert all(p["ended"] is None and p["inputs acked"] > 0 for p in playing), result
        assert all(p["place after"] == p["place before"] == "1" for p in queued), result
    assert result["ready through the balancer"] == "ready"
    wait_until(lambda: fleet.live_workers(0) == 2 and fleet.live_workers(1) == 2, 60, "web")


def test_redis_and_postgresql_restarts_lose_no_ticket_and_no_session(fleet):
    result = restart_data(fleet, queued=40, settle=8)
    assert result["queued"] == 40, result
    assert result["tickets lost"] == 0 and result["places kept"], result
    assert result["line kept in the database"], result
    for name in ("Redis", "PostgreSQL"):
        assert result[name]["every queue page heard again after s"] <= 20, result
        assert result[name]["ready through the balancer"] == "ready", result
        for player in result[name]["players"]:
            assert player["ended"] is None and player["inputs acked"] > 0, result
            assert player["video stalled s"] < 3, result
    assert result["pages not back after a reload"] == [], result
    assert result["front offered after a leave s"] <= 15, result
    assert result["double-booked slots"] == 0 and result["control and beat still running"]


def test_a_partitioned_worker_host_is_reaped_and_comes_back_as_a_new_worker(fleet):
    # Before the kill below: it needs both hosts, and leaves both live again.
    result = partition_worker_host(fleet, seconds=3, cut=15)
    assert result["told after s"] <= 15, result
    assert result["playing again after s"] <= 60, result
    assert result["new worker live after s"] <= 60, result
    assert result["live workers"] == 2 and result["double-booked slots"] == 0, result


def test_a_killed_worker_hosts_player_is_told_and_plays_on_the_other_host(fleet):
    result = kill_worker_host(fleet, seconds=3)
    assert result["told after s"] <= 15, result
    assert result["playing again after s"] <= 60, result
    assert result["path after"] == "relay" and result["fps after"] > 10, result
    assert result["double-booked slots"] == 0
    assert fleet.live_workers(1) == 1
