"""The fleet across namespace hosts, quick subset: the production commands come up on their own
hosts (PostgreSQL and Redis on a data host, two gunicorn web hosts, two GPU worker hosts, a TURN
host), the client host reaches the web tier but no worker, a player's video comes through the
TURN relay, a partitioned worker host is reaped and comes back as a new worker, and a killed
worker host's player is told and plays on the other host."""

import os
import shutil

import pytest

from bench.fleet.campaign import kill_worker_host, partition_worker_host
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
    stack = FleetStack(tmp_path_factory.mktemp("fleet"), tag=f"rf{os.getpid() % 1000}")
    stack.up()
    try:
        wait_until(lambda: stack.live_workers() == 2, 120, "two live GPU workers")
        yield stack
    finally:
        stack.down()
        assert stack.topology.leftovers() == []


def test_both_web_hosts_serve_the_fleet_to_the_client_host(fleet):
    for index in (0, 1):
        ready = fleet.readiness(index)
        assert ready["status"] == "ready", ready
        assert fleet.live_workers(index) == 2


def test_the_client_host_cannot_reach_any_worker_host(fleet):
    for gpu in fleet.gpus:
        address = gpu.address("fleet")
        assert fleet.webs[0].connects(address, WORKER_METRICS_PORT)  # the worker listens
        assert not fleet.client.connects(address, WORKER_METRICS_PORT)


def test_a_player_on_the_client_host_gets_video_only_through_the_relay(fleet):
    played = fleet.play_in_browser("relayed", index=1, seconds=5)
    assert played["pair"]["local"] == "relay", played
    assert played["pair"]["local_address"] == fleet.turn.address("fleet")
    assert played["fps"] > 10, played


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
