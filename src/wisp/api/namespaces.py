"""``/api/v1/namespaces`` and a namespace's limits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.config import Limits, Settings

# Trigger fires are not limited yet; this is DigitalOcean's published figure.
DEFAULT_TRIGGERS_PER_MINUTE = 600
_KB = 1024
_MB = 1024 * 1024


def platform_limits(settings: Settings) -> dict[str, int]:
    """The ``limits`` object of ``GET /api/v1`` (OpenWhisk units: ms and bytes)."""
    lim: Limits = settings.limits
    return {
        "actions_per_minute": settings.namespace_per_minute,
        "triggers_per_minute": DEFAULT_TRIGGERS_PER_MINUTE,
        "concurrent_actions": settings.namespace_concurrent,
        "min_action_memory": lim.memory_min * _MB,
        "max_action_memory": lim.memory_max * _MB,
        "default_action_memory": lim.memory_default * _MB,
        "min_action_duration": lim.timeout_min,
        "max_action_duration": lim.timeout_max,
        "default_action_duration": lim.timeout_default,
        "min_action_logs": lim.logs_min * _KB,
        "max_action_logs": lim.logs_max * _KB,
        "default_action_logs": lim.logs_default * _KB,
        "max_action_payload": lim.payload_max,
        "max_action_result": lim.result_max,
        "max_action_code": lim.code_max,
        "blocking_wait_ms": int(settings.sync_limit * 1000),
    }


class NamespacesApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces"
        return [
            route(base, GET=self.list_namespaces),
            route(base + "/{ns}/limits", GET=self.limits),
        ]

    async def list_namespaces(self, request: Request) -> Response:
        caller = await self.ctx.auth.caller(request)
        return JSONResponse([caller.name])

    async def limits(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        settings = self.ctx.platform.settings
        lim = settings.limits
        doc: dict[str, object] = {
            "concurrentActions": settings.namespace_concurrent,
            "invocationsPerMinute": settings.namespace_per_minute,
            "firesPerMinute": DEFAULT_TRIGGERS_PER_MINUTE,
            "minActionMemory": lim.memory_min * _MB,
            "maxActionMemory": lim.memory_max * _MB,
            "minActionTimeout": lim.timeout_min,
            "maxActionTimeout": lim.timeout_max,
            "minActionLogs": lim.logs_min * _KB,
            "maxActionLogs": lim.logs_max * _KB,
            "maxParameterSize": lim.payload_max,
            "maxResultSize": lim.result_max,
            "maxCodeSize": lim.code_max,
        }
        # An operator's per-namespace overrides win over the platform's defaults.
        doc.update(namespace.limits)
        return JSONResponse(doc)
