"""Fetching a route's JWKS without lending the server's network to a tenant.

A JWKS URL is tenant input fetched by the server, so: ``https://`` only (plain
``http://`` only to loopback, and only when the operator turns on
``WISP_JWKS_ALLOW_HTTP_LOOPBACK``), never a file, and never an address of the
server's own networks — loopback, private, link-local (the cloud metadata service
at 169.254.169.254), shared, multicast or reserved — unless the operator lists its
network in ``WISP_JWKS_ALLOW_NETWORKS``. The URL is checked when the route is made
and again at every fetch: the host is resolved, every address it resolves to is
checked, and the connection goes to the address that was checked (the name is sent
as ``Host`` and TLS SNI, so the certificate is still verified for it), so a DNS
answer that changes between check and connect cannot move the fetch. No redirects,
no proxies from the environment, a size cap. Callers learn only that the key set
could not be loaded; why goes to the server log. One URL is fetched at most once per
``MIN_INTERVAL``, whatever key ids tokens name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from wisp.config import Settings
from wisp.errors import Unauthorized
from wisp.gateway.ipfilter import Address, Network, parse_networks

TTL = 300.0  # seconds a fetched key set is used before it is fetched again
MIN_INTERVAL = 60.0  # seconds between two fetches of one URL, whatever happens
TIMEOUT = 5.0
MAX_BYTES = 512 * 1024
MAX_SOURCES = 1024  # key sets kept; the least recently used are dropped past it
NOT_LOADED = "the route's JWKS could not be loaded"

log = logging.getLogger("wisp.gateway.jwks")

Resolver = Callable[[str, int], Awaitable[list[Address]]]


@dataclass(frozen=True)
class JwksRules:
    """What the operator lets JWKS URLs reach."""

    allow_http_loopback: bool = False
    allow_networks: tuple[Network, ...] = ()
    ca_file: str = ""  # more CAs to trust (an internal IdP's), besides the system's

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksRules:
        networks = parse_networks(
            settings.jwks_allow_networks.split(","), "WISP_JWKS_ALLOW_NETWORKS"
        )
        loopback = settings.jwks_allow_http_loopback == "on"
        return cls(loopback, tuple(networks), settings.jwks_ca_file)


@dataclass(frozen=True)
class JwksUrl:
    scheme: str
    host: str  # a name, or an address without brackets
    port: int
    target: str  # path and query
    literal: Address | None  # the host, when it is an address


def parse_url(raw: str, rules: JwksRules) -> JwksUrl:
    """The URL's parts, or ValueError saying what is not allowed."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("must be an https:// URL (files and other schemes are not fetched)")
    if scheme == "http" and not rules.allow_http_loopback:
        raise ValueError("must be an https:// URL (plain http:// is not allowed)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("must name a host")
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    url = JwksUrl(
        scheme,
        host,
        port or (443 if scheme == "https" else 80),
        (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        literal,
    )
    if literal is not None:
        check_address(literal, url, rules)
    return url


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped, NAT64, 6to4, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):  # not ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_address(address: Address, url: JwksUrl, rules: JwksRules) -> None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        if embedded is not None:
            address = embedded  # ::ffff:127.0.0.1 is 127.0.0.1; 64:ff9b::a00:1 is 10.0.0.1
    if address.is_loopback and rules.allow_http_loopback:
        return
    if url.scheme == "http":
        raise ValueError(f"plain http:// may only reach loopback, not {address}")
    if any(address in network for network in rules.allow_networks):
        return
    if not address.is_global or address.is_multicast:
        raise ValueError(
            f"{url.host} is (or resolves to) {address}, a loopback, private, link-local "
            "or reserved address"
        )


def _addresses(infos: list[tuple[Any, ...]]) -> list[Address]:
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


async def resolve(host: str, port: int) -> list[Address]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _addresses(infos)


def check_url(raw: str, rules: JwksRules) -> None:
    """At route creation (off the event loop: it resolves the host)."""
    url = parse_url(raw, rules)
    if url.literal is not None:
        return
    try:
        infos = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except OSError:
        raise ValueError(f"the host {url.host} does not resolve") from None
    for address in _addresses(infos):
        check_address(address, url, rules)


async def fetch_document(raw: str, rules: JwksRules, resolver: Resolver = resolve) -> Any:
    url = parse_url(raw, rules)
    addresses = [url.literal] if url.literal is not None else await resolver(url.host, url.port)
    if not addresses:
        raise ValueError(f"the host {url.host} does not resolve")
    for address in addresses:
        check_address(address, url, rules)
    pinned = addresses[0]
    netloc = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    default_port = url.port == (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    headers = {
        "Host": host if default_port else f"{host}:{url.port}",
        "Accept": "application/json",
        "Accept-Encoding": "identity",  # no decompression bomb past the size cap
    }
    extensions = {"sni_hostname": url.host} if url.literal is None else {}
    async with httpx.AsyncClient(
        timeout=TIMEOUT, trust_env=False, follow_redirects=False, verify=_tls(rules)
    ) as client:
        request = client.build_request(
            "GET",
            f"{url.scheme}://{netloc}:{url.port}{url.target}",
            headers=headers,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise ValueError(f"{raw} answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise ValueError(f"{raw} sent more than {MAX_BYTES} bytes")
        finally:
            await response.aclose()
    return json.loads(body)


def _tls(rules: JwksRules) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if rules.ca_file:
        context.load_verify_locations(cafile=rules.ca_file)
    return context


@dataclass
class _KeySet:
    keys: jwt.PyJWKSet | None = None
    expires: float = -math.inf
    attempted: float = -math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksLoader:
    """Key sets by URL: used for ``ttl``, fetched at most once per ``min_interval``."""

    def __init__(
        self,
        rules: JwksRules | None = None,
        *,
        ttl: float = TTL,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = resolve,
    ) -> None:
        self.rules = rules or JwksRules()
        self.ttl = ttl
        self.min_interval = min_interval
        self.clock = clock
        self.resolver = resolver
        self._sets: OrderedDict[str, _KeySet] = OrderedDict()

    async def keys(self, source: str, *, refresh: bool = False) -> jwt.PyJWKSet:
        """The key set; ``refresh``: the caller met a key id it lacks (keys rotate)."""
        entry = self._sets.pop(source, None) or _KeySet()
        self._sets[source] = entry
        if len(self._sets) > MAX_SOURCES:
            self._sets.popitem(last=False)
        if entry.keys is not None and not refresh and entry.expires > self.clock():
            return entry.keys
        async with entry.lock:  # concurrent callers share one fetch
            now = self.clock()
            stale = entry.keys is None or entry.expires <= now
            if (stale or refresh) and now - entry.attempted >= self.min_interval:
                entry.attempted = now
                await self._load(source, entry)
        if entry.keys is None:
            raise Unauthorized(NOT_LOADED)
        return entry.keys

    async def _load(self, source: str, entry: _KeySet) -> None:
        try:
            document = await fetch_document(source, self.rules, self.resolver)
            if not isinstance(document, dict):
                raise ValueError("a JWKS document is a JSON object with 'keys'")
            keys = jwt.PyJWKSet.from_dict(document)
        # Whatever went wrong stays in the server log: the caller must not learn what
        # the server can reach (an SSRF probe reads error texts).
        except Exception as exc:
            log.warning("JWKS %s could not be loaded: %s", source, exc)
            return  # a key set fetched before is kept: a flaky IdP locks no one out
        entry.keys = keys
        entry.expires = self.clock() + self.ttl
