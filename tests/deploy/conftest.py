"""tests/deploy read and parse files; they touch no database and no cache."""

import pytest


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    # Overrides the suite's autouse fixture of this name, which clears the Redis cache.
    yield
