"""Fixtures for the inference tests: where the oasis-tiny reference fixture lives."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.inference.helpers import OASIS_TINY

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def oasis_tiny_dir() -> Path:
    """tests/fixtures/oasis-tiny (see its README.md); a clone without it is broken, not skipped."""
    needed = ("config.json", "dit.safetensors", "vae.safetensors", "parity.safetensors")
    missing = [name for name in needed if not (OASIS_TINY / name).is_file()]
    assert not missing, f"oasis-tiny fixture incomplete: {missing} not under {OASIS_TINY}"
    return OASIS_TINY


@pytest.fixture(autouse=True)
def _two_threads():
    # Keep runs comparable across machines, and leave a core free on bigger boxes.
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)
