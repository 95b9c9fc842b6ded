from __future__ import annotations

import logging

from celery import shared_task

from webapp.fleet import worker as worker_process
from webapp.play import runner, runner_backstop

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def run_play_session(session_id: str) -> str | None:
    """Run one play session for its whole length on the worker that owns its slot."""
    process = worker_process.current()
    if process is None:
        # Only a worker's own queue carries this task; a control worker must never run it.
        logger.error("session %s reached a process without slots; dropping the task", session_id)
        return None
    return runner.run(session_id, process)


@shared_task(ignore_result=True)
def end_overdue_sessions() -> int:
    """A backstop for runners that died quietly: the deadline holds even then."""
    return runner_backstop.end_overdue()
