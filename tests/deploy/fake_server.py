"""A tiny in-memory OpenWhisk server behind ``MockTransport`` for plan/apply tests.

It keeps what is PUT, echoes it back like Wisp does (plus the server-owned
``exec`` annotation and default limits), bumps ``version`` only on a real change,
and logs every request so tests can assert what was (not) sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from wisp.cli.client import WispClient
from wisp.cli.transport import MockTransport, Request, Response

PREFIX = "/api/v1/namespaces/_/"
RUNTIMES = {"python": [{"kind": "python:3.11", "default": True}]}
DEFAULT_LIMITS = {"timeout": 3000, "memory": 256, "logs": 1024}


class FakeServer:
    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, Any]] = {}  # "pkg/fn" or "fn"
        self.requests: list[tuple[str, str]] = []
        self.fail_puts: set[str] = set()  # paths whose PUT answers 400
        self.routes: dict[tuple[str, str, str], dict[str, Any]] = {}

    def client(self) -> WispClient:
        return WispClient("http://wisp.test", "u:k", transport=MockTransport(self.handle))

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in ("PUT", "DELETE")]

    def handle(self, request: Request) -> Response:
        path = request.path
        self.requests.append((request.method, path))
        if path == "/api/v1":
            return Response.of(200, json={"runtimes": RUNTIMES})
        if path == "/api/v1/namespaces":
            return Response.of(200, json=["guest"])
        rest = path.removeprefix(PREFIX)
        if rest == "routes":
            return self.route_call(request)
        collection, _, name = rest.partition("/")
        store = self.packages if collection == "packages" else self.actions
        if not name:
            return self.list(collection, request)
        if request.method == "GET":
            if name not in store:
                return Response.of(404, json={"error": "The requested resource does not exist."})
            return Response.of(200, json=self.shape(collection, name, store[name]))
        if request.method == "DELETE":
            if store.pop(name, None) is None:
                return Response.of(404, json={"error": "not found"})
            return Response.of(200, json={})
        assert request.method == "PUT" and request.params.get("overwrite") == "true"
        if rest in self.fail_puts:
            return Response.of(400, json={"error": "limits.memory out of range", "code": "x"})
        body = json.loads(request.content)
        old = store.get(name)
        version = 1 if old is None else old["_version"] + (old["body"] != body)
        store[name] = {"body": body, "_version": version}
        return Response.of(200, json=self.shape(collection, name, store[name]))

    def shape(self, collection: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = copy.deepcopy(entry["body"])
        package, _, short = name.rpartition("/")
        doc.update(name=short, namespace="guest" + (f"/{package}" if package else ""))
        doc["version"] = f"0.0.{entry['_version']}"
        if collection == "actions":
            doc["annotations"] = [*doc.get("annotations", []), {"key": "exec", "value": "k"}]
            doc["limits"] = {**DEFAULT_LIMITS, **doc.get("limits", {})}
        return doc

    def list(self, collection: str, request: Request) -> Response:
        store = self.packages if collection == "packages" else self.actions
        limit = int(request.params.get("limit", 30))
        skip = int(request.params.get("skip", 0))
        names = sorted(store)[skip : skip + limit]
        return Response.of(200, json=[self.shape(collection, n, store[n]) for n in names])

    def route_call(self, request: Request) -> Response:
        """Wisp's routes API in miniature: a route is its body, changed if the body is."""
        query = request.params
        if request.method == "GET":
            return Response.of(200, json=list(self.routes.values()))
        if request.method == "DELETE":
            key = (query["basePath"], query["path"], query["method"])
            return Response.of(200, json={"deleted": int(bool(self.routes.pop(key, None)))})
        body = json.loads(request.content)
        if body.get("policy", {}).get("type") == "bogus":
            return Response.of(400, json={"error": "policy.type must be one of none, basic"})
        function = body["function"]
        if function not in self.actions:
            return Response.of(404, json={"error": f"function {function} does not exist"})
        key = (body["basePath"], body["path"], body["method"])
        old = self.routes.get(key)
        changes = [] if old == body else ["new route"] if old is None else ["policy changed"]
        if query.get("dryRun") == "true":
            return Response.of(200, json={"exists": old is not None, "changes": changes})
        assert query.get("overwrite") == "true"
        self.routes[key] = body
        answer = dict(body)
        if old is None and body.get("policy", {}).get("type") == "api-key":
            answer["apiKeys"] = ["generated-key-0123456789"]
        return Response.of(200, json=answer)
