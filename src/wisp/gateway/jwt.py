"""The ``jwt`` policy: OIDC bearer tokens (RS256 / ES256) checked against a JWKS.

The JWKS comes from an https:// URL, fetched and cached by ``jwks.JwksLoader``
(which also decides what a URL may reach); a token signed with a key id the cache
does not know may trigger a refetch (keys rotate), at most once a minute per URL.
The algorithm must be one the route allows — never ``none``, and never chosen by the token alone.
Issuer, audience and expiry are required; required scopes (``scope`` or ``scp``)
and claims give 403 when missing.
"""

from __future__ import annotations

from typing import Any

import jwt

from wisp.errors import Forbidden, Unauthorized
from wisp.gateway.jwks import JwksLoader
from wisp.gateway.policies import Identity, Policy

LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf/iat


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
