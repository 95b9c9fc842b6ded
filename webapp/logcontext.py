"""The ids every log line carries: session, ticket and worker (public UUIDs, or null).

A session runner, a websocket consumer or a worker says what it serves once (`bind`), and
`IdsFilter` stamps those ids onto every record logged from there: from its thread or asyncio
task, and from the threads asgiref's sync_to_async runs for it (it copies the context). The
worker id is process-wide: one GPU worker process serves one Worker row. With LOG_FORMAT=json
each line is one JSON object (python-json-logger) with the ids as fields.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

_session: ContextVar[str | None] = ContextVar("log_session", default=None)
_ticket: ContextVar[str | None] = ContextVar("log_ticket", default=None)
_worker: dict[str, str | None] = {"id": None}


def bind(*, session: object = None, ticket: object = None) -> None:
    """Name the session or ticket that this thread or task serves from now on."""
    if session is not None:
        _session.set(str(session))
    if ticket is not None:
        _ticket.set(str(ticket))


def bind_worker(worker: object) -> None:
    _worker["id"] = str(worker)


class IdsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session = getattr(record, "session", None) or _session.get()
        record.ticket = getattr(record, "ticket", None) or _ticket.get()
        record.worker = getattr(record, "worker", None) or _worker["id"]
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(session)s %(ticket)s %(worker)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )
