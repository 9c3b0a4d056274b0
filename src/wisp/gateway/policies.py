"""Access policies, evaluated before a route's function is touched.

Each policy checks a request and returns the caller's ``Identity`` (passed to the
function as ``__ow_user`` and, for JWT, ``__ow_claims``) or raises Unauthorized /
Forbidden. A successful Basic check is remembered (by a hash of the header) so a
returning client does not pay for PBKDF2 again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from wisp.errors import Unauthorized
from wisp.gateway.hashing import hash_api_key, verify_password

INVALID = "The supplied authentication is invalid"
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Identity:
    user: str | None = None
    claims: dict[str, Any] | None = None


class Policy:
    """``none``: everyone may call."""

    async def check(self, request: Request) -> Identity:
        return Identity()


class BasicPolicy(Policy):
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._verified: dict[bytes, str] = {}

    async def check(self, request: Request) -> Identity:
        header = request.headers.get("authorization", "")
        key = hashlib.sha256(header.encode()).digest()
        user = self._verified.get(key)
        if user is not None:
            return Identity(user)
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized(INVALID)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            raise Unauthorized(INVALID) from None
        name, sep, password = decoded.partition(":")
        stored = self.users.get(name)
        if not sep or stored is None:
            raise Unauthorized(INVALID)
        if not await run_in_threadpool(verify_password, password, stored):
            raise Unauthorized(INVALID)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[key] = name
        return Identity(name)


class ApiKeyPolicy(Policy):
    def __init__(self, keys: list[dict[str, str]], header: str, query: str | None) -> None:
        self.by_hash = {entry["hash"]: entry["id"] for entry in keys}
        self.header = header
        self.query = query

    async def check(self, request: Request) -> Identity:
        key = request.headers.get(self.header)
        if key is None and self.query is not None:
            key = request.query_params.get(self.query)
        if not key:
            raise Unauthorized(f"an API key is required in the {self.header} header")
        # Looked up by its hash: how long a lookup takes says nothing about any key.
        key_id = self.by_hash.get(hash_api_key(key))
        if key_id is None:
            raise Unauthorized(INVALID)
        return Identity(key_id)


def make_policy(config: dict[str, Any], jwks_loader: Any = None) -> Policy:
    kind = config.get("type", "none")
    if kind == "basic":
        return BasicPolicy(dict(config.get("users") or {}))
    if kind == "api-key":
        return ApiKeyPolicy(
            list(config.get("keys") or []), config.get("header", "x-api-key"), config.get("query")
        )
    if kind == "jwt":
        from wisp.gateway.jwt import JwtPolicy

        return JwtPolicy(config, jwks_loader)
    return Policy()
