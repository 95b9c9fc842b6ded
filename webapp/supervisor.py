"""Keep the service's processes running: restart a child that dies, with backoff.

runservice (the README's `make up`) runs the web server, the Celery control worker, beat and
the GPU workers as children of one supervisor. A child that exits on its own is logged and
started again after a delay that doubles with each quick death (a crash loop must not eat the
two cores) and resets once the child has stayed up for a while; the others never notice. Ctrl-C
stops everything: the GPU workers first, so their "worker shut down" still reaches players
through the web server and Redis, then the rest. Each child runs in its own session (so a
terminal's Ctrl-C reaches only the supervisor) and is told by the kernel to stop if the
supervisor itself dies, so no child outlives it even after a SIGKILL.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Best effort: prctl is Linux-only.
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):
        pass


def describe_exit(code: int) -> str:
    """'code 1' or 'signal SIGKILL' for a Popen return code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class Backoff:
    """Delays between restarts: initial, doubled per quick death up to maximum; a child that
    ran at least `stable` seconds is healthy again and starts from initial."""

    initial: float = 1.0
    maximum: float = 30.0
    stable: float = 30.0

    def delay(self, quick_deaths: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, quick_deaths - 1))


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # when a dead child is due to start again
    quick_deaths: int = 0
    starts: int = 0
    pids: list[int] = field(default_factory=list)  # every pid it has had, oldest first


class Supervisor:
    """Run named commands, restart the ones that die, stop them all in order."""

    def __init__(
        self,
        commands: Mapping[str, list[str]],
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        backoff: Backoff | None = None,
        first_to_stop: Callable[[str], bool] = lambda name: False,
        stop_timeout: float = 20.0,
        log_dir: Path | None = None,
    ):
        self.children = {name: Child(name, list(cmd)) for name, cmd in commands.items()}
        self.env, self.cwd = dict(env or os.environ), cwd
        self.backoff = backoff or Backoff()
        self.first_to_stop = first_to_stop
        self.stop_timeout = stop_timeout
        self.log_dir = log_dir

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 (child owns it)
        child.process = subprocess.Popen(
            child.command,
            env=self.env,
            cwd=self.cwd,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads are running here)
        )
        if output is not None:
            output.close()  # the child holds its own descriptor
        child.started_at, child.restart_at = time.monotonic(), None
        child.starts += 1
        child.pids.append(child.process.pid)
        logger.info("started %s (pid %d)", child.name, child.process.pid)

    def poll(self) -> None:
        """Notice children that died and restart the ones whose delay has passed."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child)
                continue
            if child.process is None or child.process.poll() is None:
                continue
            ran = now - child.started_at
            child.quick_deaths = 0 if ran >= self.backoff.stable else child.quick_deaths + 1
            delay = self.backoff.delay(child.quick_deaths)
            child.restart_at = now + delay
            logger.error(
                "%s (pid %d) exited with %s after %.0f s; restarting in %.0f s",
                child.name,
                child.process.pid,
                describe_exit(child.process.returncode),
                ran,
                delay,
            )

    def run(self, interval: float = 0.25) -> None:
        """Poll until interrupted (KeyboardInterrupt); the caller then calls stop()."""
        while True:
            self.poll()
            time.sleep(interval)

    # -- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM the first group, wait, then the rest; SIGKILL what outstays the timeout."""
        first = [c for c in self.children.values() if self.first_to_stop(c.name)]
        rest = [c for c in self.children.values() if not self.first_to_stop(c.name)]
        for group in (first, rest):
            self._stop_group(group)

    def _stop_group(self, group: list[Child]) -> None:
        for child in group:
            child.restart_at = None
        running = {
            c.name: c.process for c in group if c.process is not None and c.process.poll() is None
        }
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for name, process in running.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", name, self.stop_timeout)
                process.kill()
                process.wait()
            # Anything the child started in its session goes with it.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
