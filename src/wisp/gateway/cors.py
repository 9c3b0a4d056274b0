"""Per-route CORS: preflight answers and the headers on actual responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class Cors:
    def __init__(self, config: dict[str, Any], route_methods: list[str]) -> None:
        self.origins = config.get("origins") or ["*"]
        self.methods = config.get("methods") or route_methods
        self.headers = config.get("headers") or []
        self.expose = config.get("expose") or []
        self.credentials = bool(config.get("credentials"))
        self.max_age = int(config.get("maxAge", 600))

    def allowed_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if "*" in self.origins:
            # With credentials the origin must be echoed: browsers refuse '*' then.
            return origin if self.credentials else "*"
        return origin if origin in self.origins else None

    def is_preflight(self, request: Request) -> bool:
        return (
            request.method == "OPTIONS"
            and "origin" in request.headers
            and "access-control-request-method" in request.headers
        )

    def preflight(self, request: Request) -> Response:
        origin = self.allowed_origin(request.headers.get("origin"))
        wanted = request.headers.get("access-control-request-method", "").upper()
        if origin is None or (wanted not in self.methods and "ANY" not in self.methods):
            return Response(status_code=403, headers={"Vary": "Origin"})
        requested = request.headers.get("access-control-request-headers", "")
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(self.methods),
            "Access-Control-Max-Age": str(self.max_age),
            "Vary": "Origin",
        }
        allow_headers = ", ".join(self.headers) if self.headers else requested
        if allow_headers:
            headers["Access-Control-Allow-Headers"] = allow_headers
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return Response(status_code=204, headers=headers)

    def response_headers(self, request: Request) -> dict[str, str]:
        origin = self.allowed_origin(request.headers.get("origin"))
        if origin is None:
            return {}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if self.expose:
            headers["Access-Control-Expose-Headers"] = ", ".join(self.expose)
        return headers
