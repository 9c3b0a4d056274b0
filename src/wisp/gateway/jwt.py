"""The ``jwt`` policy: OIDC bearer tokens (RS256 / ES256) checked against a JWKS.

The JWKS comes from a file or a URL and is cached; a token signed with a key id
the cache does not know triggers one refetch (keys rotate). The algorithm must be
one the route allows — never ``none``, and never chosen by the token alone.
Issuer, audience and expiry are required; required scopes (``scope`` or ``scp``)
and claims give 403 when missing.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

from wisp.errors import Forbidden, Unauthorized
from wisp.gateway.policies import Identity, Policy

JWKS_TTL = 300.0  # seconds a fetched key set is used before it is fetched again
JWKS_TIMEOUT = 5.0
LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf/iat


class JwksLoader:
    """Key sets by source (URL or file), cached for JWKS_TTL."""

    def __init__(self, ttl: float = JWKS_TTL) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    async def keys(self, source: str, *, refresh: bool = False) -> jwt.PyJWKSet:
        cached = self._cache.get(source)
        if cached is not None and not refresh and cached[0] > time.monotonic():
            return cached[1]
        try:
            document = await self._fetch(source)
            keys = jwt.PyJWKSet.from_dict(document)
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as exc:
            if cached is not None:
                return cached[1]  # a flaky JWKS endpoint must not lock everyone out
            raise Unauthorized(f"the route's JWKS could not be loaded: {exc}") from None
        self._cache[source] = (time.monotonic() + self.ttl, keys)
        return keys

    @staticmethod
    async def _fetch(source: str) -> dict[str, Any]:
        if source.startswith(("https://", "http://")):
            async with httpx.AsyncClient(timeout=JWKS_TIMEOUT) as client:
                response = await client.get(source)
                response.raise_for_status()
                document = response.json()
        else:
            path = Path(source.removeprefix("file://"))
            document = json.loads(await asyncio.to_thread(path.read_text))
        if not isinstance(document, dict):
            raise ValueError("a JWKS document is a JSON object with 'keys'")
        return document


class JwtPolicy(Policy):
    def __init__(self, config: dict[str, Any], loader: JwksLoader | None) -> None:
        self.source: str = config["jwks"]
        self.issuer: str = config["issuer"]
        self.audience: str = config["audience"]
        self.algorithms: list[str] = list(config.get("algorithms") or ["RS256", "ES256"])
        self.scopes: list[str] = list(config.get("scopes") or [])
        self.claims: dict[str, Any] = dict(config.get("claims") or {})
        self.loader = loader or JwksLoader()

    async def check(self, request: Any) -> Identity:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required (Authorization: Bearer <JWT>)")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthorized(f"the token's algorithm {alg!r} is not allowed here")
        key = await self._key(header.get("kid"), alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token is not from the expected issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is invalid: {exc}") from None
        self._authorise(claims)
        subject = claims.get("sub")
        return Identity(str(subject) if subject is not None else None, claims)

    async def _key(self, kid: Any, alg: str) -> jwt.PyJWK:
        for refresh in (False, True):
            keys = await self.loader.keys(self.source, refresh=refresh)
            for key in keys.keys:
                if kid is not None and key.key_id != kid:
                    continue
                if key.algorithm_name not in (alg, None) and kid is None:
                    continue
                return key
        raise Unauthorized("the token was signed with a key the route does not know")

    def _authorise(self, claims: dict[str, Any]) -> None:
        granted = claims.get("scope", claims.get("scp", []))
        if isinstance(granted, str):
            granted = granted.split()
        missing = [s for s in self.scopes if s not in granted]
        if missing:
            raise Forbidden(f"the token lacks the scope {missing[0]!r}")
        for name, wanted in self.claims.items():
            have = claims.get(name)
            ok = wanted in have if isinstance(have, list) else have == wanted
            if not ok:
                raise Forbidden(f"the token's claim {name!r} does not allow this route")
