"""The REST API described as OpenAPI 3.1 (``/api/v1/openapi.json``) and ``/docs``.

Written as a table rather than generated from the handlers: the handlers are plain
Starlette functions with no schema layer on the hot path. ``tests/observability/
test_openapi.py`` checks that every documented path is routed and every routed
API path is documented, so the two cannot drift apart silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from wisp.api.context import route

Json = dict[str, Any]
NS = "/api/v1/namespaces/{ns}"
DOCS_PAGE = Path(__file__).parent / "docs.html"
DOCS_SCRIPT = Path(__file__).parent / "docs.js"


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json, description: str = "OK") -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _json(_ref("Error"), "Error envelope")
ANY_OBJECT: Json = {"type": "object", "additionalProperties": True}
PARAMS: dict[str, Json] = {
    "ns": {
        "name": "ns",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "Namespace; `_` is the caller's own.",
    },
    "pkg": {"name": "pkg", "in": "path", "required": True, "schema": {"type": "string"}},
    "fn": {"name": "fn", "in": "path", "required": True, "schema": {"type": "string"}},
    "id": {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "Activation id (32 hex characters).",
    },
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "skip": {"name": "skip", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "name": {
        "name": "name",
        "in": "query",
        "schema": {"type": "string"},
        "description": "An action path (`pkg/fn`), or `pkg/` for a whole package.",
    },
    "since": {"name": "since", "in": "query", "schema": {"type": "integer"}},
    "upto": {"name": "upto", "in": "query", "schema": {"type": "integer"}},
    "docs": {"name": "docs", "in": "query", "schema": {"type": "boolean"}},
    "overwrite": {"name": "overwrite", "in": "query", "schema": {"type": "boolean"}},
    "blocking": {"name": "blocking", "in": "query", "schema": {"type": "boolean"}},
    "result": {"name": "result", "in": "query", "schema": {"type": "boolean"}},
    "timeout": {"name": "timeout", "in": "query", "schema": {"type": "integer"}},
    "logs": {
        "name": "logs",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "Also send `log` events (default true).",
    },
}

# (method, path, tag, summary, parameter names, request body, 2xx responses)
OPERATIONS: list[tuple[str, str, str, str, list[str], Json | None, dict[str, Json]]] = [
    ("get", "/api/v1", "platform", "Runtimes and limits (no auth)", [], None,
     {"200": _json(ANY_OBJECT)}),
    ("get", "/api/v1/namespaces", "namespaces", "The caller's namespace", [], None,
     {"200": _json({"type": "array", "items": ANY_OBJECT})}),
    ("get", NS + "/packages", "packages", "List packages", ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("Package")})}),
    ("get", NS + "/packages/{pkg}", "packages", "Get a package", ["ns", "pkg"], None,
     {"200": _json(_ref("Package"))}),
    ("put", NS + "/packages/{pkg}", "packages", "Create or update a package",
     ["ns", "pkg", "overwrite"], _ref("Package"), {"200": _json(_ref("Package"))}),
    ("delete", NS + "/packages/{pkg}", "packages", "Delete an empty package", ["ns", "pkg"],
     None, {"200": _json(_ref("Package"))}),
    ("get", NS + "/actions", "actions", "List functions", ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("Action")})}),
    ("get", NS + "/actions/{fn}", "actions", "Get a function", ["ns", "fn"], None,
     {"200": _json(_ref("Action"))}),
    ("put", NS + "/actions/{fn}", "actions", "Create or update a function",
     ["ns", "fn", "overwrite"], _ref("Action"), {"200": _json(_ref("Action"))}),
    ("delete", NS + "/actions/{fn}", "actions", "Delete a function", ["ns", "fn"], None,
     {"200": _json(_ref("Action"))}),
    ("post", NS + "/actions/{fn}", "invoke", "Invoke a function",
     ["ns", "fn", "blocking", "result", "timeout"], ANY_OBJECT,
     {"200": _json(_ref("Activation"), "Finished (blocking)"),
      "202": _json({"type": "object", "properties": {"activationId": {"type": "string"}}},
                   "Accepted: still running, or not blocking"),
      "502": _json(_ref("Activation"), "The function failed")}),
    ("get", NS + "/actions/{pkg}/{fn}", "actions", "Get a function in a package",
     ["ns", "pkg", "fn"], None, {"200": _json(_ref("Action"))}),
    ("put", NS + "/actions/{pkg}/{fn}", "actions", "Create or update a function in a package",
     ["ns", "pkg", "fn", "overwrite"], _ref("Action"), {"200": _json(_ref("Action"))}),
    ("delete", NS + "/actions/{pkg}/{fn}", "actions", "Delete a function in a package",
     ["ns", "pkg", "fn"], None, {"200": _json(_ref("Action"))}),
    ("post", NS + "/actions/{pkg}/{fn}", "invoke", "Invoke a function in a package",
     ["ns", "pkg", "fn", "blocking", "result", "timeout"], ANY_OBJECT,
     {"200": _json(_ref("Activation"), "Finished (blocking)"),
      "202": _json(ANY_OBJECT, "Accepted"), "502": _json(_ref("Activation"), "Failed")}),
    ("get", NS + "/activations", "activations", "List activations, newest first",
     ["ns", "name", "since", "upto", "limit", "skip", "docs"], None,
     {"200": _json({"type": "array", "items": _ref("Activation")})}),
    ("get", NS + "/activations/stream", "activations",
     "Live stream of finished activations and their log lines (Server-Sent Events)",
     ["ns", "name", "logs"], None,
     {"200": {"description": "`activation` and `log` events",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}}),
    ("get", NS + "/activations/{id}", "activations", "Get an activation record", ["ns", "id"],
     None, {"200": _json(_ref("Activation"))}),
    ("get", NS + "/activations/{id}/result", "activations", "An activation's result",
     ["ns", "id"], None, {"200": _json(ANY_OBJECT)}),
    ("get", NS + "/activations/{id}/logs", "activations", "An activation's log lines",
     ["ns", "id"], None, {"200": _json({"type": "object", "properties": {
         "logs": {"type": "array", "items": {"type": "string"}}}})}),
    ("get", "/healthz", "platform", "Liveness (no auth)", [], None, {"200": _json(ANY_OBJECT)}),
    ("get", "/metrics", "platform", "Prometheus metrics (no auth)", [], None,
     {"200": {"description": "Prometheus text format",
              "content": {"text/plain": {"schema": {"type": "string"}}}}}),
]  # fmt: skip

SCHEMAS: Json = {
    "Error": {"type": "object", "required": ["error", "code"], "properties": {
        "error": {"type": "string"}, "code": {"type": "string"}}},
    "KeyValue": {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string"}, "value": {}, "init": {"type": "boolean"}}},
    "Package": {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "parameters": {"type": "array", "items": _ref("KeyValue")},
        "annotations": {"type": "array", "items": _ref("KeyValue")},
        "publish": {"type": "boolean"}, "version": {"type": "string"}}},
    "Action": {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "exec": {"type": "object", "properties": {
            "kind": {"type": "string"}, "code": {"type": "string"},
            "binary": {"type": "boolean"}, "main": {"type": "string"}}},
        "limits": {"type": "object", "properties": {
            "timeout": {"type": "integer", "description": "ms"},
            "memory": {"type": "integer", "description": "MB"},
            "logs": {"type": "integer", "description": "KB"}}},
        "parameters": {"type": "array", "items": _ref("KeyValue")},
        "annotations": {"type": "array", "items": _ref("KeyValue")},
        "publish": {"type": "boolean"}, "version": {"type": "string"}}},
    "Activation": {"type": "object", "properties": {
        "activationId": {"type": "string"}, "namespace": {"type": "string"},
        "name": {"type": "string"}, "version": {"type": "string"},
        "start": {"type": "integer"}, "end": {"type": "integer"},
        "duration": {"type": "integer"}, "statusCode": {"type": "integer"},
        "response": {"type": "object", "properties": {
            "status": {"type": "string"}, "statusCode": {"type": "integer"},
            "success": {"type": "boolean"}, "result": {}}},
        "logs": {"type": "array", "items": {"type": "string"}},
        "annotations": {"type": "array", "items": _ref("KeyValue"), "description":
                        "path, kind, limits, waitTime, initTime (cold starts), timeout, "
                        "cpuTime (ms), peakMemory (bytes), oom"}}},
}  # fmt: skip

PUBLIC = {"/api/v1", "/healthz", "/metrics"}


def document(version: str) -> Json:
    paths: Json = {}
    for method, path, tag, summary, params, body, responses in OPERATIONS:
        operation: Json = {
            "tags": [tag],
            "summary": summary,
            "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", ""),
            "parameters": [PARAMS[p] for p in params],
            "responses": {**responses, "default": ERROR},
        }
        if body is not None:
            operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
        if path in PUBLIC:
            operation["security"] = []
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wisp",
            "version": version,
            "description": "Self-hosted serverless functions, speaking the Apache OpenWhisk "
            "and DigitalOcean Functions REST API. Authenticate with a namespace key "
            "`UUID:KEY` as HTTP Basic credentials.",
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": SCHEMAS,
        },
        "paths": paths,
    }


def openapi_routes() -> list[BaseRoute]:
    from wisp import __version__

    doc = document(__version__)
    page = DOCS_PAGE.read_text()
    script = DOCS_SCRIPT.read_text()

    async def spec(request: Request) -> Response:
        return JSONResponse(doc)

    async def docs(request: Request) -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'"})

    async def docs_script(request: Request) -> Response:
        return Response(script, media_type="text/javascript")

    return [
        route("/api/v1/openapi.json", GET=spec),
        route("/docs", GET=docs),
        route("/docs/docs.js", GET=docs_script),
    ]
