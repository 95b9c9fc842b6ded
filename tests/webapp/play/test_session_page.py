"""The play page: the ICE servers it gets, with TURN credentials of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time

import pytest
from django.core.checks import run_checks

from tests.conftest import confirmed_session

SECRET = "page-test-secret"

pytestmark = pytest.mark.django_db(transaction=True)  # offers are made on commit


def page_ice_servers(client, session) -> list[dict]:
    html = client.get(f"/play/{session.public_id}/").content.decode()
    found = re.search(r'<script id="ice-servers" type="application/json">(.*?)</script>', html)
    assert found, "the page carries its ICE servers"
    return json.loads(found.group(1))


def test_the_page_gets_no_ice_server_unless_one_is_set(client, owner, world):
    session = confirmed_session(world, owner)
    client.force_login(owner)
    assert page_ice_servers(client, session) == []


def test_the_page_gets_turn_credentials_minted_for_its_session_and_never_the_secret(
    client, owner, world, settings
):
    settings.TURN_URLS = ["turn:turn.example.com:3478", "turns:turn.example.com:5349"]
    settings.TURN_SECRET = SECRET
    settings.TURN_CREDENTIAL_TTL = 600
    session = confirmed_session(world, owner)
    client.force_login(owner)
    html = client.get(f"/play/{session.public_id}/").content.decode()
    assert SECRET not in html
    [turn] = page_ice_servers(client, session)
    assert turn["urls"] == settings.TURN_URLS
    expiry, label = turn["username"].split(":", 1)
    assert label == str(session.public_id)
    assert 590 <= int(expiry) - time.time() <= 600
    digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()


def test_half_a_turn_setup_or_a_relay_policy_without_turn_is_refused_at_start(settings):
    settings.TURN_URLS = ["turn:turn.example.com:3478"]
    settings.TURN_SECRET = ""
    assert "reverie.E007" in {p.id for p in run_checks()}
    settings.TURN_URLS, settings.WEBRTC_ICE_POLICY = [], "relay"
    assert "reverie.E009" in {p.id for p in run_checks()}
    settings.WEBRTC_ICE_POLICY = "sometimes"
    assert "reverie.E008" in {p.id for p in run_checks()}
