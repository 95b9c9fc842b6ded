"""Reverie's production commands on namespace hosts (bench/fleet/netns.py).

    data      PostgreSQL (initdb in a temp dir, run as the postgres user) and Redis
    control   the control worker and beat (Celery), as deploy/'s control and beat services
    web1/2    gunicorn with a uvicorn worker (deploy/gunicorn.conf.py)
    lb        haproxy in front of both web hosts (health-checked on /healthz), as a
              Kubernetes Service or a cloud load balancer: the one address browsers use
    gpu1/2    manage.py rungpuworker with the placeholder runtime
    turn      coturn with deploy/turn/turnserver.conf
    client    the browser's host: linked to the edge network only, so it reaches the load
              balancer, the web hosts and the TURN relay but never a worker, and video must
              come through TURN

Networks: "fleet" (198.51.100.0/24: data, control, web, gpu, turn) and "edge" (203.0.113.0/24:
lb, web, turn, client). Every process is started through the Topology, so `down` stops it by
pid. The database and Redis are restarted in place by `restart_postgres` / `restart_redis`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.fleet.netns import Host, NetnsError, Topology

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FLEET, EDGE = "198.51.100", "203.0.113"
PG_PORT, REDIS_PORT, WEB_PORT, TURN_PORT, WORKER_METRICS_PORT = 5432, 6379, 8000, 3478, 9100
# haproxy: a web host that fails two 1-s health checks is out; connections it refuses before
# then are tried on the other. Websockets live as long as a session.
HAPROXY_CONFIG = """global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend web
    bind {address}:{port}
    default_backend webs
