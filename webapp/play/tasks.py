"""Control-tier tasks of play sessions (the session itself runs in webapp/worker/tasks.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from webapp.play import runner_backstop

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def end_overdue_sessions() -> int:
    """A backstop for runners that died quietly: the deadline holds even then."""
    return runner_backstop.end_overdue()
