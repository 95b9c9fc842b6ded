"""Reading settings from the environment: an empty value means unset, a bad one a clear error.

`KEY=` in an env file (compose's or a shell's) is how people leave a setting at its default, so
an empty or blank value takes the default rather than becoming "" (an empty CELERY_BROKER_URL
once sent Celery to AMQP on localhost). NAME_FILE names a file holding the value (secrets).
A value that does not parse stops the start with the variable's name, never a bare traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_str(name: str, default: str = "") -> str:
    """NAME_FILE's content or NAME, stripped; default when unset, empty or blank."""
    file_path = os.environ.get(f"{name}_FILE", "").strip()
    if file_path:
        try:
            value = Path(file_path).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r}: {exc.strerror}") from None
    else:
        value = os.environ.get(name, "")
    return value.strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "")
    if not raw:
        return default
    if raw.lower() not in TRUE + FALSE:
        raise ImproperlyConfigured(f"{name}={raw!r}: use one of {', '.join(TRUE + FALSE)}")
    return raw.lower() in TRUE


def _number(name: str, default: Any, kind: type, what: str) -> Any:
    raw = env_str(name, "")
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {what}") from None


def env_int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number")


def env_float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_json(name: str, default: str) -> Any:
    raw = env_str(name, default)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON ({exc.msg} at {exc.pos})") from None
