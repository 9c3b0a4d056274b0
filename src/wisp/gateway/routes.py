"""Gateway routes: validating a route document, hashing its secrets, storing it.

A route is ``METHOD basePath+path`` → function, with an access policy (``none``,
``basic``, ``api-key``, ``jwt``), IP allow/deny lists, a rate limit, CORS and a
body limit. Secrets are hashed before they are stored and never returned; an API
key the server generates is shown once, in the answer to the PUT that made it.
Putting a route that matches the stored one (passwords checked against their
hashes) changes nothing, so deploying a project twice is a no-op.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wisp.entities import EntityService, split_qualifier
from wisp.errors import BadRequest, Conflict, NotFound
from wisp.gateway.hashing import hash_api_key, hash_password, new_api_key, verify_password
from wisp.gateway.jwks import JwksRules, check_url
from wisp.models import DEFAULT_PACKAGE, GatewayRoute
from wisp.store.base import Store

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
POLICIES = ("none", "basic", "api-key", "jwt")
RESPONSE_TYPES = ("http", "json", "html", "text", "svg")
ALGORITHMS = ("RS256", "ES256")
RATE_BY = ("client", "ip")
_LITERAL = re.compile(r"[A-Za-z0-9._~@:+!$&'*,;=-]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_USER = re.compile(r"[^:\s]{1,128}")
_DOC_KEYS = {
    "basePath",
    "path",
    "method",
    "function",
    "responseType",
    "policy",
    "ip",
    "rateLimit",
    "cors",
    "maxBody",
    "host",
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_path(field_name: str, raw: Any, *, params: bool) -> str:
    """A normalised path: leading '/', no trailing '/', literal or ``{name}`` segments."""
    if not isinstance(raw, str) or not raw.startswith("/") or len(raw) > 1024:
        raise BadRequest(f"{field_name} must be a path starting with '/' (got {raw!r})")
    segments = [s for s in raw.split("/") if s]
    for segment in segments:
        if _LITERAL.fullmatch(segment):
            continue
        if params and _PARAM.fullmatch(segment):
            continue
        allowed = "letters, digits, ._~-" + (" or a {parameter}" if params else "")
        raise BadRequest(f"{field_name}: segment {segment!r} is not allowed; use {allowed}")
    names = [m.group(1) for s in segments if (m := _PARAM.fullmatch(s))]
    if len(names) != len(set(names)):
        raise BadRequest(f"{field_name}: a path parameter is named twice in {raw!r}")
    return "/" + "/".join(segments)


def split_function(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, str) or not raw or raw.count("/") > 1 or raw.startswith("/"):
        raise BadRequest(f"function must be FN or PKG/FN (got {raw!r})")
    package, _, name = raw.rpartition("/")
    return package or DEFAULT_PACKAGE, name


@dataclass
class PutResult:
    route: GatewayRoute
    created: bool
    changes: list[str]
    api_keys: list[str] = field(default_factory=list)  # generated now; shown only once


class RouteService:
    def __init__(
        self,
        store: Store,
        entities: EntityService,
        payload_max: int,
        on_change: Callable[[str], None] | None = None,
        jwks_rules: JwksRules | None = None,
    ) -> None:
        self.store = store
        self.entities = entities
        self.payload_max = payload_max
        self.on_change = on_change
        self.jwks_rules = jwks_rules or JwksRules()

    def list(self, namespace: str) -> list[GatewayRoute]:
        return self.store.list_routes(namespace)

    def put(
        self, namespace: str, doc: Mapping[str, Any], *, overwrite: bool, dry_run: bool = False
    ) -> PutResult:
        unknown = sorted(set(doc) - _DOC_KEYS)
        if unknown:
            raise BadRequest(
                f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(_DOC_KEYS))}"
            )
        base = check_path("basePath", doc.get("basePath", "/"), params=False)
        path = check_path("path", doc.get("path"), params=True)
        method = doc.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise BadRequest(f"method must be one of {', '.join(METHODS)} (got {method!r})")
        method = method.upper()
        package, name = split_function(doc.get("function"))
        # NotFound names the function (or its alias or version: fn:live, fn:0.0.2).
        self.entities.resolve_target(namespace, package, *split_qualifier(name))
        action = name if package == DEFAULT_PACKAGE else f"{package}/{name}"
        existing = next(
            (
                r
                for r in self.store.list_routes(namespace)
                if (r.base_path, r.path, r.method) == (base, path, method)
            ),
            None,
        )
        old = existing.config if existing else {}
        generated: list[str] = []
        config = {
            "responseType": _choice(
                "responseType", doc.get("responseType", "http"), RESPONSE_TYPES
            ),
            "policy": _policy(
                doc.get("policy"), old.get("policy") or {}, generated, self.jwks_rules
            ),
            "ip": _ip_lists(doc.get("ip")),
            "rateLimit": _rate_limit(doc.get("rateLimit")),
            "cors": _cors(doc.get("cors")),
            "maxBody": _max_body(doc.get("maxBody"), self.payload_max),
        }
        host = _host(doc.get("host"))
        route = GatewayRoute(namespace, base, path, method, action, host, config)
        if existing is None:
            changes = ["new route"]
        else:
            changes = _changes(existing, route)
            if changes and not overwrite and not dry_run:
                raise Conflict(
                    f"route {method} {base}{path} already exists; use overwrite=true to update it"
                )
        if dry_run or (not changes and existing is not None):
            kept = existing if existing is not None and not changes else route
            return PutResult(kept, existing is None, changes, generated)
        route.created = existing.created if existing else now_ms()
        route.updated = now_ms()
        self.store.put_route(route)
        self._changed(namespace)
        return PutResult(route, existing is None, changes, generated)

    def delete(self, namespace: str, base: str, path: str | None, method: str | None) -> int:
        base = check_path("basePath", base, params=False)
        if path is not None:
            path = check_path("path", path, params=True)
        if method is not None:
            method = method.upper()
        count = self.store.delete_routes(namespace, base, path, method)
        if not count:
            raise NotFound(f"no route matches {method or 'any method'} {base}{path or ''}")
        self._changed(namespace)
        return count

    def _changed(self, namespace: str) -> None:
        if self.on_change is not None:
            self.on_change(namespace)


def route_json(route: GatewayRoute) -> dict[str, Any]:
    """The route as the API shows it: no password hashes, no key hashes."""
    config = route.config
    policy = dict(config.get("policy") or {"type": "none"})
    if policy.get("type") == "basic":
        policy["users"] = sorted(policy.get("users") or {})
    elif policy.get("type") == "api-key":
        policy["keys"] = [k["id"] for k in policy.get("keys") or []]
    return {
        "namespace": route.namespace,
        "basePath": route.base_path,
        "path": route.path,
        "method": route.method,
        "function": route.action,
        "host": route.host or None,
        "responseType": config.get("responseType", "http"),
        "policy": policy,
        "ip": config.get("ip"),
        "rateLimit": config.get("rateLimit"),
        "cors": config.get("cors"),
        "maxBody": config.get("maxBody"),
        "created": route.created,
        "updated": route.updated,
    }


def _changes(old: GatewayRoute, new: GatewayRoute) -> list[str]:
    changes = []
    if old.action != new.action:
        changes.append(f"function {old.action} → {new.action}")
    if old.host != new.host:
        changes.append("host changed")
    for key in sorted(set(old.config) | set(new.config)):
        if old.config.get(key) != new.config.get(key):
            changes.append(f"{key} changed")
    return changes


def _choice(name: str, raw: Any, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)} (got {raw!r})")
    return str(raw)


def _mapping(name: str, raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{name} must be an object")
    return raw


def _strings(name: str, raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise BadRequest(f"{name} must be a list of non-empty strings")
    return list(raw)


def _policy(
    raw: Any, old: Mapping[str, Any], generated: list[str], jwks_rules: JwksRules
) -> dict[str, Any]:
    doc = _mapping("policy", raw)
    kind = _choice("policy.type", doc.get("type", "none"), POLICIES)
    if kind == "none":
        return {"type": "none"}
    if kind == "basic":
        users = _mapping("policy.users", doc.get("users"))
        if not users:
            raise BadRequest("policy.users must name at least one user: {name: password}")
        old_users = old.get("users") or {} if old.get("type") == "basic" else {}
        hashed: dict[str, str] = {}
        for user, password in users.items():
            if not _USER.fullmatch(user):
                raise BadRequest(f"policy.users: {user!r} is not a valid user name (no ':')")
            if not isinstance(password, str) or len(password) < 8:
                raise BadRequest(f"policy.users.{user}: the password must be 8 or more characters")
            previous = old_users.get(user)
            if isinstance(previous, str) and verify_password(password, previous):
                hashed[user] = previous  # unchanged: keep the hash (and the plan quiet)
            else:
                hashed[user] = hash_password(password)
        return {"type": "basic", "users": hashed}
    if kind == "api-key":
        keys = _strings("policy.keys", doc.get("keys"))
        if not keys:
            if old.get("type") == "api-key" and old.get("keys"):
                return {**dict(old), **_key_places(doc)}  # keep the keys made before
            keys = [new_api_key()]
            generated.extend(keys)
        for key in keys:
            if len(key) < 16:
                raise BadRequest("policy.keys: an API key must be 16 or more characters")
        entries = [{"id": f"key-{hash_api_key(k)[:8]}", "hash": hash_api_key(k)} for k in keys]
        return {"type": "api-key", **_key_places(doc), "keys": entries}
    return _jwt(doc, jwks_rules)


def _key_places(doc: Mapping[str, Any]) -> dict[str, Any]:
    header = doc.get("header", "x-api-key")
    query = doc.get("query")
    if not isinstance(header, str) or not header:
        raise BadRequest("policy.header must be a header name")
    if query is not None and (not isinstance(query, str) or not query):
        raise BadRequest("policy.query must be a query parameter name")
    return {"header": header.lower(), "query": query}


def _jwt(doc: Mapping[str, Any], jwks_rules: JwksRules) -> dict[str, Any]:
    jwks = doc.get("jwks")
    if not isinstance(jwks, str) or not jwks:
        raise BadRequest("policy.jwks must be the https:// URL of a JWKS document")
    try:
        check_url(jwks, jwks_rules)  # checked again at every fetch: DNS answers change
    except ValueError as exc:
        raise BadRequest(f"policy.jwks: {exc}") from None
    algorithms = _strings("policy.algorithms", doc.get("algorithms")) or list(ALGORITHMS)
    for alg in algorithms:
        if alg not in ALGORITHMS:
            raise BadRequest(
                f"policy.algorithms: {alg!r} is not allowed; use {', '.join(ALGORITHMS)}"
            )
    issuer = doc.get("issuer")
    audience = doc.get("audience")
    if not isinstance(issuer, str) or not issuer:
        raise BadRequest("policy.issuer is required for jwt: the expected 'iss' claim")
    if not isinstance(audience, str) or not audience:
        raise BadRequest("policy.audience is required for jwt: the expected 'aud' claim")
    claims = dict(_mapping("policy.claims", doc.get("claims")))
    return {
        "type": "jwt",
        "jwks": jwks,
        "issuer": issuer,
        "audience": audience,
        "algorithms": algorithms,
        "scopes": _strings("policy.scopes", doc.get("scopes")),
        "claims": claims,
    }


def _ip_lists(raw: Any) -> dict[str, list[str]] | None:
    doc = _mapping("ip", raw)
    if not doc:
        return None
    out: dict[str, list[str]] = {}
    for key in ("allow", "deny"):
        networks = []
        for item in _strings(f"ip.{key}", doc.get(key)):
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise BadRequest(f"ip.{key}: {item!r} is not an IP address or CIDR") from None
        out[key] = networks
    return out


def _positive(name: str, raw: Any, *, number: bool = False) -> Any:
    kinds = (int, float) if number else (int,)
    if isinstance(raw, bool) or not isinstance(raw, kinds) or raw <= 0:
        raise BadRequest(f"{name} must be a positive {'number' if number else 'integer'}")
    return raw


def _rate_limit(raw: Any) -> dict[str, Any] | None:
    doc = _mapping("rateLimit", raw)
    if not doc:
        return None
    requests = _positive("rateLimit.requests", doc.get("requests"))
    per = _positive("rateLimit.per", doc.get("per", 1), number=True)
    burst = _positive("rateLimit.burst", doc.get("burst", requests))
    return {
        "requests": requests,
        "per": per,
        "burst": burst,
        "by": _choice("rateLimit.by", doc.get("by", "client"), RATE_BY),
    }


def _cors(raw: Any) -> dict[str, Any] | None:
    doc = _mapping("cors", raw)
    if not doc:
        return None
    origins = _strings("cors.origins", doc.get("origins")) or ["*"]
    max_age = doc.get("maxAge", 600)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise BadRequest("cors.maxAge must be a number of seconds")
    credentials = doc.get("credentials", False)
    if not isinstance(credentials, bool):
        raise BadRequest("cors.credentials must be true or false")
    return {
        "origins": origins,
        "methods": [m.upper() for m in _strings("cors.methods", doc.get("methods"))],
        "headers": _strings("cors.headers", doc.get("headers")),
        "expose": _strings("cors.expose", doc.get("expose")),
        "credentials": credentials,
        "maxAge": max_age,
    }


def _max_body(raw: Any, ceiling: int) -> int:
    if raw is None:
        return ceiling
    value = _positive("maxBody", raw)
    if value > ceiling:
        raise BadRequest(f"maxBody must be at most {ceiling} bytes (got {value})")
    return int(value)


def _host(raw: Any) -> str:
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or not _HOST.fullmatch(raw.lower()) or len(raw) > 253:
        raise BadRequest(f"host must be a host name such as api.example.com (got {raw!r})")
    return raw.lower()
