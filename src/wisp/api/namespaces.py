"""``/api/v1/namespaces`` and a namespace's limits."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.config import Limits, Settings
from wisp.errors import NotFound
from wisp.triggers.fire import FireLimiter

_KB = 1024
_MB = 1024 * 1024
# The keys `wisp admin namespace limits` stores (the quotas read them) → OpenWhisk's names.
OVERRIDES = {
    "concurrentActions": "concurrentInvocations",
    "invocationsPerMinute": "invocationsPerMinute",
}


def platform_limits(settings: Settings, fires: FireLimiter) -> dict[str, int]:
    """The ``limits`` object of ``GET /api/v1`` (OpenWhisk units: ms and bytes)."""
    lim: Limits = settings.limits
    return {
        "actions_per_minute": settings.namespace_per_minute,
        "triggers_per_minute": fires.per_minute,  # what the fire limiter applies
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
    def __init__(self, ctx: ApiContext, fires: FireLimiter) -> None:
        self.ctx = ctx
        self.fires = fires

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
        # Read now, not from the authenticated namespace (cached): an operator's change
        # shows at once.
        stored = await run_in_threadpool(self.ctx.platform.store.get_namespace, namespace.name)
        if stored is None:
            raise NotFound(f"namespace {namespace.name!r} does not exist")
        # What this reports is what admission applies from now on.
        self.ctx.platform.invoker.learn_limits(namespace.name, stored.limits)
        doc: dict[str, object] = {
            "concurrentInvocations": settings.namespace_concurrent,
            "invocationsPerMinute": settings.namespace_per_minute,
            "firesPerMinute": self.fires.per_minute,
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
        for key, value in stored.limits.items():
            if key in OVERRIDES and isinstance(value, int) and value > 0:
                doc[OVERRIDES[key]] = value
        return JSONResponse(doc)
