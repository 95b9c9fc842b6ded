"""Reverie's world models: the Oasis DiT, autoencoders, the reference sampler and the engine.

Submodules are imported where used (inference.engine, inference.checkpoints, ...), so that
importing the package itself stays free of torch for code that only needs the runtime seam.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# The model this repository trains (inference/training) and ships. The service's one setting
# for it is DEFAULT_CHECKPOINT (webapp/settings.py), which defaults to this file when present.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "crafter-small.safetensors"
