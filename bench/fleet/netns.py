"""Hosts made of Linux network namespaces: each host a namespace, each network a bridge, each
link a veth pair, so production commands run as if on separate machines (needs root).

Addresses come from the documentation ranges (TEST-NET-2 and TEST-NET-3 by default): they are
no one's real network, nothing routes them off this machine, and the TURN server's deny list
(deploy/turn/turnserver.conf refuses private ranges) lets them through as it would public
workers. A host only reaches the networks it is linked to; there is no router between them.

Everything is named with a per-run tag, made by `up` and removed by `down`, and every process
started in a host is tracked by pid; `kill_host` also kills whatever else runs in the namespace.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class NetnsError(RuntimeError):
    """The kernel refused a namespace, bridge or link (not root, or no netns support)."""


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Network:
    name: str
    subnet: str  # the first three octets, e.g. "198.51.100"
    bridge: str


@dataclass
class Host:
    name: str
    netns: str
    addresses: dict[str, str] = field(default_factory=dict)  # network name -> address
    links: dict[str, str] = field(default_factory=dict)  # network name -> root-side veth
    processes: list[subprocess.Popen] = field(default_factory=list)

    def address(self, network: str) -> str:
        return self.addresses[network]

    def spawn(self, command: list[str], log: Path, env: dict | None = None, user: str = "") -> int:
        """Start a command inside this host; its output goes to `log`. Returns the pid."""
        prefix = ["ip", "netns", "exec", self.netns]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        with open(log, "ab") as out:
            process = subprocess.Popen(
                prefix + command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.processes.append(process)
        logger.info("%s: started %s (pid %d)", self.name, command[0], process.pid)
        return process.pid

    def popen(
        self, command: list[str], env: dict | None = None, stdin: bool = False
    ) -> subprocess.Popen:
        """Start a command inside this host with its stdout piped back (text, line by line),
        and with `stdin` a pipe to send it lines."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *command],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else None,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def run(self, command: list[str], env: dict | None = None, timeout: float = 120) -> str:
        """Run a command inside this host to completion; its output, or NetnsError."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns, *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise NetnsError(f"{self.name}: {' '.join(command)}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def connects(self, address: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from this host to address:port is accepted."""
        probe = f"import socket; socket.create_connection(({address!r}, {port}), {timeout})"
        try:
            self.run([sys.executable, "-c", probe], timeout=timeout + 8)
        except (NetnsError, subprocess.TimeoutExpired):
            return False
        return True

    def stop(
        self, pid: int, sig: int = signal.SIGTERM, target: int = 0, timeout: float = 60
    ) -> None:
        """Send `sig` to `target` (default: the started process `pid` itself) and wait for the
        started process to exit; SIGKILL to its session after `timeout`."""
        process = next(p for p in self.processes if p.pid == pid)
        os.kill(target or pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s: pid %d outlived signal %d; killing", self.name, pid, sig)
            os.killpg(pid, signal.SIGKILL)
            process.wait(timeout=10)

    def pids(self) -> list[int]:
        """Every process whose network namespace is this host's."""
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]


class Topology:
    """The networks and hosts of one harness run."""

    def __init__(self, tag: str | None = None) -> None:
        # Interface names hold 15 characters: a short tag, then a short role.
        self.tag = tag or f"rv{os.getpid() % 10000}"
        self.networks: dict[str, Network] = {}
        self.hosts: dict[str, Host] = {}

    def network(self, name: str, subnet: str) -> Network:
        bridge = f"{self.tag}b{len(self.networks)}"
        self.networks[name] = Network(name, subnet, bridge)
        return self.networks[name]

    def host(self, name: str, **octets: int) -> Host:
        """A host linked to each named network at the given last octet, e.g. fleet=10."""
        host = Host(name, f"{self.tag}-{name}")
        for network, octet in octets.items():
            host.addresses[network] = f"{self.networks[network].subnet}.{octet}"
        self.hosts[name] = host
        return host

    def up(self) -> None:
        """Make every bridge, namespace and link; on any failure, undo what was made."""
        try:
            for network in self.networks.values():
                _ip("link", "add", network.bridge, "type", "bridge")
                _ip("link", "set", network.bridge, "up")
            for index, host in enumerate(self.hosts.values()):
                _ip("netns", "add", host.netns)
                _ip("link", "set", "lo", "up", netns=host.netns)
                for slot, (net_name, address) in enumerate(host.addresses.items()):
                    self._link(host, index, slot, self.networks[net_name], address)
        except Exception:
            self.down()
            raise

    def _link(self, host: Host, index: int, slot: int, network: Network, address: str) -> None:
        outside, inside = f"{self.tag}h{index}n{slot}", f"{self.tag}i{index}n{slot}"
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", host.netns)
        _ip("link", "set", inside, "name", f"eth{slot}", netns=host.netns)
        _ip("addr", "add", f"{address}/24", "dev", f"eth{slot}", netns=host.netns)
        _ip("link", "set", f"eth{slot}", "up", netns=host.netns)
        _ip("link", "set", outside, "master", network.bridge)
        _ip("link", "set", outside, "up")
        host.links[network.name] = outside

    def partition(self, host: Host, network: str, down: bool = True) -> None:
        """Cut (or restore) a host's link to a network, as a pulled cable would."""
        _ip("link", "set", host.links[network], "down" if down else "up")

    def kill_host(self, host: Host) -> list[int]:
        """SIGKILL every process in the host's namespace, as a host that loses power."""
        killed = host.pids()
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in host.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.warning("%s: pid %d outlived SIGKILL", host.name, process.pid)
        return killed

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM every started process (its whole session), then SIGKILL what is left."""
        started = [p for host in self.hosts.values() for p in host.processes if p.poll() is None]
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for process in started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        for host in self.hosts.values():
            self.kill_host(host) if host.pids() else None

    def down(self) -> None:
        """Stop everything and remove every namespace and bridge this run made."""
        self.stop_all()
        for host in self.hosts.values():
            # Deleting the root-side end removes the pair at once; a namespace's own cleanup
            # is deferred by the kernel while anything (a lingering socket) still pins it.
            for outside in host.links.values():
                _ip("link", "del", outside, check=False)
            _ip("netns", "del", host.netns, check=False)
        for network in self.networks.values():
            _ip("link", "del", network.bridge, check=False)

    def leftovers(self) -> list[str]:
        """Namespaces or links of this run still present (empty after `down`)."""
        names = _ip("netns", "list", check=False) + _ip("-o", "link", "show", check=False)
        return sorted({word.rstrip(":@") for word in names.split() if self.tag in word})
