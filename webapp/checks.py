"""System checks for bad setting combinations, reported at start-up with stable ids."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
# The example env file's SECRET_KEY says "change-me": a key that does is never a real one.
PLACEHOLDER_KEY_MARKERS = ("change-me", "changeme")


@register()
def check_settings(app_configs, **kwargs):
    problems = []
    public = not settings.DEBUG and set(settings.ALLOWED_HOSTS) - LOCAL_HOSTS
    if public and settings.SECRET_KEY.startswith("reverie-insecure"):
        problems.append(
            Error("SECRET_KEY is the embedded development key; set SECRET_KEY", id="reverie.E005")
        )
    embedded = settings.SECRET_KEY.startswith("reverie-insecure")  # E005's business
    key = settings.SECRET_KEY.lower()
    if not embedded and any(marker in key for marker in PLACEHOLDER_KEY_MARKERS):
        problems.append(
            Error(
                "SECRET_KEY is the placeholder from deploy/.env.example; set a random one"
                " (python -c 'import secrets; print(secrets.token_urlsafe(50))')",
                id="reverie.E006",
            )
        )
    if settings.SESSION_IDLE_WARNING_SECONDS >= settings.SESSION_IDLE_SECONDS:
        problems.append(
            Error(
                "SESSION_IDLE_WARNING_SECONDS must be below SESSION_IDLE_SECONDS", id="reverie.E001"
            )
        )
    longest = settings.SESSION_SECONDS + settings.SESSION_DISCONNECT_GRACE
    if settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= longest:
        problems.append(
            Error("CELERY_VISIBILITY_TIMEOUT must exceed the longest session", id="reverie.E002")
        )
    if not isinstance(settings.ICE_SERVERS, list):
        problems.append(Error("ICE_SERVERS must be a JSON list", id="reverie.E003"))
    problems += turn_problems()
    if not 0.0 <= settings.QUEUE_PRIORITY_SHARE <= 0.95:
        problems.append(
            Error(
                "QUEUE_PRIORITY_SHARE must be within 0..0.95 so the normal tier never starves",
                id="reverie.E004",
            )
        )
    return problems


def turn_problems() -> list[Error]:
    problems = []
    if bool(settings.TURN_URLS) != bool(settings.TURN_SECRET):
        problems.append(
            Error("TURN_URLS and TURN_SECRET go together: set both or neither", id="reverie.E007")
        )
    if settings.WEBRTC_ICE_POLICY not in ("all", "relay"):
        problems.append(Error("WEBRTC_ICE_POLICY must be 'all' or 'relay'", id="reverie.E008"))
    elif settings.WEBRTC_ICE_POLICY == "relay" and not settings.TURN_URLS:
        problems.append(
            Error("WEBRTC_ICE_POLICY=relay needs a TURN relay (TURN_URLS)", id="reverie.E009")
        )
    if settings.TURN_CREDENTIAL_TTL < 60:
        problems.append(Error("TURN_CREDENTIAL_TTL must be at least 60 seconds", id="reverie.E010"))
    return problems
