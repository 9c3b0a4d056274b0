"""Client addresses and IP allow/deny lists.

``X-Forwarded-For`` is believed only when the peer is a configured trusted proxy;
then the client is the right-most address that is not itself a trusted proxy.
Anyone else can write any ``X-Forwarded-For`` they like, so it is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request

from wisp.errors import BadRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(items: Iterable[str], what: str) -> list[Network]:
    out: list[Network] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise BadRequest(f"{what}: {item!r} is not an IP address or CIDR") from None
    return out


def _within(address: Address, networks: list[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(request: Request, trusted: list[Network]) -> Address | None:
    peer = request.client.host if request.client else None
    try:
        address = ipaddress.ip_address(peer) if peer else None
    except ValueError:
        return None
    if address is None or not trusted or not _within(address, trusted):
        return address
    forwarded = request.headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            hop_address = ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed chain: trust only the peer we saw
        if not _within(hop_address, trusted):
            return hop_address
        address = hop_address
    return address


class IpRules:
    def __init__(self, allow: list[Network], deny: list[Network]) -> None:
        self.allow = allow
        self.deny = deny

    def permits(self, address: Address | None) -> bool:
        if address is None:
            return not self.allow
        if _within(address, self.deny):
            return False
        return not self.allow or _within(address, self.allow)
