"""Reverie's world models: the Oasis DiT, autoencoders, the reference sampler and the engine.

Submodules are imported where used (inference.engine, inference.checkpoints, ...), so that
importing the package itself stays free of torch for code that only needs the runtime seam.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
