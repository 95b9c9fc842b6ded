"""The play cadence shared by the recorder and the serving runtime."""

from __future__ import annotations

import logging

import pytest

from inference.cadence import NOOP, KeyRepeat, held_index

logger = logging.getLogger(__name__)


def test_a_held_key_fires_at_once_then_every_period():
    gate = KeyRepeat(4)
    assert [gate(2) for _ in range(9)] == [2, 0, 0, 0, 2, 0, 0, 0, 2]


def test_a_new_key_or_a_release_restarts_the_rhythm():
    gate = KeyRepeat(3)
    fired = [gate(a) for a in (1, 1, 3, 3, 3, 3, 0, 3)]
    assert fired == [1, 0, 3, 0, 0, 3, NOOP, 3]


def test_held_index_takes_the_last_pressed_key():
    assert held_index([0, 0, 0]) == NOOP
    assert held_index([1, 0, 0, 0]) == NOOP  # pressing only the no-op is nothing
    assert held_index([0, 1, 0, 0, 0, 1]) == 5


def test_period_must_be_positive():
    with pytest.raises(ValueError):
        KeyRepeat(0)
