"""deploy/.env.example: one assignment or comment a line, every variable read by the code."""

from __future__ import annotations

import os
import re
import subprocess

from tests.deploy.helpers import DEPLOY, ENV_EXAMPLE, REPO, env_example

# The variables of issue 12's deployment contract.
DEPLOYMENT_VARIABLES = (
    "TRUSTED_PROXIES",
    "TURN_URLS",
    "TURN_SECRET",
    "TURN_CREDENTIAL_TTL",
    "WEBRTC_ICE_POLICY",
    "ICE_SERVERS",
    "LOG_FORMAT",
    "WORKER_METRICS_PORT",
    "METRICS_TOKEN",
    "WORKER_DRAIN_SECONDS",
    "MODELS_DIR",
)


def test_every_line_is_a_comment_or_an_assignment():
    # Compose's env_file takes a "#" inside a value literally, a shell as a comment: so
    # comments sit on lines of their own, and a value is bare or single-quoted whole.
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        assert (
            line.startswith("# ")
            or line == "#"
            or re.fullmatch(r"[A-Z][A-Z0-9_]*=('[^']*'|[^\s#'\"]*)", line)
        ), f"line {number}: {line!r}"


def test_no_variable_is_listed_twice():
    keys = re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert len(keys) == len(set(keys))


def test_it_lists_the_deployment_variables():
    listed = env_example()
    for key in DEPLOYMENT_VARIABLES:
        assert key in listed, key
    assert listed["WORKER_METRICS_PORT"] == "0"
    assert listed["WORKER_DRAIN_SECONDS"] == "300"
    assert listed["TURN_SECRET"] == ""  # never a shared example secret


def test_trusted_proxies_replaces_the_rate_limit_header_setting():
    assert "RATELIMIT_IP_META_KEY" not in ENV_EXAMPLE.read_text()


def test_a_shell_sources_it_as_it_is():
    done = subprocess.run(
        ["sh", "-euc", 'set -a; . "$1"; set +a; env -0', "sh", str(ENV_EXAMPLE)],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    )
    from_shell = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    assert {key: from_shell[key] for key in env_example()} == env_example()


def test_every_variable_is_read_by_the_code():
    python = [
        path.read_text()
        for folder in ("webapp", "inference", "streaming")
        for path in (REPO / folder).rglob("*.py")
    ]
    python.append((DEPLOY / "gunicorn.conf.py").read_text())
    shell = (DEPLOY / "docker" / "migrate.sh").read_text()
    unread = [
        key
        for key in env_example()
        if not any(f'"{key}"' in text for text in python) and "${" + key not in shell
    ]
    assert unread == [], f"listed in deploy/.env.example but read nowhere: {unread}"
