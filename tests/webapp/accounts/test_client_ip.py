"""Which address rate limits count: a trusted proxy's X-Forwarded-For, never a client's own."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings
from django.urls import reverse

from webapp.accounts.client_ip import client_ip

PROXY = "10.0.0.1"


def request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/", **extra)


def test_with_no_trusted_proxy_the_header_is_never_read(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_a_header_missing_behind_a_trusted_proxy_counts_the_proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY]
    assert client_ip(request(PROXY)) == PROXY


def test_a_trusted_proxy_names_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_ip(request(PROXY, "198.51.100.7")) == "198.51.100.7"
    # two proxies of ours in a row: the client is left of both
    assert client_ip(request(PROXY, "198.51.100.7, 10.0.0.2")) == "198.51.100.7"


def test_a_spoofed_header_gains_nothing(settings):
    settings.TRUSTED_PROXIES = [PROXY]
    # from outside, straight to the server: the header is the client's own word
    assert client_ip(request("203.0.113.5", "1.2.3.4")) == "203.0.113.5"
    # through the proxy, which appends the real address after the client's made-up one
    assert client_ip(request(PROXY, "1.2.3.4, 203.0.113.5")) == "203.0.113.5"
    # garbage where the proxy's entry should be: counted as the proxy, not as "garbage"
    assert client_ip(request(PROXY, "not-an-ip")) == PROXY


@pytest.mark.django_db
# Per day: a per-minute window can turn over between the requests.
@override_settings(LOGIN_RATE="2/d", TRUSTED_PROXIES=[PROXY])
def test_logins_through_the_proxy_are_limited_per_client_and_spoofing_does_not_reset_it(
    client, owner
):
    def login(forwarded: str):
        return client.post(
            reverse("accounts-login"),
            {"username": "owner", "password": "wrong"},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    for _ in range(2):
        assert login("203.0.113.5").status_code == 200  # a failed log-in, shown again
    assert login("203.0.113.5").status_code == 429
    assert login("9.9.9.9, 203.0.113.5").status_code == 429  # a made-up hop changes nothing
    assert login("198.51.100.7").status_code == 200  # another player behind the same proxy
