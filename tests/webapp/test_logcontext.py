"""LOG_FORMAT=json: one JSON object per line with the session, ticket and worker ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from webapp import logcontext

ROOT = Path(__file__).resolve().parents[2]

LOGS_FROM_A_SESSION_THREAD = """
import logging, threading
import django
django.setup()
from webapp import logcontext
log = logging.getLogger("reverie.test")
logcontext.bind_worker("w-1")
log.info("before any session")
def runner():
    logcontext.bind(session="s-1")
    log.info("in the session")
thread = threading.Thread(target=runner); thread.start(); thread.join()
log.warning("outside it again")
"""


def test_json_lines_carry_the_ids_of_what_the_thread_serves(tmp_path):
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DATA_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected to
    }
    result = subprocess.run(
        [sys.executable, "-c", LOGS_FROM_A_SESSION_THREAD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(line["message"], line["session"], line["worker"]) for line in lines] == [
        ("before any session", None, "w-1"),
        ("in the session", "s-1", "w-1"),
        ("outside it again", None, "w-1"),
    ]
    assert {"time", "level", "logger", "ticket"} <= set(lines[0])
    assert lines[2]["level"] == "WARNING"


def test_a_bad_log_format_stops_the_start_with_its_name(tmp_path):
    env = {**os.environ, "LOG_FORMAT": "xml", "DATA_DIR": str(tmp_path)}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "LOG_FORMAT='xml'" in result.stderr


def test_the_filter_gives_every_record_the_three_fields():
    record_seen = {}

    def run():
        logcontext.bind(ticket="t-9")
        record = logging_record()
        logcontext.IdsFilter().filter(record)
        record_seen.update(ticket=record.ticket, session=record.session)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert record_seen == {"ticket": "t-9", "session": None}


def logging_record():
    import logging

    return logging.LogRecord("x", logging.INFO, __file__, 1, "message", None, None)
