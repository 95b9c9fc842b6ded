from __future__ import annotations

from celery import shared_task

from webapp.queue import dispatch, services


@shared_task(ignore_result=True)
def expire_tickets() -> int:
    """Drop missed confirms and tickets whose browser stopped sending heartbeats."""
    return (
        services.expire_offers() + services.drop_gone_browsers() + services.return_orphaned_offers()
    )


@shared_task(ignore_result=True)
def dispatch_all() -> int:
    """A backstop: dispatch also runs inline whenever a slot frees or a ticket joins."""
    return dispatch.dispatch_all()
