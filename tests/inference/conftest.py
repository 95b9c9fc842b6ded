"""Fixtures for the inference tests: where the oasis-tiny reference fixture lives."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.inference.helpers import shared_dir

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def oasis_tiny_dir() -> Path:
    """shared/fixtures/oasis-tiny, or a skip saying where it was looked for."""
    path = shared_dir() / "fixtures" / "oasis-tiny"
    needed = ("config.json", "dit.safetensors", "vae.safetensors", "parity.safetensors")
    missing = [name for name in needed if not (path / name).is_file()]
    if missing:
        pytest.skip(f"oasis-tiny fixture absent: {missing} not under {path} "
                    "(set REVERIE_SHARED_DIR to the directory holding fixtures/)")
    return path


@pytest.fixture(autouse=True)
def _two_threads():
    # Keep runs comparable across machines, and leave a core free on bigger boxes.
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)
