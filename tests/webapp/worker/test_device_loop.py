"""The device loop: frame pacing, input folded at step start, failures kept per session."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from inference.actions import ActionEncoder, ActionSpace, Button
from streaming.protocol import InputFolder, encode_input
from webapp.worker.device_loop import DeviceLoop

PROMPT = np.zeros((1, 8, 8, 3), dtype=np.uint8)


class CountingRuntime:
    """Returns a tiny frame per session and remembers every step's actions."""

    frame_size = (8, 8)
    action_space = ActionSpace(
        "test-2", "multi_binary", (Button("forward", ("KeyW",)), Button("right", ("KeyD",)))
    )
    key_repeat = 1

    def __init__(self):
        self.steps: list[dict[str, np.ndarray]] = []
        self.fail = False
        self.closed = False

    def warm(self):
        pass

    def start(self, session_id, prompt_frames):
        pass

    def stop(self, session_id):
        pass

    def is_alive(self):
        return True

    def close(self):
        self.closed = True

    def step(self, actions):
        if self.fail:
            raise RuntimeError("the device fell over")
        self.steps.append({sid: a.copy() for sid, a in actions.items()})
        return {sid: np.zeros((8, 8, 3), dtype=np.uint8) for sid in actions}


class BrokenEncoder:
    """An input encoder that fails, as a bug in an action space would."""

    def encode(self, folded):
        raise ValueError("cannot encode")


def test_the_next_tick_is_one_period_on_and_a_late_loop_skips_the_missed_ticks():
    loop = DeviceLoop(CountingRuntime(), frame_rate=20)
    assert loop._next_tick(10.0, 10.01) == pytest.approx(10.05)
    # One slow step (done at 10.07, 20 ms past the tick due at 10.05): that tick runs at once
    # and the cadence stays, so the average rate does not fall.
    assert loop._next_tick(10.0, 10.07) == pytest.approx(10.05)
    # 0.2 s late: no burst of four catch-up steps, the next tick is now.
    assert loop._next_tick(10.0, 10.25) == 10.25


