"""The supervisor runservice runs its children under, with real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from webapp.supervisor import Backoff, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][0] != "Z"


def poll_until(supervisor: Supervisor, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        supervisor.poll()
        time.sleep(0.05)


@pytest.fixture
def supervisors():
    made = []

    def make(commands, **kwargs):
        made.append(Supervisor(commands, **kwargs))
        return made[-1]

    yield make
    for supervisor in made:
        supervisor.stop()


def test_a_killed_child_is_restarted_and_the_others_keep_running(supervisors):
    sup = supervisors({"gpu0": SLEEPER, "web": SLEEPER}, backoff=Backoff(initial=0.2))
    sup.start()
    gpu, web = sup.children["gpu0"], sup.children["web"]
    first_gpu, first_web = gpu.process.pid, web.process.pid
    os.kill(first_gpu, signal.SIGKILL)
    poll_until(sup, lambda: gpu.starts == 2, timeout=5)
    assert gpu.process.pid != first_gpu and alive(gpu.process.pid)
    assert web.process.pid == first_web and web.starts == 1 and alive(first_web)


def test_a_crash_loop_backs_off_doubling_up_to_the_maximum():
    backoff = Backoff(initial=1, maximum=8, stable=30)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_quick_deaths_delay_restarts_and_a_stable_run_resets_them(supervisors):
    sup = supervisors({"beat": CRASHER}, backoff=Backoff(initial=0.2, maximum=0.8, stable=0.5))
    sup.start()
    beat = sup.children["beat"]
    poll_until(sup, lambda: beat.starts == 4, timeout=10)
    assert beat.quick_deaths == 3  # delays 0.2, 0.4, 0.8 so far
    poll_until(sup, lambda: beat.restart_at is not None, timeout=5)
    delays = beat.restart_at - time.monotonic()
    assert 0.5 < delays <= 0.8
    # A run past `stable` counts as healthy: the next death starts the delays over.
    beat.command = [sys.executable, "-c", "import time; time.sleep(0.7)"]
    poll_until(sup, lambda: beat.starts == 6, timeout=10)
    assert beat.quick_deaths <= 1


def test_stop_ends_the_first_group_before_the_rest_and_leaves_no_process(supervisors, tmp_path):
    # Each child writes when its SIGTERM arrives, so the file shows the order.
    order = tmp_path / "order"
    child = textwrap.dedent(
        f"""
        import signal, sys, time
        def bye(*_):
            with open({str(order)!r}, "a") as f:
                f.write(sys.argv[1] + "\\n")
            time.sleep(0.3)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        time.sleep(120)
        """
    )
    commands = {name: [sys.executable, "-c", child, name] for name in ("web", "gpu0", "beat")}
    sup = supervisors(commands, first_to_stop=lambda name: name.startswith("gpu"))
    sup.start()
    time.sleep(0.5)  # let the handlers install
    pids = [c.process.pid for c in sup.children.values()]
    sup.stop()
    lines = order.read_text().split()
    assert lines[0] == "gpu0" and sorted(lines[1:]) == ["beat", "web"]
    assert not any(alive(pid) for pid in pids)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(supervisors):
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
    ]
    sup = supervisors({"control": stubborn}, stop_timeout=0.5)
    sup.start()
    time.sleep(0.3)
    pid = sup.children["control"].process.pid
    sup.stop()
    assert not alive(pid)


def test_children_die_with_a_supervisor_that_is_killed(tmp_path):
    # The supervisor itself gets SIGKILL (no chance to clean up): the kernel's parent-death
    # signal still ends its children.
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import sys, time
        from webapp.supervisor import Supervisor
        sup = Supervisor({{"a": {SLEEPER!r}, "b": {SLEEPER!r}}})
        sup.start()
        open({str(pids)!r}, "w").write(" ".join(str(c.process.pid) for c in sup.children.values()))
        sup.run()
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 20
        while not (pids.exists() and pids.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        children = [int(p) for p in pids.read_text().split()]
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in children)
    finally:
        parent.kill()


def test_exits_are_described_by_code_or_signal_name():
    assert describe_exit(3) == "code 3"
    assert describe_exit(-9) == "signal SIGKILL"
