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
    "fn": {"name": "fn", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "The function's name; to invoke, optionally with a qualifier: "
           "`fn:0.0.2` (a version) or `fn:live` (an alias)."},
    "alias": {"name": "alias", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "Letters, digits, `_`, `-`; starts with a letter or `_`."},
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
    "trigger": {"name": "trigger", "in": "path", "required": True, "schema": {"type": "string"}},
    "rule": {"name": "rule", "in": "path", "required": True, "schema": {"type": "string"}},
    "dryRun": {
        "name": "dryRun",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "Only say what the put would change.",
    },
    "basePath": {"name": "basePath", "in": "query", "required": True, "schema": {"type": "string"}},
    "routePath": {"name": "path", "in": "query", "schema": {"type": "string"}},
    "routeMethod": {"name": "method", "in": "query", "schema": {"type": "string"}},
    "webPath": {
        "name": "path",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "`pkg/fn` (`default/fn` outside a package), optionally with an extension "
        "(`.json`, `.http`, `.text`, `.html`, `.svg`) and more path after it.",
    },
    "gwPath": {
        "name": "path",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "A route's base path and path, e.g. `shop/items/42`.",
    },
    "basepath": {"name": "basepath", "in": "query", "schema": {"type": "string"}},
    "relpath": {"name": "relpath", "in": "query", "schema": {"type": "string"}},
    "operation": {"name": "operation", "in": "query", "schema": {"type": "string"}},
    "traceparent": {
        "name": "traceparent",
        "in": "header",
        "schema": {"type": "string"},
        "description": "W3C trace context: the activation's span is its child, and the "
        "function sees its own span as `TRACEPARENT` (a malformed one is ignored).",
    },
    "tracestate": {"name": "tracestate", "in": "header", "schema": {"type": "string"}},
    "X-Request-Id": {
        "name": "X-Request-Id",
        "in": "header",
        "schema": {"type": "string", "maxLength": 128},
        "description": "Kept when it is at most 128 of `A-Za-z0-9._:@/+=-`, else replaced; "
        "echoed in the response, in the server's log lines and the activation's `requestId`.",
    },
}
PARAMS["Idempotency-Key"] = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Non-blocking invokes only: within 24 h the same key with the same body "
    "answers 202 with the same activation id and runs nothing; another body is a 422.",
}
PARAMS["letter"] = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The dead activation's id.",
}
PARAMS["secret"] = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$"},
    "description": "The secret's name; functions reference it as `{\"$secret\": \"name\"}`.",
}
SECRET_INFO: Json = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "size": {"type": "integer", "description": "bytes of the value"},
        "updated": {"type": "integer", "description": "epoch ms"},
    },
}
TRACE = ["traceparent", "tracestate", "X-Request-Id"]
INVOKED = {
    "200": _json(_ref("Activation"), "Finished (blocking)"),
    "202": _json(
        {"type": "object", "properties": {"activationId": {"type": "string"}}},
        "Accepted: still running, or not blocking",
    ),
    "502": _json(_ref("Activation"), "The function failed"),
}
WEB_ANSWER = {
    "200": {"description": "What the function returned, shaped by the extension "
            "(`.http`: its statusCode, headers and body)"},
    "202": _json(ANY_OBJECT, "Still running after the blocking wait: the activation id"),
}  # fmt: skip
ROUTE_KEY = ["ns", "basePath", "routePath", "routeMethod"]

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
    ("get", NS + "/secrets", "secrets", "List secrets: names, sizes, update times (never values)",
     ["ns"], None, {"200": _json({"type": "array", "items": SECRET_INFO})}),
    ("put", NS + "/secrets/{name}", "secrets",
     "Set a secret (write-only; encrypted at rest)", ["ns", "secret"],
     {"type": "object", "required": ["value"], "properties": {"value": {"type": "string"}}},
     {"200": _json(SECRET_INFO)}),
    ("delete", NS + "/secrets/{name}", "secrets", "Delete a secret", ["ns", "secret"], None,
     {"200": _json(ANY_OBJECT)}),
    ("get", NS + "/actions", "actions", "List functions", ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("Action")})}),
    ("get", NS + "/actions/{fn}", "actions", "Get a function", ["ns", "fn"], None,
     {"200": _json(_ref("Action"))}),
    ("put", NS + "/actions/{fn}", "actions", "Create or update a function",
     ["ns", "fn", "overwrite"], _ref("Action"), {"200": _json(_ref("Action"))}),
    ("delete", NS + "/actions/{fn}", "actions", "Delete a function", ["ns", "fn"], None,
     {"200": _json(_ref("Action"))}),
    ("post", NS + "/actions/{fn}", "invoke", "Invoke a function",
     ["ns", "fn", "blocking", "result", "timeout", "Idempotency-Key", *TRACE], ANY_OBJECT,
     INVOKED),
    ("get", NS + "/actions/{pkg}/{fn}", "actions", "Get a function in a package",
     ["ns", "pkg", "fn"], None, {"200": _json(_ref("Action"))}),
    ("put", NS + "/actions/{pkg}/{fn}", "actions", "Create or update a function in a package",
     ["ns", "pkg", "fn", "overwrite"], _ref("Action"), {"200": _json(_ref("Action"))}),
    ("delete", NS + "/actions/{pkg}/{fn}", "actions", "Delete a function in a package",
     ["ns", "pkg", "fn"], None, {"200": _json(_ref("Action"))}),
    ("post", NS + "/actions/{pkg}/{fn}", "invoke", "Invoke a function in a package",
     ["ns", "pkg", "fn", "blocking", "result", "timeout", "Idempotency-Key", *TRACE],
     ANY_OBJECT, INVOKED),
    *[(method, path + "/invokeConfig", "invoke", summary, params, body,
       {"200": _json(_ref("InvokeConfig"))})
      for path, params in ((NS + "/actions/{fn}", ["ns", "fn"]),
                           (NS + "/actions/{pkg}/{fn}", ["ns", "pkg", "fn"]))
      for method, summary, body in (
          ("get", "A function's retry policy for asynchronous invocations", None),
          ("put", "Set a function's retry policy (absent fields take the defaults)",
           _ref("InvokeConfig")))],
    *[op for path, params in ((NS + "/actions/{fn}", ["ns", "fn"]),
                              (NS + "/actions/{pkg}/{fn}", ["ns", "pkg", "fn"]))
      for op in (
          ("get", path + "/versions", "actions",
           "A function's kept versions, newest first (the last 20, and any an alias "
           "points at); no code, secret-looking parameter values hidden",
           params, None, {"200": _json({"type": "array", "items": _ref("Version")})}),
          ("post", path + "/rollback", "actions",
           "Run an earlier version's code and settings again, at once, as a new version "
           "annotated `rollback: {from, to}` (default: the version before the current one)",
           params, {"type": "object", "properties": {"version": {
               "type": "string", "example": "0.0.2"}}},
           {"200": _json({"allOf": [_ref("Version"), {"type": "object", "properties": {
               "changed": {"type": "boolean", "description": "false: that code and those "
                           "settings already ran; no version was made"},
               "warm": {"type": "boolean", "description": "an instance of the new version "
                        "is initialised and idle"}}}]},
                         "The version now running")}),
          ("get", path + "/aliases", "actions", "A function's aliases, by name", params, None,
           {"200": _json({"type": "array", "items": _ref("Alias")})}),
          ("get", path + "/aliases/{alias}", "actions", "Get an alias",
           [*params, "alias"], None, {"200": _json(_ref("Alias"))}),
          ("put", path + "/aliases/{alias}", "actions",
           "Point an alias at a kept version (created or repointed); invoke it as "
           "`.../actions/PKG/FN:ALIAS`", [*params, "alias"],
           {"type": "object", "required": ["version"], "properties": {
               "version": {"type": "string", "example": "0.0.2"}}},
           {"200": _json(_ref("Alias"))}),
          ("delete", path + "/aliases/{alias}", "actions", "Delete an alias",
           [*params, "alias"], None, {"200": _json(_ref("Alias"))}))],
    ("get", NS + "/deadletters", "invoke",
     "Dead letters: asynchronous activations out of attempts or age, newest first",
     ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("DeadLetter")})}),
    ("delete", NS + "/deadletters", "invoke", "Purge the namespace's dead letters", ["ns"],
     None, {"200": _json({"type": "object", "properties": {"purged": {"type": "integer"}}})}),
    ("get", NS + "/deadletters/{id}", "invoke", "Get a dead letter", ["ns", "letter"], None,
     {"200": _json(_ref("DeadLetter"))}),
    ("post", NS + "/deadletters/{id}/redrive", "invoke",
     "Invoke the function again with the dead letter's input (the letter is removed)",
     ["ns", "letter"], None,
     {"202": _json({"type": "object", "properties": {
         "activationId": {"type": "string"}, "redriven": {"type": "string"}}},
         "Accepted: the new activation's id")}),
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
    ("get", NS + "/limits", "namespaces",
     "The namespace's limits (the platform's, with an operator's overrides)", ["ns"], None,
     {"200": _json(_ref("Limits"))}),
    ("get", NS + "/triggers", "triggers", "List triggers", ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("Trigger")})}),
    ("get", NS + "/triggers/{trigger}", "triggers", "Get a trigger, with its rules",
     ["ns", "trigger"], None, {"200": _json(_ref("Trigger"))}),
    ("put", NS + "/triggers/{trigger}", "triggers",
     "Create or update a trigger (a `schedule` makes it a cron trigger)",
     ["ns", "trigger", "overwrite"], _ref("Trigger"), {"200": _json(_ref("Trigger"))}),
    ("delete", NS + "/triggers/{trigger}", "triggers", "Delete a trigger", ["ns", "trigger"],
     None, {"200": _json(_ref("Trigger"))}),
    ("post", NS + "/triggers/{trigger}", "triggers",
     "Fire a trigger: its enabled rules invoke their functions with this event",
     ["ns", "trigger", *TRACE], ANY_OBJECT,
     {"202": _json({"type": "object", "properties": {"activationId": {"type": "string"}}},
                   "Fired: the trigger's activation id"),
      "204": {"description": "No enabled rule: nothing was invoked"}}),
    ("get", NS + "/rules", "rules", "List rules", ["ns", "limit", "skip"], None,
     {"200": _json({"type": "array", "items": _ref("Rule")})}),
    ("get", NS + "/rules/{rule}", "rules", "Get a rule", ["ns", "rule"], None,
     {"200": _json(_ref("Rule"))}),
    ("put", NS + "/rules/{rule}", "rules", "Create or update a rule (trigger → function)",
     ["ns", "rule", "overwrite"],
     {"type": "object", "required": ["trigger", "action"], "properties": {
         "trigger": {"type": "string"}, "action": {"type": "string"},
         "status": {"enum": ["active", "inactive"]}}},
     {"200": _json(_ref("Rule"))}),
    ("post", NS + "/rules/{rule}", "rules", "Enable or disable a rule", ["ns", "rule"],
     {"type": "object", "required": ["status"], "properties": {
         "status": {"enum": ["active", "inactive"]}}},
     {"200": _json(_ref("Rule"))}),
    ("delete", NS + "/rules/{rule}", "rules", "Delete a rule", ["ns", "rule"], None,
     {"200": _json(_ref("Rule"))}),
    ("get", NS + "/routes", "routes", "List gateway routes", ["ns"], None,
     {"200": _json({"type": "array", "items": _ref("Route")})}),
    ("put", NS + "/routes", "routes",
     "Create or update a gateway route (generated API keys are shown once)",
     ["ns", "overwrite", "dryRun"], _ref("Route"), {"200": _json(_ref("Route"))}),
    ("post", NS + "/routes", "routes", "Create or update a gateway route (as PUT)",
     ["ns", "overwrite", "dryRun"], _ref("Route"), {"200": _json(_ref("Route"))}),
    ("delete", NS + "/routes", "routes",
     "Delete the routes under a base path (narrowed by path and method)", ROUTE_KEY, None,
     {"200": _json({"type": "object", "properties": {"deleted": {"type": "integer"}}})}),
    *[(method, "/api/v1/web/{ns}/{path}", "web", f"Call a web function ({method.upper()})",
       ["ns", "webPath", *TRACE], ANY_OBJECT if method in ("post", "put", "patch") else None,
       WEB_ANSWER)
      for method in ("get", "post", "put", "patch", "delete", "options")],
    *[(method, "/gw/{ns}/{path}", "routes", f"Call a gateway route ({method.upper()})",
       ["ns", "gwPath", *TRACE], ANY_OBJECT if method in ("post", "put", "patch") else None,
       WEB_ANSWER)
      for method in ("get", "post", "put", "patch", "delete", "options")],
    # OpenWhisk's API gateway calls, as the openwhisk npm client, wsk and nim make them
    # (also under whisk-system, and with a .http extension).
    ("post", "/api/v1/web/whisk.system/apimgmt/createApi", "routes",
     "OpenWhisk apimgmt: create routes from a swagger `apidoc`", [], ANY_OBJECT,
     {"200": _json(ANY_OBJECT)}),
    ("put", "/api/v1/web/whisk.system/apimgmt/createApi", "routes",
     "OpenWhisk apimgmt: create routes (as POST)", [], ANY_OBJECT, {"200": _json(ANY_OBJECT)}),
    ("get", "/api/v1/web/whisk.system/apimgmt/getApi", "routes",
     "OpenWhisk apimgmt: the APIs (routes by base path)", ["basepath", "relpath", "operation"],
     None, {"200": _json(ANY_OBJECT)}),
    ("delete", "/api/v1/web/whisk.system/apimgmt/deleteApi", "routes",
     "OpenWhisk apimgmt: delete routes", ["basepath", "relpath", "operation"], None,
     {"200": _json(ANY_OBJECT)}),
    ("get", "/api/v1/openapi.json", "platform", "This document (no auth)", [], None,
     {"200": _json(ANY_OBJECT)}),
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
    "Alias": {"type": "object", "properties": {
        "name": {"type": "string"}, "function": {"type": "string"},
        "version": {"type": "string"}, "updated": {"type": "integer"},
        "subject": {"type": ["string", "null"]},
        "warm": {"type": "boolean", "description": "in a PUT's answer: an instance of the "
                 "version is initialised and idle, so the next call is no cold start"}}},
    "Version": {"type": "object", "properties": {
        "aliases": {"type": "array", "items": {"type": "string"},
                    "description": "the aliases that point at it"},
        "version": {"type": "string"},
        "current": {"type": "boolean", "description": "the version the function runs"},
        "created": {"type": "integer", "description": "epoch ms"},
        "subject": {"type": ["string", "null"], "description": "who made it"},
        "exec": {"type": "object", "properties": {
            "kind": {"type": "string"}, "main": {"type": "string"},
            "binary": {"type": "boolean"},
            "digest": {"type": "string", "description": "sha256 of kind, main and code"},
            "build": {"type": "string"}}},
        "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
        "parameters": {"type": "array", "items": _ref("KeyValue"), "description":
                       "values of environment entries and secret-looking keys are hidden"},
        "annotations": {"type": "array", "items": _ref("KeyValue")},
        "publish": {"type": "boolean"}}},
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
                        "cpuTime (ms), peakMemory (bytes), oom, requestId, traceId, "
                        "spanId, parentSpanId, attempt, attempts (earlier runs of a "
                        "retried activation), reason (a dead one's), recovered"}}},
    "InvokeConfig": {"type": "object", "properties": {
        "maximumRetryAttempts": {"type": "integer", "minimum": 0, "maximum": 5, "default": 0},
        "maximumEventAgeSeconds": {"type": "integer", "minimum": 60, "maximum": 21600,
                                   "default": 21600},
        "backoff": {"type": "object", "description": "delay before retry n: "
                    "min(max, initial * factor^(n-1)) * (1 ± jitter); durations are seconds "
                    "or strings such as 500ms, 2s, 1m", "properties": {
            "initial": {"type": ["number", "string"], "default": 1},
            "factor": {"type": "number", "minimum": 1, "maximum": 10, "default": 2},
            "max": {"type": ["number", "string"], "default": 60},
            "jitter": {"type": "number", "minimum": 0, "maximum": 0.5, "default": 0.1}}},
        "retryOn": {"type": "array", "items": {"enum": ["internal", "developer", "application"]},
                    "description": "outcomes retried; internal always is"},
        "onFailure": {"type": ["object", "null"], "description":
                      '{"function": "PKG/FN"} or {"trigger": "NAME"}: receives '
                      "{condition, request, response} of each dead letter"}}},
    "DeadLetter": {"type": "object", "properties": {
        "activationId": {"type": "string"}, "namespace": {"type": "string"},
        "name": {"type": "string"}, "version": {"type": "string"},
        "reason": {"enum": ["RetriesExhausted", "EventAgeExceeded"]},
        "created": {"type": "integer"}, "attempts": {"type": "integer"},
        "request": ANY_OBJECT, "response": ANY_OBJECT}},
    "Limits": {"type": "object", "additionalProperties": {"type": "integer"}, "description":
               "concurrentInvocations, invocationsPerMinute, firesPerMinute, min/maxActionMemory "
               "(bytes), min/maxActionTimeout (ms), min/maxActionLogs (bytes), "
               "maxParameterSize, maxResultSize, maxCodeSize (bytes)"},
    "Trigger": {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "parameters": {"type": "array", "items": _ref("KeyValue")},
        "annotations": {"type": "array", "items": _ref("KeyValue")},
        "enabled": {"type": "boolean"},
        "schedule": {"type": "object", "properties": {
            "cron": {"type": "string"}, "timezone": {"type": "string"},
            "concurrency": {"type": "string"}, "missed": {"type": "string"}}},
        "last_run_at": {"type": ["string", "null"]}, "next_run_at": {"type": ["string", "null"]},
        "rules": {"type": "object", "additionalProperties": ANY_OBJECT},
        "publish": {"type": "boolean"}, "version": {"type": "string"}}},
    "Rule": {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "status": {"enum": ["active", "inactive"]},
        "trigger": {"type": "object", "properties": {
            "name": {"type": "string"}, "path": {"type": "string"}}},
        "action": {"type": "object", "properties": {
            "name": {"type": "string"}, "path": {"type": "string"}}},
        "annotations": {"type": "array", "items": _ref("KeyValue")},
        "publish": {"type": "boolean"}, "version": {"type": "string"}}},
    "Route": {"type": "object", "required": ["basePath", "path", "method", "function"],
              "properties": {
        "basePath": {"type": "string"}, "path": {"type": "string"},
        "method": {"type": "string"}, "function": {"type": "string"},
        "host": {"type": ["string", "null"]},
        "responseType": {"enum": ["http", "json", "text", "html", "svg"]},
        "policy": {"type": "object", "description":
                   "type: none | basic | api-key | jwt, with its settings"},
        "ip": {"type": ["object", "null"]}, "rateLimit": {"type": ["object", "null"]},
        "cors": {"type": ["object", "null"]}, "maxBody": {"type": ["integer", "null"]},
        "apiKeys": {"type": "array", "items": ANY_OBJECT,
                    "description": "generated keys, in the put's answer only"}}},
}  # fmt: skip

PUBLIC = {"/api/v1", "/healthz", "/metrics", "/api/v1/openapi.json"}
PUBLIC_PREFIXES = ("/api/v1/web/{ns}", "/gw/")  # the function or route decides


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
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
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
