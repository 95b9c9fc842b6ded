"""The session task: enqueued by name from the web tier, run only where a worker process is."""

from __future__ import annotations

import pytest

from tests.conftest import make_worker
from webapp.play import services
from webapp.queue import services as queue_services
from webapp.worker.tasks import run_play_session


def test_the_task_is_registered_under_the_name_the_web_tier_enqueues():
    assert run_play_session.name == services.SESSION_TASK


def test_a_process_without_slots_drops_the_task(caplog):
    assert run_play_session.run("6d1f1a57-0000-4000-8000-000000000000") is None
    assert "without slots" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_confirm_enqueues_the_task_by_name_on_the_owning_workers_queue(world, owner, monkeypatch):
    sent = []
    monkeypatch.setattr(
        services.celery_app, "send_task", lambda name, args, queue: sent.append((name, args, queue))
    )
    worker = make_worker(world.pool)
    ticket = queue_services.join(owner, world)
    ticket.refresh_from_db()
    session = services.confirm(ticket)
    assert sent == [(services.SESSION_TASK, [str(session.public_id)], worker.queue_name)]
