"""Access policies, evaluated before a route's function is touched.

Each policy checks a request and returns the caller's ``Identity`` (passed to the
function as ``__ow_user`` and, for JWT, ``__ow_claims``) or raises Unauthorized /
Forbidden. Basic passwords are checked by one ``PasswordChecker`` per gateway: PBKDF2
on its own few threads (never the shared pool), a request finding them all busy gets
503 at once instead of queueing, and a success is remembered (by a hash of the header
and the stored hash) so a returning client does not pay for PBKDF2 again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from wisp.errors import Unauthorized, Unavailable
from wisp.gateway.hashing import hash_api_key, verify_password

INVALID = "The supplied authentication is invalid"
HASHING = 2  # PBKDF2 checks at once per process; each holds a core for ~50 ms
VERIFIED_MAX = 10_000  # successful Basic headers remembered (least recently used go)
BUSY = "Too many password checks are in progress; retry shortly"


@dataclass(frozen=True)
class Identity:
    user: str | None = None
    claims: dict[str, Any] | None = None


class Policy:
    """``none``: everyone may call."""

    counts_failures = False  # failed checks count against the client's allowance

    async def check(self, request: Request) -> Identity:
        return Identity()


class PasswordChecker:
    def __init__(self, concurrency: int = HASHING) -> None:
        self._threads = ThreadPoolExecutor(concurrency, thread_name_prefix="wisp-pbkdf2")
        self._slots = asyncio.Semaphore(concurrency)
        self._verified: OrderedDict[bytes, None] = OrderedDict()

    async def verify(self, header: str, password: str, stored: str) -> bool:
        key = hashlib.sha256(f"{stored}\n{header}".encode()).digest()
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        if self._slots.locked():
            raise Unavailable(BUSY, retry_after=1)
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        check = loop.run_in_executor(self._threads, verify_password, password, stored)
        # The slot is free when the hash is done, not when a cancelled caller leaves.
        check.add_done_callback(lambda _: self._slots.release())
        if not await asyncio.shield(check):
            return False
        self._verified[key] = None
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return True


class BasicPolicy(Policy):
    counts_failures = True  # people choose these passwords: guessing is worth limiting

    def __init__(self, users: dict[str, str], checker: PasswordChecker) -> None:
        self.users = users
        self.checker = checker

    async def check(self, request: Request) -> Identity:
        header = request.headers.get("authorization", "")
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
        if not await self.checker.verify(header, password, stored):
            raise Unauthorized(INVALID)
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


def make_policy(config: dict[str, Any], jwks_loader: Any, checker: PasswordChecker) -> Policy:
    kind = config.get("type", "none")
    if kind == "basic":
        return BasicPolicy(dict(config.get("users") or {}), checker)
    if kind == "api-key":
        return ApiKeyPolicy(
            list(config.get("keys") or []), config.get("header", "x-api-key"), config.get("query")
        )
    if kind == "jwt":
        from wisp.gateway.jwt import JwtPolicy

        return JwtPolicy(config, jwks_loader)
    return Policy()
