"""Gateway routes in ``project.yml``: the ``routes:`` section, planned like functions.

Each entry is the document ``PUT /api/v1/namespaces/_/routes`` takes (``basePath``
may be written ``base``)::

    routes:
      - base: /shop
        path: /items/{id}
        method: GET
        function: shop/get
        policy: {type: api-key, keys: ["${SHOP_KEY}"]}
        rateLimit: {requests: 10, per: 1}

Shapes are checked here, with the key path in every error; the policy details
(password length, JWKS, CIDRs…) are checked by the server's ``dryRun`` at plan
time, so client and server can never disagree about what a valid route is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wisp.deploy.errors import ProjectError

Fail = Callable[[str, str], ProjectError]
ROUTES_PATH = "routes"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_KEYS = {
    "base",
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
_MAPPINGS = ("policy", "ip", "rateLimit", "cors")


@dataclass
class DesiredRoute:
    base_path: str
    path: str
    method: str
    function: str
    where: str  # key path in project.yml, for errors found by the server at plan time
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.base_path, self.path, self.method)

    @property
    def name(self) -> str:
        return route_name(self.base_path, self.path, self.method)

    @property
    def label(self) -> str:
        return f"route {self.name}"

    @property
    def api_path(self) -> str:
        return ROUTES_PATH


def route_name(base_path: str, path: str, method: str) -> str:
    return f"{method} {base_path.rstrip('/')}{path}"


def delete_params(base_path: str, path: str, method: str) -> dict[str, str]:
    """The query of ``DELETE routes`` that removes exactly this one route."""
    return {"basePath": base_path, "path": path, "method": method}


def read_routes(raw: Any, fail: Fail) -> list[DesiredRoute]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail("routes", "must be a list")
    routes: list[DesiredRoute] = []
    seen: dict[tuple[str, str, str], str] = {}
    for i, item in enumerate(raw):
        route = _read_one(item, f"routes[{i}]", fail)
        if route.key in seen:
            raise fail(route.where, f"{route.name} is also declared at {seen[route.key]}")
        seen[route.key] = route.where
        routes.append(route)
    return routes


def _read_one(raw: Any, where: str, fail: Fail) -> DesiredRoute:
    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping")
    for key in raw:
        if key not in _KEYS:
            raise fail(f"{where}.{key}", f"unknown key; expected one of {', '.join(sorted(_KEYS))}")
    if "base" in raw and "basePath" in raw:
        raise fail(where, "use either base or basePath, not both")
    base_key = "basePath" if "basePath" in raw else "base"
    base = _path(raw.get(base_key, "/"), f"{where}.{base_key}", fail)
    path = _path(raw.get("path"), f"{where}.path", fail)
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise fail(f"{where}.method", f"must be one of {', '.join(METHODS)} (got {method!r})")
    function = raw.get("function")
    if (
        not isinstance(function, str)
        or not function
        or function.startswith("/")
        or function.count("/") > 1
    ):
        raise fail(f"{where}.function", f"must be FN or PKG/FN (got {function!r})")
    for key in _MAPPINGS:
        if key in raw and not isinstance(raw[key], dict):
            raise fail(f"{where}.{key}", "must be a mapping")
    body = {k: v for k, v in raw.items() if k not in ("base", "basePath")}
    body.update(basePath=base, path=path, method=method.upper())
    # The server normalises paths the same way, so the plan's names match its list.
    return DesiredRoute(base, path, method.upper(), function, where, body)


def _path(raw: Any, where: str, fail: Fail) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise fail(where, f"must be a path starting with '/' (got {raw!r})")
    return "/" + "/".join(s for s in raw.split("/") if s)
