"""Paths and the variables of deploy/.env.example, for the tests of deploy/."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"

# Set by compose or Kubernetes for a container, not read by Reverie.
FOREIGN_VARIABLES = {"CUDA_VISIBLE_DEVICES"}


def env_example() -> dict[str, str]:
    """KEY -> value of every assignment line in deploy/.env.example, single quotes removed."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            value = match[2]
            quoted = len(value) > 1 and value[0] == value[-1] == "'"
            pairs[match[1]] = value[1:-1] if quoted else value
    return pairs
