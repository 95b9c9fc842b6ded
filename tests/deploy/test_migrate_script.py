"""deploy/docker/migrate.sh: retries migrate a bounded number of times, then seeds."""

from __future__ import annotations

import os
import subprocess

from tests.deploy.helpers import DEPLOY, REPO

FAKE_PYTHON = """#!/bin/sh
# Stands in for python: migrate fails until the count file says it has failed enough.
echo "$*" >> "$LOG"
if [ "$2" = migrate ]; then
    n=$(cat "$COUNT" 2>/dev/null || echo 0)
    echo $((n + 1)) > "$COUNT"
    [ "$n" -ge "$FAILURES" ] || exit 1
fi
exit 0
"""


def run_script(tmp_path, failures: int, tries: int):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "python").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "LOG": str(tmp_path / "log"),
        "COUNT": str(tmp_path / "count"),
        "FAILURES": str(failures),
        "MIGRATE_TRIES": str(tries),
        "MIGRATE_DELAY": "0",
    }
    done = subprocess.run(
        ["sh", str(DEPLOY / "docker" / "migrate.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    log = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return done, log


def test_it_retries_until_the_database_answers_then_seeds(tmp_path):
    done, log = run_script(tmp_path, failures=2, tries=5)
    assert done.returncode == 0, done.stderr
    assert log == ["manage.py migrate --noinput"] * 3 + ["manage.py seedservice"]
    assert "try 2 of 5" in done.stderr


def test_it_gives_up_after_the_last_try_without_seeding(tmp_path):
    done, log = run_script(tmp_path, failures=10, tries=3)
    assert done.returncode == 1
    assert log == ["manage.py migrate --noinput"] * 3
    assert "giving up" in done.stderr
