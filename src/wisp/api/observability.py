"""Operational endpoints of the observability work: ``/metrics``, the live stream, and
the OpenAPI document with its interactive docs."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from wisp.api.context import ApiContext, route
from wisp.api.openapi import openapi_routes
from wisp.api.stream import StreamApi
from wisp.observability import Observability


def observability_routes(ctx: ApiContext, obs: Observability) -> list[BaseRoute]:
    async def metrics(request: Request) -> Response:
        # Unauthenticated, like /healthz: an operator's endpoint for Prometheus. Labels
        # carry namespace and function names, never data; keep it off public networks.
        return Response(obs.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [
        route("/metrics", GET=metrics),
        *StreamApi(ctx, obs.events).routes(),
        *openapi_routes(),
    ]
