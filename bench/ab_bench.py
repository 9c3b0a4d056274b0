"""Sustained blocking invokes, A/B: two servers from two checkouts, measured in turns.

Both servers run at once (the idle one costs next to nothing); ``wrk`` drives them
in alternating rounds (A, B, B, A, A, B, …) so drift in the machine's load hits both
alike. Every activation is recorded, and the count of stored records is checked
at the end. Prints JSON: each side's rounds, medians, and the ratio B/A.

    git worktree add /tmp/base HEAD     # before the change
    python bench/ab_bench.py --a /tmp/base/src --b src [--rounds 6] [--duration 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from invoke_bench import (
    RawClient,
    count_records,
    invoke_path,
    put_action,
    server_cmd,
    start_server,
    warm_c1,
    wrk,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> tuple[float, float]:
    """CPU time used so far by process ``root`` (all threads) and by its live descendants."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rpartition(")")[2].split()
        parent[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    below, stack = 0.0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        below += used.get(pid, 0.0)
        stack += children.get(pid, [])
    return used.get(root, 0.0), below


@dataclass
class Side:
    proc: subprocess.Popen[bytes]
    port: int
    auth: str
    client: RawClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", required=True, help="src/ folder of the baseline")
    parser.add_argument("--b", required=True, help="src/ folder of the change")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side")
    parser.add_argument("--duration", type=int, default=6, help="seconds per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warm", type=int, default=0, help="also time N calls at concurrency 1")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wisp-ab-"))
    sides: dict[str, Side] = {}
    try:
        for name in ("a", "b"):
            proc, port, auth = start_server(tmp / name, server_cmd(getattr(args, name)))
            client = RawClient(port, auth)
            put_action(client, "sustained")
            put_action(client, "warm")
            sides[name] = Side(proc, port, auth, client)
        # Warm both: one instance per connection, every code path imported.
        for side in sides.values():
            wrk(side.port, side.auth, invoke_path("sustained"), args.connections, 2)
        rounds: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
        latency: dict[str, list[float]] = {"a": [], "b": []}
        order = ["a", "b", "b", "a"] * ((args.rounds + 1) // 2)
        for side_name in order[: 2 * args.rounds]:
            side = sides[side_name]
            server_before, sandboxes_before = cpu_seconds(side.proc.pid)
            result = wrk(
                side.port, side.auth, invoke_path("sustained"), args.connections, args.duration
            )
            server_after, sandboxes_after = cpu_seconds(side.proc.pid)
            # CPU per request is steadier than requests/s on a shared, busy machine.
            done = max(1, int(result["requests"]))
            result["server_cpu_us"] = round((server_after - server_before) / done * 1e6, 1)
            result["sandbox_cpu_us"] = round((sandboxes_after - sandboxes_before) / done * 1e6, 1)
            rounds[side_name].append(result)
            print(f"{side_name}: {json.dumps(result)}", file=sys.stderr, flush=True)
            if args.warm:
                latency[side_name].append(warm_c1(side.client, args.warm)["p50_ms"])
        time.sleep(1.5)
        summary: dict[str, object] = {}
        medians = {}
        for name in ("a", "b"):
            answered = sum(int(r["requests"]) for r in rounds[name])
            recorded = count_records(tmp / name / "data" / "wisp.db", "sustained")
            medians[name] = statistics.median(r["rps"] for r in rounds[name])
            summary[name] = {
                "src": getattr(args, name),
                "rps": [r["rps"] for r in rounds[name]],
                "median_rps": medians[name],
                "median_p50_ms": statistics.median(r["p50_ms"] for r in rounds[name]),
                "median_p99_ms": statistics.median(r["p99_ms"] for r in rounds[name]),
                "server_cpu_us": [r["server_cpu_us"] for r in rounds[name]],
                "median_server_cpu_us": statistics.median(r["server_cpu_us"] for r in rounds[name]),
                "median_sandbox_cpu_us": statistics.median(
                    r["sandbox_cpu_us"] for r in rounds[name]
                ),
                "non_2xx": sum(int(r["non_2xx"]) for r in rounds[name]),
                # wrk counts only completed requests; a few more may be recorded.
                "answered_after_warmup": answered,
                "recorded_total": recorded,
                "warm_c1_p50_ms": statistics.median(latency[name]) if latency[name] else None,
            }
        summary["ratio_b_over_a"] = round(medians["b"] / medians["a"], 3) if medians["a"] else None
        summary["connections"] = args.connections
        summary["duration_s"] = args.duration
        with open("/proc/loadavg") as loadavg:
            summary["loadavg_after"] = loadavg.read().split()[:3]
        print(json.dumps(summary, indent=2))
    finally:
        for side in sides.values():
            side.proc.terminate()
            side.proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