class FakeClock:
    """Monotonic seconds that move only when the loop waits (or a test says so)."""

    def __init__(self, start: float = 100.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def run_for(
    loop: DeviceLoop, clock: FakeClock, seconds: float, pokes: tuple[float, ...] = ()
) -> None:
    """Run the loop on this thread; its waits between ticks advance the fake clock, and a
    player's change pokes the loop at each of `pokes` (seconds after the start)."""
    until = clock.now + seconds
    pending = sorted(clock.now + t for t in pokes)

    def wait(timeout: float, until_poked: bool = False) -> None:
        end = clock.now + max(0.0, timeout)
        while pending and pending[0] <= end:
            clock.now = max(clock.now, pending.pop(0))
            loop.poke()
            if until_poked:
                break
        else:
            clock.now = end
        if clock.now >= until - 1e-9:
            loop._stop.set()

    loop._run_calls = wait
    loop._loop()


def test_a_running_loop_steps_at_the_frame_rate():
    runtime = CountingRuntime()
    clock = FakeClock()
    loop = DeviceLoop(runtime, frame_rate=20, clock=clock)
    loop.add("a", PROMPT)
    run_for(loop, clock, 1.0)
    assert 10 <= len(runtime.steps) <= 22
    assert len(runtime.steps) == 20  # one step per 50 ms period, none skipped or doubled


class TimedRuntime(CountingRuntime):
    """Remembers when (on the fake clock) each step began; each step takes `cost` seconds."""

    def __init__(self, clock: FakeClock, cost: float = 0.0):
        super().__init__()
        self.clock, self.cost, self.started = clock, cost, []

    def step(self, actions):
        self.started.append(round(self.clock.now - 100.0, 4))
        self.clock.now += self.cost
        return super().step(actions)


def test_a_change_brings_the_next_frame_forward_once_half_a_period_has_passed():
    clock = FakeClock()
    runtime = TimedRuntime(clock, cost=0.01)
    loop = DeviceLoop(runtime, frame_rate=20, clock=clock)
    loop.add("a", PROMPT)
    # A change 10 ms after a tick waits for half a period (25 ms); the cadence then counts
    # from the early frame. One at 110 ms, 35 ms after the tick before, runs at once.
    run_for(loop, clock, 0.2, pokes=(0.01, 0.11))
    assert runtime.started == [0.0, 0.025, 0.075, 0.11, 0.16]


def test_without_early_ticks_changes_wait_for_the_cadence():
    clock = FakeClock()
    runtime = TimedRuntime(clock, cost=0.01)
    loop = DeviceLoop(runtime, frame_rate=20, clock=clock, early_ticks=False)
    loop.add("a", PROMPT)
    run_for(loop, clock, 0.2, pokes=(0.01, 0.08))
    assert runtime.started == [0.0, 0.05, 0.1, 0.15]


def test_steps_slower_than_the_period_run_back_to_back_without_bursts():
    runtime = CountingRuntime()
    clock = FakeClock()
    slow_step = runtime.step

    def step(actions):
        clock.now += 0.08  # each step takes 80 ms of a 50 ms period
        return slow_step(actions)

    runtime.step = step
    loop = DeviceLoop(runtime, frame_rate=20, clock=clock)
    loop.add("a", PROMPT)
    run_for(loop, clock, 1.0)
    assert len(runtime.steps) == 13  # 1 s / 80 ms: as many as fit, no catch-up burst


def test_each_step_takes_the_input_folded_at_its_start_and_names_the_newest_seq():
    runtime = CountingRuntime()
    loop = DeviceLoop(runtime, frame_rate=20)
    folder = InputFolder()
    frames = []
    loop.add(
        "a",
        PROMPT,
        folder=folder,
        encoder=ActionEncoder(runtime.action_space),
        sinks=(lambda image, info: frames.append(info),),
    )
    folder.receive(encode_input(1, 0.0, keys=["KeyW"]))
    loop._tick()
    folder.receive(encode_input(2, 0.0, keys=["KeyW"]))
    folder.receive(encode_input(3, 0.0, keys=["KeyD"]))  # the latest state wins
    loop._tick()
    loop._tick()  # nothing new: same held keys, no seq to acknowledge
    assert [list(step["a"]) for step in runtime.steps] == [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    assert [(f.number, f.seq, f.changed_seq) for f in frames] == [
        (1, 1, 1),
        (2, 3, 3),  # seq 2 only repeated what was held; seq 3 changed it
        (3, None, None),
    ]
    assert frames[0].taken_at <= frames[0].generated_at


def test_a_session_whose_input_fails_gets_an_error_and_the_others_keep_their_frames():
    runtime = CountingRuntime()
    loop = DeviceLoop(runtime, frame_rate=20)
    loop.add("bad", PROMPT, folder=InputFolder(), encoder=BrokenEncoder())
    good = loop.add(
        "good", PROMPT, folder=InputFolder(), encoder=ActionEncoder(runtime.action_space)
    )
    loop._tick()
    loop._tick()
    assert "cannot encode" in loop.feed("bad").error
    assert good.error is None and good.frames == 2
    assert all(set(step) == {"good"} for step in runtime.steps)


def test_a_failed_step_ends_its_sessions_and_the_loop_thread_lives_on(monkeypatch):
    runtime = CountingRuntime()
    loop = DeviceLoop(runtime, frame_rate=50)
    feed = loop.add("a", PROMPT)
    runtime.fail = True
    loop._tick()
    assert "fell over" in feed.error
    ticks = threading.Event()

    def broken_tick():
        ticks.set()
        raise RuntimeError("a bug in the loop itself")

    monkeypatch.setattr(loop, "_tick", broken_tick)
    loop.start()
    assert ticks.wait(2)
    time.sleep(0.1)
    assert loop.is_alive()
    loop.shutdown()
    assert not loop.is_alive()


class ThreadNotingRuntime(CountingRuntime):
    """Notes the thread of every call: torch's CPU thread pool belongs to the calling thread."""

    def __init__(self, calls: list[tuple[str, int]]):
        super().__init__()
        self.calls = calls

    def start(self, session_id, prompt_frames):
        self.calls.append(("start", threading.get_ident()))
        if session_id == "refused":
            raise ValueError("prompt frames must be (P,H,W,3)")

    def step(self, actions):
        self.calls.append(("step", threading.get_ident()))
        return super().step(actions)

    def stop(self, session_id):
        self.calls.append(("stop", threading.get_ident()))


def test_every_runtime_call_runs_on_the_loop_thread_and_errors_reach_the_caller():
    calls: list[tuple[str, int]] = []

    def build():
        calls.append(("build", threading.get_ident()))
        return ThreadNotingRuntime(calls)

    loop = DeviceLoop(None, frame_rate=50, build=build)
    loop.start()
    frames = threading.Event()
    loop.add("a", PROMPT, sinks=(lambda image, info: frames.set(),))
    assert frames.wait(2)
    with pytest.raises(ValueError, match="must be"):
        loop.add("refused", PROMPT)
    assert loop.feed("refused") is None and loop.feed("a") is not None
    loop.remove("a")
    loop.shutdown()
    assert {name for name, _ in calls} == {"build", "start", "step", "stop"}
    assert {ident for _, ident in calls} == {loop._thread.ident}
    assert loop._thread.ident != threading.get_ident()
    loop.remove("a")  # after shutdown (a runner cleaning up late) it runs here, no hang
    assert calls[-1] == ("stop", threading.get_ident())


def test_a_runtime_that_cannot_be_built_fails_start_with_its_own_error():
    def build():
        raise FileNotFoundError("world-model checkpoint missing.safetensors does not exist")

    loop = DeviceLoop(None, frame_rate=20, build=build)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        loop.start(timeout=5)
    loop._thread.join(2)
    assert not loop.is_alive()


def test_a_call_queued_as_the_loop_stops_is_still_answered_and_a_failed_stop_is_logged(caplog):
    calls: list[tuple[str, int]] = []
    runtime = ThreadNotingRuntime(calls)
    loop = DeviceLoop(runtime, frame_rate=20)
    loop._accepting = True  # as if the thread ran: calls queue up for it
    remover = threading.Thread(target=loop.remove, args=("a",))
    remover.start()
    for _ in range(200):
        if not loop._calls.empty():
            break
        time.sleep(0.01)
    assert remover.is_alive()  # waiting for the loop thread to take its call
    loop._wind_down()  # what the thread does on its way out, here
    remover.join(2)
    assert not remover.is_alive() and calls == [("stop", threading.get_ident())]

    def broken_stop(session_id):
        raise RuntimeError("the model process exited")

    runtime.stop = broken_stop
    loop.remove("a")  # the runner still gets to end its session
    assert "failed to stop" in caplog.text


def test_a_runtime_the_loop_built_is_closed_with_it_and_a_given_one_is_left_to_its_owner():
    built = CountingRuntime()
    loop = DeviceLoop(None, frame_rate=50, build=lambda: built)
    loop.start()
    loop.shutdown()
    given = CountingRuntime()
    other = DeviceLoop(given, frame_rate=50)
    other.start()
    other.shutdown()
    assert built.closed and not given.closed
