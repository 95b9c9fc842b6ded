"""A GPU worker's Prometheus metrics: frames, their generation and encode times, slot use and
the players' own key-to-photon times (reported by the page, streaming/protocol.py).

The metrics live in prometheus_client's default registry of the worker process; the worker
serves them on WORKER_METRICS_PORT (webapp/worker/observe.py). Labels name the pool and the
worker's public id; `bind` sets them once the worker has registered (before that, and in tests
that run the pieces alone, they are empty).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Frame times at 20 fps sit around 10-60 ms; the tail matters up to a second.
FRAME_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
PHOTON_BUCKETS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)

FRAMES = Counter("reverie_frames", "Frames generated for players", ["pool", "worker"])
FRAME_SECONDS = Histogram(
    "reverie_frame_seconds",
    "Time per frame by stage: generation (one model step for every session in it), "
    "encode (one session's video frame encoded and sent)",
    ["pool", "stage"],
    buckets=FRAME_BUCKETS,
)
KEY_TO_PHOTON = Histogram(
    "reverie_key_to_photon_seconds",
    "Key press to the first presented frame that shows it, as the player's page measured it",
    ["pool"],
    buckets=PHOTON_BUCKETS,
)
DRAINING = Gauge(
    "reverie_worker_draining", "1 while the worker takes no new players", ["pool", "worker"]
)

_labels = {"pool": "", "worker": ""}


def bind(pool: str, worker: str) -> None:
    """Name the pool and worker every later figure is recorded under."""
    _labels.update(pool=pool, worker=worker)
    FRAMES.labels(**_labels)  # the series exist (at 0) before the first frame
    DRAINING.labels(**_labels).set(0)


def labels() -> dict[str, str]:
    return dict(_labels)


def frames_generated(count: int, seconds: float) -> None:
    FRAMES.labels(**_labels).inc(count)
    FRAME_SECONDS.labels(pool=_labels["pool"], stage="generation").observe(max(0.0, seconds))


def frame_encoded(seconds: float) -> None:
    FRAME_SECONDS.labels(pool=_labels["pool"], stage="encode").observe(max(0.0, seconds))


def key_to_photon(ms: float) -> None:
    KEY_TO_PHOTON.labels(pool=_labels["pool"]).observe(ms / 1000.0)


def draining(on: bool) -> None:
    DRAINING.labels(**_labels).set(1 if on else 0)
