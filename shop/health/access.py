"""Who may see operational detail: clients inside ``OPS_ALLOWED_NETWORKS``.

/metrics and the per-dependency readiness report name hosts, queues and error messages; the
public only learns "ok" or "down". The client address is the one the rate limiter trusts
(``REMOTE_ADDR``, or X-Forwarded-For behind exactly ``TRUSTED_PROXY_COUNT`` proxies), so a
forged header cannot claim an operator's address.
"""

import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest

from shop.api.ratelimit import client_ip


@cache
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def is_operator(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.OPS_ALLOWED_NETWORKS)))
