"""A dependency-free progress bar: carriage-return updates on a terminal, periodic lines in logs."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

logger = logging.getLogger(__name__)


class Progress:
    """`with Progress(total, "ae") as bar: bar.update(1, loss=0.1)`; prints rate and ETA."""

    def __init__(
        self,
        total: int,
        desc: str = "",
        start: int = 0,
        stream: TextIO | None = None,
        log_every: float = 15.0,
    ):
        self.total, self.desc, self.n = total, desc, start
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        # A log file gets a full line every log_every seconds instead of a redrawn bar.
        self.every = 0.2 if self.tty else log_every
        self._t0, self._n0, self._last = time.monotonic(), start, 0.0
        self.metrics: dict[str, float] = {}

    def update(self, n: int = 1, **metrics: float) -> None:
        """Advance n units and remember the latest metrics."""
        self.n += n
        self.metrics.update(metrics)
        now = time.monotonic()
        if now - self._last >= self.every or self.n >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done = self.n - self._n0
        rate = done / max(now - self._t0, 1e-9)
        eta = (self.total - self.n) / rate if rate > 0 else float("inf")
        frac = self.n / max(self.total, 1)
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        stats = " ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        line = f"{self.desc} [{bar}] {self.n}/{self.total} {rate:.2f}/s eta {_clock(eta)} {stats}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line."""
        self._draw(time.monotonic())
        if self.tty:
            self.stream.write("\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"
