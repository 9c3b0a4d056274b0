"""Node.js cold start from a ready stem cell, and warm latency, at the sandbox level
(``--kind python:default`` measures Python the same way).

Cold: a new function version each time (init + run on a stem cell the sandbox
prepared in the background); warm: the same version again. Prints JSON.

With ``--baseline-src DIR`` (another checkout's src/, e.g. before a change) the
measurement runs in child processes alternating between DIR and this checkout,
``--rounds`` times each, and pools the samples: before/after in one run.
Run: python bench/node_bench.py [--runs N] [--baseline-src DIR [--rounds R]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from alternate import pooled_rounds, spread

CODES = {
    "nodejs": "function main(args) { return {greeting: 'Hello ' + (args.name || 'x')}; }\n",
    "python": "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'x')}\n",
}


CODES_KINDS = ("nodejs:default", "python:default")


async def measure(runs: int, kind_name: str = "nodejs:default") -> dict[str, list[float]]:
    """One platform, in this process, from whichever wisp is on sys.path."""
    from wisp.config import Settings
    from wisp.invoker.base import Target
    from wisp.models import Action, ActionLimits, Exec
    from wisp.runtimes import RuntimeTable, discover
    from wisp.server import build_platform
    from wisp.store.memory import MemoryStore

    kind = RuntimeTable(discover()).resolve(kind_name).kind
    code = CODES[kind_name.partition(":")[0]]

    def target(version: int) -> Target:
        action = Action(
            namespace="bench",
            package="default",
            name="hello",
            exec=Exec(kind=kind, code=code, digest=f"d{version}"),
            limits=ActionLimits(timeout=3000, memory=256, logs=1024),
            version=f"0.0.{version}",
        )
        return Target(action=action)

    samples: dict[str, list[float]] = {"cold": [], "init": [], "warm": []}
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), stem_cells=2, pool_memory_mb=1 << 16)
        platform = build_platform(settings, MemoryStore())
        await platform.start()
        try:
            for i in range(runs):
                await asyncio.sleep(0.5)  # let the sandbox refill its stem cells (node: ~70 ms)
                start = time.perf_counter()
                record = await platform.invoker.submit(target(i), {}, subject="b").done
                samples["cold"].append((time.perf_counter() - start) * 1000)
                samples["init"].extend(
                    a["value"] for a in record.annotations if a["key"] == "initTime"
                )
                assert record.status_code == 0, record.result
            same = target(runs)
            await platform.invoker.submit(same, {}, subject="b").done
            for _ in range(runs * 5):
                start = time.perf_counter()
                await platform.invoker.submit(same, {}, subject="b").done
                samples["warm"].append((time.perf_counter() - start) * 1000)
        finally:
            await platform.stop()
    return samples


def report(samples: dict[str, list[float]]) -> dict[str, Any]:
    return {
        "cold_from_stem_cell": spread(samples["cold"]),
        "cold_init_time_ms_p50": statistics.median(samples["init"]),
        "warm": spread(samples["warm"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="another checkout's src/ to compare with")
    parser.add_argument("--kind", default="nodejs:default", choices=sorted(CODES_KINDS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.runs, args.kind))))
        return
    results: dict[str, Any] = {"runs": args.runs, "kind": args.kind}
    if not args.baseline_src:
        results.update(report(asyncio.run(measure(args.runs, args.kind))))
    else:
        child_args = ["--runs", str(args.runs), "--kind", args.kind]
        pooled = pooled_rounds(__file__, child_args, args.baseline_src, args.rounds)
        results["rounds"] = args.rounds
        results["baseline_src"] = args.baseline_src
        for variant, samples in pooled.items():
            results[variant] = report(samples)
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
