"""The API's own CPU per request on the invoke (bare and by alias), web-function and
gateway paths.

In process, no HTTP server, no sandbox: the ASGI app is called directly with an
invoker that finishes at once, so what is timed is what the app does per request
(dispatch, auth or policy, reading the body, the arguments, shaping the response).
Everything the paths share (uvicorn, the sandbox exchange, the record) is left out,
which makes the difference between paths visible on a machine too noisy for wrk to
show it. ``--baseline-src DIR`` runs the same measurement on another checkout in
alternating child processes (an A/B run).

    python bench/web_overhead_bench.py [--requests 20000] [--rounds 3] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

API_KEY = "bench-key-" + "x" * 24
BODY = b'{"name":"Ada"}'
BLOCKS = 20  # turns each path takes
PATHS = ("invoke_api", "invoke_alias", "web_function", "route_none", "route_api_key")


async def measure(requests: int) -> dict[str, float]:
    from starlette.types import Message

    from wisp.api import create_app
    from wisp.config import Settings
    from wisp.ids import activation_id
    from wisp.invoker.base import Invocation, Invoker, Target
    from wisp.models import SUCCESS, Activation
    from wisp.namespaces import create_namespace
    from wisp.platform import Platform
    from wisp.runtimes import RuntimeTable, discover
    from wisp.store.memory import MemoryStore
    from wisp.store.writer import ActivationWriter

    class Instant(Invoker):
        """Finishes every invocation at once with a fixed greeting."""

        def submit(self, target: Target, params: dict[str, Any], **_: Any) -> Invocation:
            now = time.time_ns() // 1_000_000
            action = target.action
            record = Activation(
                activation_id(), action.namespace, action.path, action.version, "s",
                now, now, SUCCESS, {"greeting": "Hello Ada"},
            )  # fmt: skip
            done: asyncio.Future[Activation] = asyncio.get_running_loop().create_future()
            done.set_result(record)
            return Invocation(record.activation_id, done)

    store = MemoryStore()
    writer = ActivationWriter(store)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="wisp-overhead-")))
    runtimes = RuntimeTable(discover())
    platform = Platform(settings, store, writer, runtimes, Instant())
    app = create_app(platform)
    _, auth = create_namespace(store, "guest")
    basic = b"Basic " + base64.b64encode(auth.encode())

    async def call(
        method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = BODY
    ) -> int:
        path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 3233),
        }
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def put(path: str, doc: dict[str, Any]) -> None:
        status = await call("PUT", path, [(b"authorization", basic)], json.dumps(doc).encode())
        assert status == 200, (path, status)

    await platform.start()
    try:
        action = {
            "exec": {"kind": "python:default", "code": "def main(args):\n    return args\n"},
            "annotations": [{"key": "web-export", "value": True}],
        }
        await put("/api/v1/namespaces/_/actions/bench", action)
        await put("/api/v1/namespaces/_/actions/bench/aliases/live", {"version": "0.0.1"})
        for path, policy in (
            ("/none", {"type": "none"}),
            ("/key", {"type": "api-key", "keys": [API_KEY]}),
        ):
            route: dict[str, Any] = {
                "basePath": "/b", "path": path, "method": "POST", "function": "bench"
            }  # fmt: skip
            route.update(responseType="json", policy=policy)
            await put("/api/v1/namespaces/_/routes", route)
        targets = {
            "invoke_api": (
                "/api/v1/namespaces/_/actions/bench?blocking=true&result=true",
                [(b"authorization", basic)],
            ),
            "invoke_alias": (  # PKG/FN:ALIAS: what resolving the qualifier adds
                "/api/v1/namespaces/_/actions/bench:live?blocking=true&result=true",
                [(b"authorization", basic)],
            ),
            "web_function": ("/api/v1/web/guest/default/bench.json", []),
            "route_none": ("/gw/guest/b/none", []),
            "route_api_key": ("/gw/guest/b/key", [(b"x-api-key", API_KEY.encode())]),
        }
        for path, headers in targets.values():  # warm every cache
            for _ in range(200):
                assert await call("POST", path, headers) == 200, path
        # Paths take turns in blocks, so a drift of the machine's load (or of the
        # interpreter's warm-up) does not land on whichever path is measured first.
        spent = dict.fromkeys(targets, 0.0)
        block = max(1, requests // BLOCKS)
        for _ in range(BLOCKS):
            for name, (path, headers) in targets.items():
                started = time.process_time()
                for _ in range(block):
                    await call("POST", path, headers)
                spent[name] += time.process_time() - started
        return {name: round(cpu / (block * BLOCKS) * 1e6, 2) for name, cpu in spent.items()}
    finally:
        await platform.stop()


def child(src: str | None, requests: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", "--requests", str(requests)]
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="also measure this src/ folder, alternating")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.requests))))
        return
    labels = {"server": None, **({"baseline": args.baseline_src} if args.baseline_src else {})}
    samples: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    for _ in range(args.rounds):
        for label, src in labels.items():
            samples[label].append(child(src, args.requests))
    results: dict[str, Any] = {
        "requests": args.requests,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
    }
    for label in labels:
        per_path = {p: statistics.median(s[p] for s in samples[label]) for p in PATHS}
        results[label] = {
            p: {"cpu_us": v, "extra_us_vs_invoke": round(v - per_path["invoke_api"], 2)}
            for p, v in per_path.items()
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
