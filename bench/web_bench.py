"""Web functions and gateway routes against the plain invoke API, in the same run.

Starts a real ``wisp server`` (as ``invoke_bench.py`` does), deploys one warm Python
function, exposes it as a web function and as gateway routes with the ``none`` and
``api-key`` policies, then drives each path with ``wrk`` (POST, JSON body, keep-alive)
in interleaved rounds so that drift in the machine's load hits every path alike.
Prints JSON: requests/s and latency per path, and each path's throughput relative
to the invoke API (the policy layer's cost is ``1 - ratio``).

    python bench/web_bench.py [--duration 8] [--connections 32] [--rounds 2]
        [--server-src DIR] [--baseline-src DIR]

With ``--baseline-src`` a second server runs from another checkout (``git worktree
add /tmp/base HEAD`` before a change) and both are driven in the same rounds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import invoke_bench

CODE = "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'stranger')}\n"
API_KEY = "bench-key-" + "x" * 24
PATHS = ("invoke_api", "web_function", "route_none", "route_api_key")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (all its threads, not the sandboxes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, headers: dict[str, str], connections: int, seconds: int, pid: int
) -> dict[str, float]:
    lines = ['wrk.method = "POST"', 'wrk.body = \'{"name":"Ada"}\'']
    headers = {"Content-Type": "application/json", **headers}
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
    cpu = cpu_seconds(pid)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return -1.0
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    count = int(total.group(1)) if total else 0
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        # The server's CPU per request: what the route and policy layers add, much
        # less disturbed by other load on the machine than requests/s.
        "cpu_us": round(cpu / count * 1e6, 1) if count else -1.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def setup(base: str, auth: str) -> None:
    user, _, key = auth.partition(":")
    with httpx.Client(base_url=base, auth=(user, key), timeout=30) as client:
        action = {
            "exec": {"kind": "python:default", "code": CODE},
            "annotations": [{"key": "web-export", "value": True}],
        }
        client.put("/api/v1/namespaces/_/actions/bench", json=action).raise_for_status()
        for path, policy in (
            ("/none", {"type": "none"}),
            ("/key", {"type": "api-key", "keys": [API_KEY]}),
        ):
            doc = {
                "basePath": "/b",
                "path": path,
                "method": "POST",
                "function": "bench",
                "responseType": "json",
                "policy": policy,
            }
            client.put("/api/v1/namespaces/_/routes", json=doc).raise_for_status()
        # Warm: the first calls start the instance and fill the caches.
        for _ in range(20):
            client.post("/api/v1/namespaces/_/actions/bench?blocking=true&result=true", json={})
            client.post("/api/v1/web/guest/default/bench.json", json={})
            client.post("/gw/guest/b/none", json={})
            client.post("/gw/guest/b/key", json={}, headers={"X-API-Key": API_KEY})


def paths_of(base: str, auth: str) -> dict[str, tuple[str, dict[str, str]]]:
    basic = "Basic " + base64.b64encode(auth.encode()).decode()
    return {
        "invoke_api": (
            f"{base}/api/v1/namespaces/_/actions/bench?blocking=true&result=true",
            {"Authorization": basic},
        ),
        "web_function": (f"{base}/api/v1/web/guest/default/bench.json", {}),
        "route_none": (f"{base}/gw/guest/b/none", {}),
        "route_api_key": (f"{base}/gw/guest/b/key", {"X-API-Key": API_KEY}),
    }


def summary(runs: dict[str, list[dict[str, float]]]) -> dict[str, object]:
    out: dict[str, object] = {}
    invoke_rps = statistics.median(r["rps"] for r in runs["invoke_api"])
    invoke_cpu = statistics.median(r["cpu_us"] for r in runs["invoke_api"])
    for name, samples in runs.items():
        rps = statistics.median(r["rps"] for r in samples)
        out[name] = {
            "rps": round(rps, 1),
            "p50_ms": statistics.median(r["p50_ms"] for r in samples),
            "p99_ms": statistics.median(r["p99_ms"] for r in samples),
            "non_2xx": sum(int(r["non_2xx"]) for r in samples),
            "vs_invoke": round(rps / invoke_rps, 3) if invoke_rps else None,
            "cpu_us_per_request": statistics.median(r["cpu_us"] for r in samples),
            "cpu_vs_invoke": round(statistics.median(r["cpu_us"] for r in samples) / invoke_cpu, 3),
            "samples_rps": [r["rps"] for r in samples],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server-src", help="run the server from this src/ folder")
    parser.add_argument(
        "--baseline-src",
        help="also run a server from this src/ folder (e.g. a git worktree of the commit "
        "before a change) and drive both in the same interleaved rounds: an A/B run",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    servers = {"server": args.server_src}
    if args.baseline_src:
        servers["baseline"] = args.baseline_src
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    targets: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    pids: dict[str, int] = {}
    try:
        for label, src in servers.items():
            tmp = Path(tempfile.mkdtemp(prefix="wisp-web-bench-"))
            invoke_bench.SERVER_CMD[:] = invoke_bench.server_cmd(src)
            proc, port, auth = invoke_bench.start_server(tmp)
            started[label] = (proc, tmp)
            pids[label] = proc.pid
            base = f"http://127.0.0.1:{port}"
            setup(base, auth)
            targets[label] = paths_of(base, auth)
            runs[label] = {name: [] for name in targets[label]}
            # At full concurrency once, so that no measured run pays for cold starts.
            for url, headers in targets[label].values():
                wrk(url, headers, args.connections, 2, proc.pid)
        # Interleaved: drift in the machine's load hits every server and path alike.
        for _ in range(args.rounds):
            for name in PATHS:
                for label in servers:
                    url, headers = targets[label][name]
                    runs[label][name].append(
                        wrk(url, headers, args.connections, args.duration, pids[label])
                    )
    finally:
        for proc, tmp in started.values():
            proc.terminate()
            proc.wait(timeout=30)
            shutil.rmtree(tmp, ignore_errors=True)
    results: dict[str, object] = {
        "connections": args.connections,
        "seconds": args.duration,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
    }
    for label in servers:
        results[label] = summary(runs[label])
    if "baseline" in runs:
        results["server_vs_baseline_rps"] = {
            name: round(
                statistics.median(r["rps"] for r in runs["server"][name])
                / statistics.median(r["rps"] for r in runs["baseline"][name]),
                3,
            )
            for name in PATHS
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
