"""Non-blocking invokes accepted per second, A/B: two servers from two checkouts.

What the accept journal costs: each side answers ``POST …?blocking=false`` (202 with
an activation id, journaled before the answer) as fast as ``wrk`` sends them. Rounds
alternate (A, B, B, A, …) so drift in the machine's load hits both alike; after each
round the side's backlog runs out (every accepted activation recorded) before the
next round starts, so a round never pays for the one before. Prints JSON: each
side's accept rates, medians, server CPU per accepted invoke, and the ratio B/A.

    git worktree add /tmp/before <commit before the change>
    python bench/accept_bench.py --a /tmp/before/src --b src [--rounds 6] [--duration 4]

Over HTTP, running what was accepted competes with accepting for the one event loop,
so a side that runs activations faster accepts fewer per second. ``--parked`` takes
running out of the picture: the function asks for more memory than the pool has, so
every accepted invocation is journaled and waits, and none runs. ``--inprocess N``
measures the accept path alone: ``LocalInvoker.submit`` N times in a process per
round, into a pool with no room (every invocation is accepted, journaled and parked,
none runs), with the journal on and off, for both trees. The journal's cost is
``off / on`` of one tree.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_bench import Side, cpu_seconds
from invoke_bench import (
    CODE,
    RawClient,
    count_records,
    invoke_path,
    put_action,
    server_cmd,
    start_server,
    wrk,
)

NAME = "accepted"

# One in-process round: argv = src, journal on|off, count. Prints accepts per CPU second.
INPROCESS = """
import asyncio, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.local import LocalInvoker
from wisp.invoker.quotas import Quotas
from wisp.models import Action, ActionLimits, Exec
from wisp.pool import Pool
from wisp.sandbox.base import Sandbox
from wisp.sandbox.bundles import BundleCache
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter

class NoRoom(Sandbox):
    async def spawn(self, kind, network="egress"):
        raise AssertionError("a pool without room spawns nothing")

async def main():
    journal_on, count = sys.argv[2] == "on", int(sys.argv[3])
    tmp = Path(tempfile.mkdtemp(prefix="wisp-accept-"))
    settings = Settings(data_dir=tmp, namespace_concurrent=10**9, namespace_per_minute=10**9)
    writer = ActivationWriter(MemoryStore())
    sandbox = NoRoom()
    pool = Pool(sandbox, 0, 600)  # no room: every invocation waits, none runs
    journal = AcceptJournal(tmp / "journal", writer) if journal_on else None
    invoker = LocalInvoker(settings, sandbox, pool, writer, BundleCache(tmp / "b", 1 << 20),
                           Quotas(settings, lambda ns: None), journal)
    if journal is not None:
        journal.open()
    code = "def main(args):\\n    return args\\n"
    action = Action(namespace="guest", package="default", name="fn",
                    exec=Exec(kind="python:3.11", code=code, digest="d" * 64),
                    limits=ActionLimits(timeout=3000, memory=256, logs=1024), version="0.0.1")
    target = Target(action=action)
    started = time.process_time()  # CPU, not wall: steadier on a shared, busy machine
    for i in range(count):
        invoker.submit(target, {"name": "Ada", "i": i}, subject="guest")
        if i % 64 == 63:
            await asyncio.sleep(0)  # the tasks start and park, as between requests
    await asyncio.sleep(0)
    print(round(count / (time.process_time() - started)))

