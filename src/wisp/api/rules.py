"""``/api/v1/namespaces/{ns}/rules[/{name}]``: OpenWhisk rules. ``PUT {trigger,
action}`` creates an active rule; ``POST {status: active|inactive}`` switches it."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object, paging, query_bool
from wisp.models import Rule
from wisp.triggers.system import Triggers

_BODY_MAX = 64 * 1024


def entity_ref_json(namespace: str, path: str) -> dict[str, str]:
    """OpenWhisk's ``{name, path}`` for an entity: path is 'ns' or 'ns/pkg'."""
    package, slash, name = path.rpartition("/")
    return {"name": name, "path": f"{namespace}/{package}" if slash else namespace}


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "namespace": rule.namespace,
        "name": rule.name,
        "version": rule.version,
        "publish": rule.publish,
        "status": rule.status,
        "trigger": entity_ref_json(rule.namespace, rule.trigger),
        "action": entity_ref_json(rule.namespace, rule.action),
        "annotations": rule.annotations,
        "updated": rule.updated,
    }


class RulesApi:
    def __init__(self, ctx: ApiContext, triggers: Triggers) -> None:
        self.ctx = ctx
        self.service = triggers.service

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/rules"
        return [
            route(base, GET=self.list_rules),
            route(base + "/", GET=self.list_rules),
            route(
                base + "/{name}", GET=self.get, PUT=self.put, DELETE=self.delete, POST=self.status
            ),
        ]

    async def list_rules(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        limit, skip = paging(request)
        found = await run_in_threadpool(self.service.list_rules, namespace.name, limit, skip)
        return JSONResponse([rule_json(r) for r in found])

    async def get(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        rule = await run_in_threadpool(
            self.service.get_rule, namespace.name, request.path_params["name"]
        )
        return JSONResponse(rule_json(rule))

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        overwrite = query_bool(request, "overwrite")
        doc = await json_object(request, _BODY_MAX)
        rule = await run_in_threadpool(
            self.service.put_rule,
            namespace.name,
            request.path_params["name"],
            doc,
            overwrite=overwrite,
        )
        return JSONResponse(rule_json(rule))

    async def status(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        doc = await json_object(request, _BODY_MAX)
        rule = await run_in_threadpool(
            self.service.set_rule_status,
            namespace.name,
            request.path_params["name"],
            doc.get("status"),
        )
        return JSONResponse(rule_json(rule))

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        rule = await run_in_threadpool(
            self.service.delete_rule, namespace.name, request.path_params["name"]
        )
        return JSONResponse(rule_json(rule))
