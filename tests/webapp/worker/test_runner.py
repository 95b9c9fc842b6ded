"""The session runner on a real worker process (placeholder runtime): every way a session ends."""

import pytest
from django.conf import settings
from django.db import connection

from tests.webapp.worker.conftest import wait_until_running
from webapp.fleet.models import Slot, Worker
from webapp.play.models import PlaySession
from webapp.play.services import confirm, end_session, record_connection, record_input
from webapp.queue import services
from webapp.worker import runner
from webapp.worker.process import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def start_session(world, user, **pool_limits):
    type(world.pool).objects.filter(pk=world.pool.pk).update(**pool_limits)
    world.pool.refresh_from_db()
    ticket = services.join(user, world)
    ticket.refresh_from_db()
    return confirm(ticket)


def test_a_session_ends_when_its_time_is_up(world, owner, process, run_in_thread):
    session = start_session(world, owner, session_seconds=2)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    session.refresh_from_db()
    assert result["reason"] == PlaySession.EndReason.TIME_UP
    assert session.end_reason == PlaySession.EndReason.TIME_UP
    assert not Slot.objects.filter(session=session).exists()
    assert 1.5 <= session.played_seconds() <= 4


def test_no_input_ends_the_session_as_idle(world, owner, process, run_in_thread):
    session = start_session(world, owner, idle_seconds=2, idle_warning_seconds=1)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    assert result["reason"] == PlaySession.EndReason.IDLE


def test_input_keeps_the_session_alive(world, owner, process, run_in_thread):
    session = start_session(world, owner, idle_seconds=2, idle_warning_seconds=1, session_seconds=4)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    for _ in range(8):
        thread.join(timeout=0.5)
        record_input(session)
    thread.join(timeout=10)
    assert result["reason"] == PlaySession.EndReason.TIME_UP


def test_a_player_gone_beyond_the_grace_period_ends_the_session(
    world, owner, process, run_in_thread
):
    session = start_session(world, owner, disconnect_grace_seconds=1)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    assert result["reason"] == PlaySession.EndReason.DISCONNECTED


def test_an_operator_can_end_a_running_session(world, owner, process, run_in_thread):
    session = start_session(world, owner)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    wait_until_running(session, thread)
    assert end_session(session, PlaySession.EndReason.ADMIN_ENDED)
    thread.join(timeout=5)
    assert not thread.is_alive()
    session.refresh_from_db()
    assert session.end_reason == PlaySession.EndReason.ADMIN_ENDED
    assert process.loop.session_count() == 0


def test_a_redelivered_task_finds_the_session_claimed_and_exits(
    world, owner, process, run_in_thread
):
    session = start_session(world, owner)
    record_connection(session, True)
    thread, _ = run_in_thread(session, process)
    wait_until_running(session, thread)
    assert runner.run(str(session.public_id), process) is None
    end_session(session, PlaySession.EndReason.LEFT)
    thread.join(timeout=5)


def test_a_task_for_another_worker_is_ignored(world, owner, process, pool):
    other = WorkerProcess(pool, 1, "inference.placeholder.PlaceholderRuntime")
    other.worker = Worker.objects.create(pool=pool, host="elsewhere", slot_count=1)
    session = start_session(world, owner)
    target = other if session.worker_id == process.worker.pk else process
    assert runner.run(str(session.public_id), target) is None
    session.refresh_from_db()
    assert session.state == PlaySession.State.STARTING


def test_worker_shutdown_ends_sessions_and_tells_why(world, owner, process, run_in_thread):
    session = start_session(world, owner)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    wait_until_running(session, thread)
    process.shutting_down.set()  # what SIGTERM does first; the runner ends its own session
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert result["reason"] == PlaySession.EndReason.WORKER_SHUTDOWN
    process.stop()
    session.refresh_from_db()
    assert session.end_reason == PlaySession.EndReason.WORKER_SHUTDOWN
    assert not Slot.objects.filter(worker=process.worker).exists()


def test_a_second_tab_closing_does_not_start_the_grace_period(world, owner, process, run_in_thread):
    session = start_session(world, owner, disconnect_grace_seconds=1, session_seconds=3)
    record_connection(session, True)
    record_connection(session, True)
    record_connection(session, False)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    assert result["reason"] == PlaySession.EndReason.TIME_UP


def test_a_failure_while_supervising_ends_the_session_as_an_error(
    world, owner, process, run_in_thread, monkeypatch
):
    def broken(*args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(runner, "end_reason", broken)
    session = start_session(world, owner)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    session.refresh_from_db()
    assert result["reason"] == PlaySession.EndReason.ERROR
    assert session.end_reason == PlaySession.EndReason.ERROR
    assert not Slot.objects.filter(session=session).exists()
    assert process.loop.session_count() == 0 and process.streaming.peers == {}


def test_a_dead_device_loop_ends_the_session_as_an_error(
    world, owner, process, run_in_thread, monkeypatch
):
    session = start_session(world, owner)
    record_connection(session, True)
    monkeypatch.setattr(process.loop, "is_alive", lambda: False)
    # The heartbeat would see the dead loop too and shut the whole worker down, racing the
    # runner (test_process.py covers that path); here only the runner's answer is under test.
    monkeypatch.setattr(process, "model_is_healthy", lambda: True)
    thread, result = run_in_thread(session, process)
    thread.join(timeout=10)
    assert result["reason"] == PlaySession.EndReason.ERROR


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="terminating the runner's database connection needs PostgreSQL",
)
def test_a_database_restart_does_not_end_a_live_session(world, owner, process, run_in_thread):
    # What a PostgreSQL restart does to the worker's connections: each is terminated by the
    # server. The stream does not need the database, so the session plays on.
    session = start_session(world, owner)
    record_connection(session, True)
    thread, result = run_in_thread(session, process)
    wait_until_running(session, thread)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    thread.join(timeout=3 * runner.CHECK_SECONDS + 1)
    assert thread.is_alive() and "reason" not in result
    session.refresh_from_db()
    assert session.state == PlaySession.State.RUNNING
    end_session(session, PlaySession.EndReason.ADMIN_ENDED)
    thread.join(timeout=10)
    assert result["reason"] is None  # ended elsewhere, as by an operator


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="terminating the worker's database connections needs PostgreSQL",
)
def test_the_heartbeat_outlives_a_database_restart(pool, settings):
    # Every query of the heartbeat thread may meet the restart, not only the first: a thread
    # that died on one left a live worker to be reaped as lost.
    settings.WORKER_HEARTBEAT_SECONDS = 0.05
    process = WorkerProcess(pool, 1, "inference.placeholder.PlaceholderRuntime")
    process.start()
    try:
        for _ in range(80):  # four seconds of a server that keeps cutting connections
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            process.shutting_down.wait(0.05)
        assert process._heartbeat_thread.is_alive()
        before = Worker.objects.get(pk=process.worker.pk).last_heartbeat
        process.shutting_down.wait(0.5)
        assert Worker.objects.get(pk=process.worker.pk).last_heartbeat > before
    finally:
        process.stop()
