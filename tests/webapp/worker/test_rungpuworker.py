"""rungpuworker's start: a missing pool is a clear error, or waited for when asked."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections

from webapp.fleet.models import GpuPool
from webapp.management.commands import rungpuworker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_missing_pool_stops_the_start_naming_the_known_ones(pool):
    with pytest.raises(CommandError, match=r"no pool with slug 'nope' \(known: test\)"):
        call_command("rungpuworker", "--pool", "nope", "--wait-for-pool", "0.2")


def test_a_bad_metrics_port_is_refused(pool):
    with pytest.raises(CommandError, match="--metrics-port"):
        call_command("rungpuworker", "--pool", "test", "--metrics-port", "70000")


def test_a_worker_told_to_wait_finds_the_pool_once_it_is_created(monkeypatch):
    monkeypatch.setattr(rungpuworker, "POOL_POLL_SECONDS", 0.1)

    def create_later():
        threading.Event().wait(0.5)
        GpuPool.objects.create(name="Late", slug="late")
        close_old_connections()

    creator = threading.Thread(target=create_later)
    creator.start()
    found = rungpuworker.Command()._pool("late", wait=10)
    creator.join()
    assert found is not None and found.slug == "late"
