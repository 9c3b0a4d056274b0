"""HTTP Basic authentication of namespace keys, cached for the hot path.

A successful check is remembered by the raw ``Authorization`` header, so after the
first call a request costs one dict lookup: no database read, no hashing. It is
checked again after ``RECHECK`` seconds, so a key replaced on any server
(``wisp admin namespace key``) stops working everywhere within that time.
"""

from __future__ import annotations

import base64
import binascii
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from wisp.errors import Forbidden, Unauthorized
from wisp.models import Namespace
from wisp.namespaces import authenticate
from wisp.store.base import Store

INVALID_AUTH = "The supplied authentication is invalid"
_CACHE_MAX = 10_000  # distinct valid keys; past it the cache restarts rather than grows
RECHECK = 30.0  # seconds a checked key is trusted before the store is asked again


class Authenticator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[Namespace, float]] = {}  # header -> (ns, trusted until)

    async def caller(self, request: Request) -> Namespace:
        """The namespace whose key the request carries; Unauthorized otherwise."""
        header = request.headers.get("authorization")
        if header is None:
            raise Unauthorized(INVALID_AUTH)
        cached = self._cache.get(header)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        credentials = _basic_credentials(header)
        if credentials is None:
            raise Unauthorized(INVALID_AUTH)
        namespace = await run_in_threadpool(authenticate, self.store, credentials)
        if namespace is None:
            raise Unauthorized(INVALID_AUTH)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[header] = (namespace, time.monotonic() + RECHECK)
        return namespace

    async def namespace(self, request: Request) -> Namespace:
        """The caller's namespace, checked against the ``{ns}`` path segment.

        ``_`` means the caller's own; any other name must be it, or 403.
        """
        caller = await self.caller(request)
        wanted = request.path_params.get("ns", "_")
        if wanted not in ("_", caller.name):
            raise Forbidden(f"The supplied authentication is not authorized to access {wanted!r}")
        return caller

    def forget(self) -> None:
        """Drop cached credentials (after a key is revoked)."""
        self._cache.clear()


def _basic_credentials(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
