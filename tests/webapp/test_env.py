"""Settings from the environment (webapp/env.py) and the example env file that feeds them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from inference import SHIPPED_CHECKPOINT
from webapp.env import env_bool, env_float, env_int, env_json, env_list, env_str

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_or_blank_value_means_unset(monkeypatch, value):
    monkeypatch.setenv("REVERIE_T", value)
    assert env_str("REVERIE_T", "fallback") == "fallback"
    assert env_int("REVERIE_T", 7) == 7
    assert env_float("REVERIE_T", 0.5) == 0.5
    assert env_bool("REVERIE_T", True) is True
    assert env_list("REVERIE_T", "a,b") == ["a", "b"]
    assert env_json("REVERIE_T", "[]") == []


def test_a_value_can_come_from_a_file_named_by_name_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("REVERIE_T_FILE", str(secret))
    monkeypatch.setenv("REVERIE_T", "ignored")
    assert env_str("REVERIE_T") == "s3cret"
    monkeypatch.setenv("REVERIE_T_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="REVERIE_T_FILE=.*missing"):
        env_str("REVERIE_T")


@pytest.mark.parametrize(
    "reader, default, value, message",
    [
        (env_int, 1, "ten", "REVERIE_T='ten' is not a whole number"),
        (env_int, 1, "2.5", "is not a whole number"),
        (env_float, 1.0, "fast", "REVERIE_T='fast' is not a number"),
        (env_bool, False, "maybe", "REVERIE_T='maybe': use one of"),
        (env_json, "[]", "[{'urls': 1}]", "REVERIE_T is not valid JSON"),
    ],
)
def test_a_value_that_does_not_parse_names_the_variable(
    monkeypatch, reader, default, value, message
):
    monkeypatch.setenv("REVERIE_T", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        reader("REVERIE_T", default)


PROBE = """
import json, django
from django.conf import settings
from django.core import checks
django.setup()
ids = [m.id for m in checks.run_checks() if m.id.startswith("reverie.")]
print(json.dumps({
    "broker": settings.CELERY_BROKER_URL, "redis": settings.REDIS_URL,
    "checkpoint": settings.DEFAULT_CHECKPOINT, "scenes": str(settings.WORLD_SCENES_DIR),
    "proxies": settings.TRUSTED_PROXIES, "secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE, "ice": settings.ICE_SERVERS,
    "runtime": settings.WORKER_RUNTIME, "checks": ids,
}))
"""


def test_the_example_env_works_when_sourced_by_a_plain_shell(tmp_path):
    script = (
        "set -euo pipefail; set -a; . deploy/.env.example; set +a;"
        f' DATA_DIR={tmp_path} DJANGO_SETTINGS_MODULE=webapp.settings "$0" -c "$1"'
    )
    done = subprocess.run(
        ["bash", "-c", script, sys.executable, PROBE],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["broker"] == seen["redis"] == "redis://redis:6379/0"  # not "", not AMQP
    assert seen["checkpoint"] == str(SHIPPED_CHECKPOINT)
    assert seen["scenes"] == str(REPO / "models" / "worlds")
    assert seen["proxies"] == []  # the connection's own address: nothing to spoof
    assert seen["secure"] is seen["csrf_secure"] is False  # HTTPS=false: plain HTTP log-ins work
    assert seen["ice"] == [] and seen["runtime"] == ""
    assert "reverie.E006" in seen["checks"]  # the example's SECRET_KEY is refused


def test_default_checkpoint_none_plays_the_placeholder(tmp_path):
    probe = (
        "import django; from django.conf import settings; print(repr(settings.DEFAULT_CHECKPOINT))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DEFAULT_CHECKPOINT": "none",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "''"
