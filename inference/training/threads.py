"""Pick the torch thread count that is fastest right now, while training runs.

On a shared 2-core box a niced 2-thread job collapses whenever anyone else takes a core: each
OpenMP barrier waits for the thread that is starved (docs/cpu-budget.md: 846 ms medians instead of
90). One thread then runs several times faster. ThreadTuner times steps at the current count and,
every `every` steps or as soon as three steps in a row run 2.5x slower than usual, tries each
count for `probe` steps and keeps the fastest median.
"""

from __future__ import annotations

import logging
import statistics
import time

import torch

logger = logging.getLogger(__name__)


class ThreadTuner:
    """Call tick() once per training step; it may change torch.get_num_threads()."""

    def __init__(
        self, choices: tuple[int, ...] = (1, 2), every: int = 200, probe: int = 6, first: int = 10
    ):
        self.choices, self.every, self.probe, self.first = choices, every, probe, first
        self.best = torch.get_num_threads()
        self.steps = 0
        self.medians: dict[int, float] = {}
        self._probing = False
        self._slow = 0  # consecutive steps far slower than the last probe's median
        self._queue: list[int] = []
        self._samples: dict[int, list[float]] = {}
        self._last = time.perf_counter()

    def tick(self) -> None:
        """Record the step that just ended; switch thread count when a probe round says so."""
        now = time.perf_counter()
        current = torch.get_num_threads()
        if self._probing:
            self._samples.setdefault(current, []).append(now - self._last)
        self.steps += 1
        typical = self.medians.get(current)
        if not self._probing and typical and now - self._last > 2.5 * typical:
            self._slow += 1  # someone took a core: re-probe now rather than at the next round
        elif not self._probing:
            self._slow = 0
        if not self._probing and ((self.steps - self.first) % self.every == 0 or self._slow >= 3):
            self._slow = 0
            self._probing, self._queue, self._samples = True, list(self.choices), {}
            torch.set_num_threads(self._queue.pop(0))
        elif self._probing and len(self._samples.get(current, [])) >= self.probe:
            if self._queue:
                torch.set_num_threads(self._queue.pop(0))
            else:
                # Median, not mean: a SIGSTOP from a colleague's benchmark lands in one sample.
                self.medians = {n: statistics.median(t) for n, t in self._samples.items()}
                self.best = min(self.medians, key=self.medians.get)
                torch.set_num_threads(self.best)
                self._probing = False
                logger.info(
                    "threads: s/step %s -> %d",
                    {n: round(m, 3) for n, m in self.medians.items()},
                    self.best,
                )
        self._last = time.perf_counter()
