"""Reverie's production commands on namespace hosts (bench/fleet/netns.py).

    data      PostgreSQL (initdb in a temp dir, run as the postgres user) and Redis
    web1/2    gunicorn with a uvicorn worker (deploy/gunicorn.conf.py); web1 also runs the
              control worker and beat (Celery), as deploy/'s control and beat services do
    gpu1/2    manage.py rungpuworker with the placeholder runtime
    turn      coturn with deploy/turn/turnserver.conf
    client    the browser's host: linked to the edge network only, so it reaches the web
              hosts and the TURN relay but never a worker, and video must come through TURN

Networks: "fleet" (198.51.100.0/24: data, web, gpu, turn) and "edge" (203.0.113.0/24: web,
turn, client). Every process is started through the Topology, so `down` stops it by pid.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.fleet.netns import Host, NetnsError, Topology

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FLEET, EDGE = "198.51.100", "203.0.113"
PG_PORT, REDIS_PORT, WEB_PORT, TURN_PORT, WORKER_METRICS_PORT = 5432, 6379, 8000, 3478, 9100
TURN_SECRET = "fleet-harness-turn-secret"


def pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise NetnsError(f"{name} not found (install Debian's postgresql package)")


class FleetStack:
    def __init__(self, workdir: Path | None = None, tag: str | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="reverie-fleet-"))
        self.pgroot: Path | None = None
        self.topology = Topology(tag)
        self.topology.network("fleet", FLEET)
        self.topology.network("edge", EDGE)
        self.data = self.topology.host("data", fleet=10)
        self.webs = [self.topology.host(f"web{n}", fleet=10 + n, edge=10 + n) for n in (1, 2)]
        self.gpus = [self.topology.host(f"gpu{n}", fleet=20 + n) for n in (1, 2)]
        self.turn = self.topology.host("turn", fleet=30, edge=30)
        self.client = self.topology.host("client", edge=50)

    # --- addresses and environment -----------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.data.address('fleet')}:{PG_PORT}/reverie"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.data.address('fleet')}:{REDIS_PORT}/0"

    def web_url(self, index: int = 0) -> str:
        """The address a browser on the client host uses for web host `index`."""
        return f"http://{self.webs[index].address('edge')}:{WEB_PORT}"

    def env(self, network: str = "edge", **extra: str) -> dict:
        """The production environment of a host; TURN_URLS name the relay on `network`, the
        one that host reaches (web hosts mint credentials for browsers on the edge)."""
        turn = f"turn:{self.turn.address(network)}:{TURN_PORT}?transport=udp"
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="webapp.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SECRET_KEY="fleet-harness-secret-key",
            ALLOWED_HOSTS="*",
            CSRF_TRUSTED_ORIGINS=",".join(self.web_url(i) for i in range(len(self.webs))),
            DEFAULT_CHECKPOINT="none",
            WORKER_RUNTIME="inference.placeholder.PlaceholderRuntime",
            TURN_URLS=turn,
            TURN_SECRET=TURN_SECRET,
            PYTHONPATH=str(REPO),
            DATA_DIR=str(self.workdir / "data"),
        )
        env.update(extra)
        return env

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    # --- bring-up ----------------------------------------------------------------------------

    def up(self) -> None:
        self.topology.up()
        try:
            self._start_data()
            self._migrate()
            for index, web in enumerate(self.webs):
                self._start_web(web, control=index == 0)
            self._start_turn()
            for gpu in self.gpus:
                self.start_gpu(gpu)
        except Exception:
            self.down()
            raise

    def _start_data(self) -> None:
        # PostgreSQL runs as its own user, which cannot enter root's temp dirs: a dir of its own.
        self.pgroot = Path(tempfile.mkdtemp(prefix="reverie-fleet-pg-"))
        shutil.chown(self.pgroot, "postgres")
        pgdata = self.pgroot / "data"
        self.data.run(
            ["runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", str(pgdata), "-A", "trust"],
            timeout=120,
        )
        with open(pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {FLEET}.0/24 trust\n")  # the harness's own hosts only
        address = self.data.address("fleet")
        self.data.spawn(
            [
                pg_bin("postgres"), "-D", str(pgdata), "-p", str(PG_PORT),
                "-c", f"listen_addresses={address}", "-c", f"unix_socket_directories={self.pgroot}",
                "-c", "fsync=off", "-c", "max_connections=300",
            ],
            self.log("postgres"),
            user="postgres",
        )  # fmt: skip
        self.data.spawn(
            [
                "redis-server", "--bind", address, "--port", str(REDIS_PORT), "--save", "",
                "--appendonly", "no", "--dir", str(self.pgroot), "--protected-mode", "no",
            ],
            self.log("redis"),
        )  # fmt: skip
        wait_until(lambda: self._pg_ready(address), 60, "PostgreSQL on the data host")
        self.data.run(["createdb", "-h", address, "-U", "postgres", "reverie"])

    def _pg_ready(self, address: str) -> bool:
        try:
            self.data.run(["pg_isready", "-q", "-h", address, "-p", str(PG_PORT)], timeout=10)
            return True
        except NetnsError:
            return False

    def _migrate(self) -> None:
        manage = [sys.executable, str(REPO / "manage.py")]
        web = self.webs[0]
        web.run([*manage, "migrate", "--noinput"], env=self.env(), timeout=300)
        web.run([*manage, "seedservice"], env=self.env(), timeout=300)

    def _start_web(self, web: Host, control: bool) -> None:
        env = self.env(BIND=f"0.0.0.0:{WEB_PORT}", WEB_CONCURRENCY="1")
        web.spawn(
            [
                sys.executable, "-m", "gunicorn", "webapp.asgi:application",
                "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
            ],
            self.log(web.name),
            env=env,
        )  # fmt: skip
        if control:
            celery = [sys.executable, "-m", "celery", "-A", "webapp"]
            web.spawn(
                [
                    *celery, "worker", "--queues", "control", "--pool", "threads",
                    "--concurrency", "4", "--without-gossip", "--without-mingle",
                ],
                self.log("control"),
                env=env,
            )  # fmt: skip
            web.spawn(
                [*celery, "beat", "--schedule", str(self.workdir / "celerybeat-schedule")],
                self.log("beat"),
                env=env,
            )

    def _start_turn(self) -> None:
        self.turn.spawn(
            [
                "turnserver", "-c", str(REPO / "deploy" / "turn" / "turnserver.conf"),
                "--static-auth-secret", TURN_SECRET, "--realm", "fleet.test",
                "--listening-ip", self.turn.address("edge"),
                "--listening-ip", self.turn.address("fleet"),
                "--relay-ip", self.turn.address("fleet"),
                "--no-tls", "--no-dtls", "--log-file", "stdout",
                "--pidfile", str(self.workdir / "turnserver.pid"),
            ],
            self.log("turn"),
        )  # fmt: skip

    def start_gpu(self, gpu: Host) -> int:
        # Restarted when it exits, as compose's `restart: unless-stopped` and Kubernetes do: a
        # worker that finds itself reaped (after a partition) shuts down and comes back new.
        command = f"{sys.executable} {REPO / 'manage.py'} rungpuworker --wait-for-pool 60"
        return gpu.spawn(
            ["sh", "-c", f"while :; do {command}; sleep 1; done"],
            self.log(gpu.name),
            env=self.env(
                "fleet",
                WEBRTC_HOST_ADDRESSES=gpu.address("fleet"),
                WORKER_METRICS_PORT=str(WORKER_METRICS_PORT),
            ),
        )

    # --- what the client sees ------------------------------------------------------------------

    def readiness(self, index: int = 0) -> dict:
        """/readyz of web host `index`, fetched from the client host."""
        probe = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    body = urllib.request.urlopen({self.web_url(index) + '/readyz'!r}, timeout=5)\n"
            "except urllib.error.HTTPError as exc:\n"
            "    body = exc\n"
            "sys.stdout.write(body.read().decode())\n"
        )
        return json.loads(self.client.run([sys.executable, "-c", probe], timeout=20))

    def live_workers(self, index: int = 0) -> int:
        try:
            pools = self.readiness(index).get("pools", {})
        except (NetnsError, ValueError):
            return 0
        if isinstance(pools, dict):
            pools = list(pools.values())
        return sum(int(pool.get("live_workers", 0)) for pool in pools)

    def play_in_browser(self, username: str, index: int = 0, seconds: float = 10.0) -> dict:
        """One Chromium player on the client host against web host `index` (browser_player.py)."""
        script = Path(__file__).with_name("browser_player.py")
        command = [sys.executable, str(script), "--url", self.web_url(index)]
        command += ["--username", username, "--seconds", str(seconds)]
        out = self.client.run(command, env=dict(os.environ), timeout=120 + seconds)
        return json.loads(out.strip().splitlines()[-1])

    def sql(self, query: str) -> list[list[str]]:
        """Rows of one query on the fleet's database, run on the data host."""
        out = self.data.run(
            ["psql", "-h", self.data.address("fleet"), "-U", "postgres", "-d", "reverie",
             "-At", "-F", "\t", "-c", query]
        )  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def host_of_worker_pid(self, pid: int) -> Host | None:
        return next((gpu for gpu in self.gpus if pid in gpu.pids()), None)

    def worker_pids(self, gpu: Host) -> set[int]:
        """Pids of the workers registered and live in the database that run on `gpu`."""
        rows = self.sql("SELECT pid FROM fleet_worker WHERE state IN ('ready', 'draining')")
        return {int(row[0]) for row in rows} & set(gpu.pids())

    def down(self) -> None:
        self.topology.down()
        if self.pgroot is not None:
            shutil.rmtree(self.pgroot, ignore_errors=True)


def wait_until(check, timeout: float, what: str, every: float = 0.5) -> float:
    """Seconds until `check()` is true; RuntimeError naming `what` after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started