backend webs
    balance {balance}
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""
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
    def __init__(
        self,
        workdir: Path | None = None,
        tag: str | None = None,
        worker_slots: int = 2,
        balance: str = "source",
    ) -> None:
        """`worker_slots` per GPU worker; `balance` is haproxy's: "source" keeps one client
        host on one web host (until it fails), "roundrobin" spreads every connection."""
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="reverie-fleet-"))
        self.pgroot: Path | None = None
        self.worker_slots = worker_slots
        self.balance = balance
        self.topology = Topology(tag)
        self.topology.network("fleet", FLEET)
        self.topology.network("edge", EDGE)
        self.data = self.topology.host("data", fleet=10)
        self.control = self.topology.host("control", fleet=15)
        self.webs = [self.topology.host(f"web{n}", fleet=10 + n, edge=10 + n) for n in (1, 2)]
        self.lb = self.topology.host("lb", edge=5)
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

    @property
    def url(self) -> str:
        """The site's address for browsers: the load balancer."""
        return f"http://{self.lb.address('edge')}:{WEB_PORT}"

    def web_url(self, index: int = 0) -> str:
        """The address a browser on the client host uses for web host `index` itself."""
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
            CSRF_TRUSTED_ORIGINS=",".join([self.url, *map(self.web_url, range(len(self.webs)))]),
            TRUSTED_PROXIES=self.lb.address("edge"),
            # Every browser of a run signs up from the one client host.
            SIGNUP_RATE="1000/m",
            WORKER_SLOTS=str(self.worker_slots),
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
            self._start_control()
            for web in self.webs:
                self.start_web(web)
            self._start_lb()
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
        self._start_postgres()
        self._start_redis()
        self.data.run(["createdb", "-h", self.data.address("fleet"), "-U", "postgres", "reverie"])

    def _start_postgres(self) -> None:
        assert self.pgroot is not None
        address = self.data.address("fleet")
        self.postgres_pid = self.data.spawn(
            [
                pg_bin("postgres"), "-D", str(self.pgroot / "data"), "-p", str(PG_PORT),
                "-c", f"listen_addresses={address}", "-c", f"unix_socket_directories={self.pgroot}",
                "-c", "fsync=off", "-c", "max_connections=300",
            ],
            self.log("postgres"),
            user="postgres",
        )  # fmt: skip
        wait_until(lambda: self._pg_ready(address), 60, "PostgreSQL on the data host")

    def _start_redis(self) -> None:
        assert self.pgroot is not None
        address = self.data.address("fleet")
        # As deploy/ runs it: nothing outlives a restart, the database is the source of truth.
        self.redis_pid = self.data.spawn(
            [
                "redis-server", "--bind", address, "--port", str(REDIS_PORT), "--save", "",
                "--appendonly", "no", "--dir", str(self.pgroot), "--protected-mode", "no",
            ],
            self.log("redis"),
        )  # fmt: skip
        wait_until(lambda: self.data.connects(address, REDIS_PORT), 30, "Redis on the data host")

    def restart_postgres(self) -> float:
        """Stop PostgreSQL (fast shutdown: sessions cut, as a restart by an operator or a
        failover does) and start it again on the same data; seconds it was not answering."""
        assert self.pgroot is not None
        stopped = time.monotonic()
        # The postmaster under runuser: its pid heads postmaster.pid.
        postmaster = int((self.pgroot / "data" / "postmaster.pid").read_text().split()[0])
        self.data.stop(self.postgres_pid, signal.SIGINT, target=postmaster)
        self._start_postgres()
        return time.monotonic() - stopped

    def restart_redis(self) -> float:
        """Stop Redis and start it again empty (deploy/ keeps nothing in it); seconds down."""
        stopped = time.monotonic()
        self.data.stop(self.redis_pid, signal.SIGTERM)
        self._start_redis()
        return time.monotonic() - stopped

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

    def _start_control(self) -> None:
        env = self.env("fleet")
        celery = [sys.executable, "-m", "celery", "-A", "webapp"]
        self.control.spawn(
            [
                *celery, "worker", "--queues", "control", "--pool", "threads",
                "--concurrency", "4", "--without-gossip", "--without-mingle",
            ],
            self.log("control"),
            env=env,
        )  # fmt: skip
        self.control.spawn(
            [*celery, "beat", "--schedule", str(self.workdir / "celerybeat-schedule")],
            self.log("beat"),
            env=env,
        )

    def start_web(self, web: Host) -> None:
        web.spawn(
            [
                sys.executable, "-m", "gunicorn", "webapp.asgi:application",
                "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
            ],
            self.log(web.name),
            env=self.env(BIND=f"0.0.0.0:{WEB_PORT}", WEB_CONCURRENCY="1"),
        )  # fmt: skip

    def _start_lb(self) -> None:
        servers = "\n".join(
            f"    server {web.name} {web.address('edge')}:{WEB_PORT} check inter 1s fall 2 rise 2"
            for web in self.webs
        )
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                address=self.lb.address("edge"), port=WEB_PORT, balance=self.balance,
                servers=servers,
            )
        )  # fmt: skip
        self.lb.spawn(["haproxy", "-db", "-f", str(config)], self.log("lb"))
        wait_until(lambda: self.client.connects(self.lb.address("edge"), WEB_PORT), 30, "haproxy")

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

    def readiness(self, index: int | None = 0) -> dict:
        """/readyz of web host `index` (None: through the load balancer), from the client."""
        url = (self.url if index is None else self.web_url(index)) + "/readyz"
        probe = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    body = urllib.request.urlopen({url!r}, timeout=5)\n"
            "except urllib.error.HTTPError as exc:\n"
            "    body = exc\n"
            "sys.stdout.write(body.read().decode())\n"
        )
        return json.loads(self.client.run([sys.executable, "-c", probe], timeout=20))

    def live_workers(self, index: int | None = 0) -> int:
        try:
            pools = self.readiness(index).get("pools", {})
        except (NetnsError, ValueError):
            return 0
        if isinstance(pools, dict):
            pools = list(pools.values())
        return sum(int(pool.get("live_workers", 0)) for pool in pools)

    def play_in_browser(
        self, username: str, index: int | None = None, seconds: float = 10.0
    ) -> dict:
        """One Chromium player on the client host (browser_player.py), against web host
        `index` itself or, by default, through the load balancer."""
        script = Path(__file__).with_name("browser_player.py")
        url = self.url if index is None else self.web_url(index)
        command = [sys.executable, str(script), "--url", url]
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
