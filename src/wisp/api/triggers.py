"""``/api/v1/namespaces/{ns}/triggers[/{name}]``: OpenWhisk triggers, plus Wisp's
``schedule`` and ``enabled``. ``POST`` fires: 202 with the trigger activation id,
or 204 when no rule is active."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object, paging, query_bool
from wisp.api.rules import entity_ref_json
from wisp.models import Rule, Trigger
from wisp.triggers.scheduler import iso
from wisp.triggers.service import as_dict, parameters
from wisp.triggers.system import Triggers


def trigger_json(trigger: Trigger, rules: list[Rule] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "namespace": trigger.namespace,
        "name": trigger.name,
        "version": trigger.version,
        "publish": trigger.publish,
        "parameters": trigger.parameters,
        "annotations": trigger.annotations,
        "limits": {},
        "updated": trigger.updated,
        "enabled": trigger.enabled,
        "last_run_at": iso(trigger.last_run_at),
        "next_run_at": iso(trigger.next_run_at) if trigger.enabled else None,
    }
    if trigger.cron is not None:
        doc["schedule"] = {
            "cron": trigger.cron,
            "timezone": trigger.timezone,
            "concurrency": trigger.concurrency,
            "missed": trigger.missed,
        }
    if rules is not None:
        doc["rules"] = {
            f"{r.namespace}/{r.name}": {
                "action": entity_ref_json(r.namespace, r.action),
                "status": r.status,
            }
            for r in rules
        }
    return doc


def fire_parameters(doc: dict[str, Any]) -> dict[str, Any]:
    """The event: a flat object, or ``{"parameters": [{key, value}]}`` as nim sends."""
    if set(doc) == {"parameters"} and isinstance(doc["parameters"], list):
        return as_dict(parameters("parameters", doc["parameters"]) or [])
    return doc


class TriggersApi:
    def __init__(self, ctx: ApiContext, triggers: Triggers) -> None:
        self.ctx = ctx
        self.triggers = triggers

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/triggers"
        return [
            route(base, GET=self.list_triggers),
            route(base + "/", GET=self.list_triggers),
            route(base + "/{name}", GET=self.get, PUT=self.put, DELETE=self.delete, POST=self.fire),
        ]

    async def list_triggers(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        limit, skip = paging(request)
        found = await run_in_threadpool(
            self.triggers.service.list_triggers, namespace.name, limit, skip
        )
        return JSONResponse([trigger_json(t) for t in found])

    async def get(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        name = request.path_params["name"]
        service = self.triggers.service

        def load() -> tuple[Trigger, list[Rule]]:
            return service.get_trigger(namespace.name, name), service.rules_of(namespace.name, name)

        trigger, rules = await run_in_threadpool(load)
        return JSONResponse(trigger_json(trigger, rules))

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        overwrite = query_bool(request, "overwrite")
        doc = await json_object(request, self.ctx.platform.settings.limits.payload_max)
        trigger = await run_in_threadpool(
            self.triggers.service.put_trigger,
            namespace.name,
            request.path_params["name"],
            doc,
            overwrite=overwrite,
        )
        return JSONResponse(trigger_json(trigger))

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        trigger = await run_in_threadpool(
            self.triggers.service.delete_trigger, namespace.name, request.path_params["name"]
        )
        return JSONResponse(trigger_json(trigger))

    async def fire(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        params = fire_parameters(
            await json_object(request, self.ctx.platform.settings.limits.payload_max)
        )
        trigger = await run_in_threadpool(
            self.triggers.service.get_trigger, namespace.name, request.path_params["name"]
        )
        self.triggers.limiter.admit(namespace.name)
        fired = await self.triggers.firer.fire(trigger, params, subject=namespace.name)
        if fired.activation_id is None:
            return Response(status_code=204)
        return JSONResponse({"activationId": fired.activation_id}, status_code=202)
