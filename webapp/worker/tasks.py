"""The play-session task: consumed only from a GPU worker's own queue, never autodiscovered.

Web processes enqueue it by name (webapp.play.services.SESSION_TASK); `rungpuworker` imports
this module, which registers the task with that worker alone.
"""

from __future__ import annotations

import logging

from celery import shared_task

from webapp.play.services import SESSION_TASK
from webapp.worker import process as worker_process
from webapp.worker import runner

logger = logging.getLogger(__name__)


@shared_task(name=SESSION_TASK, acks_late=True, ignore_result=True)
def run_play_session(session_id: str) -> str | None:
    """Run one play session for its whole length on the worker that owns its slot."""
    process = worker_process.current()
    if process is None:
        # Only a worker's own queue carries this task; a process without slots must not run it.
        logger.error("session %s reached a process without slots; dropping the task", session_id)
        return None
    return runner.run(session_id, process)
