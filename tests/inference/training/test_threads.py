"""ThreadTuner keeps the thread count whose steps are fastest."""

from __future__ import annotations

import logging

import pytest
import torch

from inference.training import threads

logger = logging.getLogger(__name__)


@pytest.fixture
def clock(monkeypatch):
    """A step clock the test advances by hand; torch starts at 2 threads and is restored after."""
    fake = {"now": 0.0}
    monkeypatch.setattr(threads.time, "perf_counter", lambda: fake["now"])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield fake
    torch.set_num_threads(before)


def test_it_switches_to_the_faster_thread_count(clock):
    tuner = threads.ThreadTuner(choices=(1, 2), every=50, probe=3, first=5)
    for _ in range(30):
        # Pretend one thread is 3x faster (a colleague holds the other core).
        clock["now"] += 0.1 if torch.get_num_threads() == 1 else 0.3
        tuner.tick()
    assert tuner.best == 1 and torch.get_num_threads() == 1
    assert tuner.medians[1] < tuner.medians[2]


def test_it_reprobes_as_soon_as_steps_slow_down(clock):
    tuner = threads.ThreadTuner(choices=(1, 2), every=1000, probe=3, first=1)
    for step in range(60):
        busy = step >= 20  # a colleague's job starts at step 20
        two = 2.0 if busy else 0.1
        clock["now"] += two if torch.get_num_threads() == 2 else 0.3
        tuner.tick()
    assert tuner.best == 1 and torch.get_num_threads() == 1
