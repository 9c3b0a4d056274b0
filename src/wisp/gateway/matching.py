"""Route templates (``/shop`` + ``/items/{id}``) compiled to patterns, and lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wisp.entities import split_qualifier
from wisp.gateway.cors import Cors
from wisp.gateway.ipfilter import IpRules, parse_networks
from wisp.gateway.policies import PasswordChecker, Policy, make_policy
from wisp.gateway.ratelimit import TokenBucket
from wisp.gateway.routes import split_function
from wisp.models import GatewayRoute

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compile_template(base: str, path: str) -> re.Pattern[str]:
    full = "/".join(s for s in (base + "/" + path).split("/") if s)
    parts = []
    for segment in full.split("/") if full else []:
        found = _PARAM.fullmatch(segment)
        parts.append(f"(?P<{found.group(1)}>[^/]+)" if found else re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


@dataclass
class CompiledRoute:
    route: GatewayRoute
    pattern: re.Pattern[str]
    policy: Policy
    ip: IpRules | None
    limiter: TokenBucket | None
    cors: Cors | None
    rate_by: str = "client"
    methods: list[str] = field(default_factory=list)
    # Read from the route's config once, not per request.
    package: str = ""
    name: str = ""
    qualifier: str = ""  # the version or alias the route's function names (fn:live)
    response_type: str = "http"
    max_body: int = 0

    @property
    def specificity(self) -> tuple[int, int]:
        # Literal segments beat parameters: /items/new wins over /items/{id}.
        full = self.route.base_path + self.route.path
        params = len(_PARAM.findall(full))
        return (-(full.count("/") - params), params)


def compile_route(
    route: GatewayRoute, limiter: TokenBucket | None, loader: Any, checker: PasswordChecker
) -> CompiledRoute:
    config = route.config
    ip = config.get("ip")
    rules = None
    if ip:
        rules = IpRules(
            parse_networks(ip["allow"], "ip.allow"), parse_networks(ip["deny"], "ip.deny")
        )
    cors = Cors(config["cors"], [route.method]) if config.get("cors") else None
    rate = config.get("rateLimit") or {}
    package, name = split_function(route.action)
    name, qualifier = split_qualifier(name)
    return CompiledRoute(
        route=route,
        pattern=compile_template(route.base_path, route.path),
        policy=make_policy(config.get("policy") or {}, loader, checker),
        ip=rules,
        limiter=limiter,
        cors=cors,
        rate_by=rate.get("by", "client"),
        package=package,
        name=name,
        qualifier=qualifier,
        response_type=str(config.get("responseType", "http")),
        max_body=int(config["maxBody"]),
    )


class RouteTable:
    def __init__(self, routes: list[CompiledRoute]) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity)

    def match(
        self, path: str, method: str
    ) -> tuple[CompiledRoute | None, dict[str, str], list[CompiledRoute]]:
        """(route, path parameters, other routes of the path, for 405 and preflights)."""
        path = "/" + "/".join(s for s in path.split("/") if s)
        allowed: list[CompiledRoute] = []
        for compiled in self.routes:
            found = compiled.pattern.match(path)
            if found is None:
                continue
            route_method = compiled.route.method
            if route_method in (method, "ANY") or (method == "HEAD" and route_method == "GET"):
                return compiled, found.groupdict(), allowed
            allowed.append(compiled)
        return None, {}, allowed
