"""The web tier (ASGI app, views, consumers, admin) and the control worker stay light.

Each check starts a fresh interpreter, so nothing another test imported can hide a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings

# The media stack and the model libraries: only a GPU worker loads them.
HEAVY = ("aiortc", "av", "aioice", "torch")

WEB = """
from webapp.asgi import application  # Django set up: apps, admin autodiscovery, the consumers
import webapp.urls  # every view module, through the URL conf's includes
"""
# What a control worker or beat imports: the Celery app and every autodiscovered tasks module.
CONTROL = """
import django
django.setup()
from webapp.celery import app
app.loader.import_default_modules()
"""
REPORT = """
import json, sys
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules}
                        | {name for name in sys.modules if name.startswith("webapp.worker")})))
"""


def modules_after(code: str) -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_asgi_app_and_the_url_conf_import_no_media_or_model_library():
    loaded = modules_after(WEB)
    assert "django" in loaded and "channels" in loaded  # the check itself looked
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))
    assert "webapp.worker" not in loaded


def test_the_control_worker_autodiscovers_no_part_of_the_worker_tier():
    loaded = modules_after(CONTROL)
    assert "celery" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))
    assert not {name for name in loaded if name.startswith("webapp.worker")}
