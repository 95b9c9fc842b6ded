"""Why a session ends: the runner's decision, on an injected clock (no database, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp.fleet.models import GpuPool
from webapp.play.models import PlaySession
from webapp.worker.runner import end_reason, idle_seconds

STARTED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
Reason = PlaySession.EndReason


def running(session_seconds=300, idle_seconds=60, grace=20, connections=1) -> PlaySession:
    """A session that started at STARTED with one page open and no input since."""
    pool = GpuPool(
        session_seconds=session_seconds, idle_seconds=idle_seconds, disconnect_grace_seconds=grace
    )
    return PlaySession(
        pool=pool,
        state=PlaySession.State.RUNNING,
        started_at=STARTED,
        last_input_at=STARTED,
        deadline=STARTED + timedelta(seconds=session_seconds),
        allowed_seconds=session_seconds,
        client_connections=connections,
    )


def at(seconds: float) -> datetime:
    return STARTED + timedelta(seconds=seconds)


def test_a_session_ends_when_its_time_is_up():
    session = running(session_seconds=2)
    assert end_reason(session, at(1.9)) is None
    assert end_reason(session, at(2)) == Reason.TIME_UP


def test_no_input_ends_the_session_as_idle():
    session = running(idle_seconds=2)
    assert end_reason(session, at(1.9)) is None
    assert end_reason(session, at(2)) == Reason.IDLE


def test_input_keeps_the_session_alive_until_time_is_up():
    session = running(session_seconds=4, idle_seconds=2)
    for second in (1, 2, 3):
        session.last_input_at = at(second)
        assert end_reason(session, at(second + 0.5)) is None
    assert end_reason(session, at(4)) == Reason.TIME_UP


def test_input_seen_on_the_data_channel_counts_before_it_is_recorded():
    session = running(idle_seconds=2)
    assert end_reason(session, at(2.5), last_input=at(1)) is None
    assert end_reason(session, at(3), last_input=at(1)) == Reason.IDLE
    assert idle_seconds(session, at(3), last_input=None) == 3.0


def test_a_player_gone_beyond_the_grace_period_ends_the_session():
    session = running(grace=1, connections=0)
    session.disconnected_at = at(10)
    assert end_reason(session, at(10.5)) is None
    assert end_reason(session, at(11)) == Reason.DISCONNECTED


def test_a_page_that_never_connected_has_the_grace_period_from_the_start():
    session = running(grace=1, connections=0)
    assert end_reason(session, at(1)) == Reason.DISCONNECTED


def test_an_open_page_without_a_peer_ends_the_session_after_the_grace_period():
    session = running(grace=20)
    assert end_reason(session, at(30), peer_gone_for=19.9) is None
    assert end_reason(session, at(30), peer_gone_for=20) == Reason.DISCONNECTED


def test_a_second_tab_closing_does_not_start_the_grace_period():
    session = running(grace=1, connections=1)  # two pages opened, one closed
    assert end_reason(session, at(30)) is None