asyncio.run(main())
"""


def inprocess(srcs: dict[str, str], count: int, rounds: int) -> dict[str, object]:
    """Accepts per CPU second of the accept path alone, per tree and journal on/off."""
    rates: dict[str, list[int]] = {}
    for _ in range(rounds):  # every variant once per round: drift hits all alike
        for name, src in srcs.items():
            for journal in ("on", "off"):
                out = subprocess.run(
                    [sys.executable, "-c", INPROCESS, src, journal, str(count)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                rates.setdefault(f"{name}_journal_{journal}", []).append(int(out.split()[-1]))
        print(json.dumps(rates), file=sys.stderr, flush=True)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    summary: dict[str, object] = {"rounds": rates, "median_accepts_per_cpu_s": medians}
    for name in srcs:
        on, off = medians[f"{name}_journal_on"], medians[f"{name}_journal_off"]
        summary[f"{name}_journal_cost"] = round(1 - on / off, 3)
    ratio = medians["b_journal_on"] / medians["a_journal_on"]
    summary["ratio_b_over_a_journal_on"] = round(ratio, 3)
    summary["submits_per_round"] = count
    return summary


PARKED_POOL_MB = 128  # smaller than the function's memory: nothing ever runs


def put_parked(client: RawClient) -> None:
    body = json.dumps(
        {"exec": {"kind": "python:default", "code": CODE}, "limits": {"memory": 256}}
    ).encode()
    status, text = client.request("PUT", f"/api/v1/namespaces/_/actions/{NAME}", body)
    if status != 200:
        raise SystemExit(f"could not create {NAME}: {status} {text!r}")


def wait_recorded(db: Path, expected: int, seconds: float = 300) -> float:
    """Seconds until ``expected`` records of NAME are stored (the backlog ran out)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if count_records(db, NAME) >= expected:
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", required=True, help="src/ folder of the baseline")
    parser.add_argument("--b", required=True, help="src/ folder of the change")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side")
    parser.add_argument("--duration", type=int, default=4, help="seconds per round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--inprocess", type=int, default=0, help="submits per in-process round")
    parser.add_argument("--parked", action="store_true", help="accept only: nothing runs")
    args = parser.parse_args()
    if args.inprocess:
        summary = inprocess({"a": args.a, "b": args.b}, args.inprocess, args.rounds)
        with open("/proc/loadavg") as loadavg:
            summary["loadavg_after"] = loadavg.read().split()[:3]
        print(json.dumps(summary, indent=2))
        return
    tmp = Path(tempfile.mkdtemp(prefix="wisp-accept-"))
    if args.parked:
        os.environ["WISP_POOL_MEMORY_MB"] = str(PARKED_POOL_MB)  # read by start_server
    sides: dict[str, Side] = {}
    accepted: dict[str, int] = {"a": 0, "b": 0}
    try:
        for name in ("a", "b"):
            proc, port, auth = start_server(tmp / name, server_cmd(getattr(args, name)))
            client = RawClient(port, auth)
            if args.parked:
                put_parked(client)
            else:
                put_action(client, NAME)
            sides[name] = Side(proc, port, auth, client)
        path = invoke_path(NAME, blocking=False)
        for name, side in sides.items():  # warm: instances up, code paths imported
            warm = wrk(side.port, side.auth, path, args.connections, 2)
            accepted[name] += int(warm["requests"])
            if not args.parked:
                wait_recorded(tmp / name / "data" / "wisp.db", accepted[name])
        rounds: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
        order = ["a", "b", "b", "a"] * ((args.rounds + 1) // 2)
        for name in order[: 2 * args.rounds]:
            side = sides[name]
            before, _ = cpu_seconds(side.proc.pid)
            result = wrk(side.port, side.auth, path, args.connections, args.duration)
            after, _ = cpu_seconds(side.proc.pid)
            done = max(1, int(result["requests"]))
            accepted[name] += int(result["requests"])
            # The server's CPU in the round: accepting, plus running what it accepted.
            result["server_cpu_us"] = round((after - before) / done * 1e6, 1)
            if not args.parked:
                result["drain_s"] = wait_recorded(tmp / name / "data" / "wisp.db", accepted[name])
            rounds[name].append(result)
            print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
        summary: dict[str, object] = {}
        medians = {}
        for name in ("a", "b"):
            medians[name] = statistics.median(r["rps"] for r in rounds[name])
            summary[name] = {
                "src": getattr(args, name),
                "accepts_per_s": [r["rps"] for r in rounds[name]],
                "median_accepts_per_s": medians[name],
                "median_p50_ms": statistics.median(r["p50_ms"] for r in rounds[name]),
                "median_p99_ms": statistics.median(r["p99_ms"] for r in rounds[name]),
                "median_server_cpu_us": statistics.median(r["server_cpu_us"] for r in rounds[name]),
                "non_2xx": sum(int(r["non_2xx"]) for r in rounds[name]),
                "accepted": accepted[name],
                "recorded": count_records(tmp / name / "data" / "wisp.db", NAME),
            }
        summary["ratio_b_over_a"] = round(medians["b"] / medians["a"], 3) if medians["a"] else None
        summary["parked"] = args.parked
        summary["connections"] = args.connections
        summary["duration_s"] = args.duration
        with open("/proc/loadavg") as loadavg:
            summary["loadavg_after"] = loadavg.read().split()[:3]
        print(json.dumps(summary, indent=2))
    finally:
        for side in sides.values():
            side.proc.terminate()
            side.proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
