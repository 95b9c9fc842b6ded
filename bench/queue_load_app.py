"""The web tier's ASGI app for bench/queue_load.py, optionally as it behaved before snapshots.

QUEUE_LOAD_VARIANT=recompute makes every waiting page recompute the pool's whole line on every
event and heartbeat (one reading per page, as before webapp/queue/snapshot.py), so the bench can
compare both in one run. Any other value serves the app unchanged.
"""

from __future__ import annotations

import os

from webapp.asgi import application  # noqa: F401  (the app gunicorn serves)
from webapp.queue import snapshot

if os.environ.get("QUEUE_LOAD_VARIANT") == "recompute":

    def _one_reading_per_page(pool, event_id=None):
        return snapshot.snapshots.refresh(pool, event_id)

    snapshot.snapshots.get = _one_reading_per_page  # type: ignore[method-assign]
