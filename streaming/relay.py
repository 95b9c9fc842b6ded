"""What the web tier's signalling relay and the worker's listener agree on, and nothing more.

The play consumer imports this module, not `streaming.signalling`: importing that one loads
aiortc, PyAV and aioice, which only a GPU worker needs.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# The largest offer SDP either side takes (a browser's is a few kilobytes).
MAX_SDP_CHARS = 32_000


def worker_group(session_id: str) -> str:
    """The group the owning worker listens on; named from the session UUID only."""
    return f"session.{session_id}.worker"
