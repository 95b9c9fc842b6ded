"""The client address that rate limits count: the connection's, unless a trusted proxy says.

X-Forwarded-For is believed only when the connection comes from one of TRUSTED_PROXIES (IPs or
CIDRs), and then only as far as the proxies are trusted: walking the header from the right,
the first address that is not a trusted proxy is the client. Anything a client writes into the
header itself sits to the left of that and is ignored, so no one can pick their own rate-limit
address; with no proxy trusted the header is never read. (gunicorn's forwarded_allow_ips,
deploy/gunicorn.conf.py, reads the same setting, so uvicorn's client address agrees.)
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    if not _trusted(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage from the proxy's side: count the proxy
    return remote  # only proxies (or no header): the request came from the proxy itself
