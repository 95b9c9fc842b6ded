"""Ends sessions whose runner should have ended them, so a stuck task never holds a slot."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from webapp.play.models import PlaySession
from webapp.play.services import end_session

# The runner checks twice a second; this much later, it is not coming.
OVERDUE_MARGIN = timedelta(seconds=10)
# A confirmed session whose task has not started by then never will.
START_TIMEOUT = timedelta(seconds=60)


def end_overdue(now=None) -> int:
    now = now or timezone.now()
    ended = 0
    overdue = PlaySession.objects.filter(
        state=PlaySession.State.RUNNING, deadline__lt=now - OVERDUE_MARGIN
    )
    for session in overdue:
        ended += end_session(session, PlaySession.EndReason.TIME_UP)
    stuck = PlaySession.objects.filter(
        state=PlaySession.State.STARTING, created_at__lt=now - START_TIMEOUT
    )
    for session in stuck:
        ended += end_session(session, PlaySession.EndReason.ERROR)
    return ended
