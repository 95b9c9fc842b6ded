"""TURN REST credentials: a username and password per session, minted from coturn's secret.

coturn's `use-auth-secret` accepts any username of the form "<unix expiry>:<label>" whose
password is base64(HMAC-SHA1(secret, username)); it refuses one whose expiry has passed. So the
shared secret stays on the server, every page and worker gets its own short-lived pair, and a
leaked pair stops working by itself (draft-uberti-behave-turn-rest, coturn's README.turnserver).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from django.conf import settings


def turn_credentials(secret: str, label: str, ttl: int, now: float | None = None) -> dict[str, str]:
    """A username/credential pair valid for `ttl` seconds from `now` (Unix time)."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}


def ice_server_dicts(label: str) -> list[dict[str, Any]]:
    """ICE_SERVERS plus, when TURN is set up, the TURN relay with credentials for `label`.

    `label` names who the pair is for in coturn's log (a session's public id), never a secret.
    """
    servers = [dict(entry) for entry in settings.ICE_SERVERS]
    if settings.TURN_URLS and settings.TURN_SECRET:
        pair = turn_credentials(settings.TURN_SECRET, label, settings.TURN_CREDENTIAL_TTL)
        servers.append({"urls": list(settings.TURN_URLS), **pair})
    return servers
