"""The fleet harness's hosts: namespaces that reach only the networks they are linked to, a
killed host whose every process dies, a partition that cuts and restores, nothing left after."""

import os
import sys
import time

import pytest

from bench.fleet.netns import Topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

LISTEN = (
    "import socket, time\n"
    "s = socket.socket(); s.bind(('0.0.0.0', 7000)); s.listen(); time.sleep(600)\n"
)


def reaches(host, address) -> bool:
    return host.connects(address, 7000, timeout=1.0)


@pytest.fixture
def fleet(tmp_path):
    topology = Topology(tag=f"rt{os.getpid() % 1000}")
    topology.network("fleet", "198.51.100")
    topology.network("edge", "203.0.113")
    worker = topology.host("worker", fleet=21)
    web = topology.host("web", fleet=11, edge=11)
    client = topology.host("client", edge=50)
    topology.up()
    try:
        for host in (worker, web):
            host.spawn([sys.executable, "-c", LISTEN], tmp_path / f"{host.name}.log")
        time.sleep(1.0)
        yield topology, worker, web, client
    finally:
        topology.down()
        assert topology.leftovers() == []


def test_the_client_reaches_the_web_host_but_never_a_worker(fleet):
    _, worker, web, client = fleet
    assert reaches(client, web.address("edge"))
    assert not reaches(client, worker.address("fleet"))
    assert reaches(web, worker.address("fleet"))


def test_a_partition_cuts_the_link_until_it_is_restored(fleet):
    topology, worker, web, _ = fleet
    topology.partition(worker, "fleet")
    assert not reaches(web, worker.address("fleet"))
    topology.partition(worker, "fleet", down=False)
    deadline = time.monotonic() + 10
    while not reaches(web, worker.address("fleet")):
        assert time.monotonic() < deadline, "the link did not come back"


def test_killing_a_host_kills_every_process_in_it(fleet, tmp_path):
    topology, worker, web, _ = fleet
    stray = worker.spawn(["sleep", "600"], tmp_path / "stray.log")
    assert stray in worker.pids()
    killed = topology.kill_host(worker)
    assert stray in killed and worker.pids() == []
    assert not reaches(web, worker.address("fleet"))
