"""Node.js cold start from a ready stem cell, and warm latency, at the sandbox level.

Cold: a new function version each time (init + run on a stem cell the sandbox
prepared in the background); warm: the same version again. Prints JSON.
Run: python bench/node_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.models import Action, ActionLimits, Exec
from wisp.runtimes import RuntimeTable, discover
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

CODE = "function main(args) { return {greeting: 'Hello ' + (args.name || 'x')}; }\n"


def target(kind: str, version: int) -> Target:
    action = Action(
        namespace="bench",
        package="default",
        name="hello",
        exec=Exec(kind=kind, code=CODE, digest=f"d{version}"),
        limits=ActionLimits(timeout=3000, memory=256, logs=1024),
        version=f"0.0.{version}",
    )
    return Target(action=action)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


async def main(runs: int) -> None:
    kind = RuntimeTable(discover()).resolve("nodejs:default").kind
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), stem_cells=2, pool_memory_mb=1 << 16)
        platform = build_platform(settings, MemoryStore())
        await platform.start()
        try:
            cold: list[float] = []
            init: list[float] = []
            for i in range(runs):
                await asyncio.sleep(0.5)  # let the sandbox refill its stem cells (node: ~70 ms)
                start = time.perf_counter()
                record = await platform.invoker.submit(target(kind, i), {}, subject="b").done
                cold.append((time.perf_counter() - start) * 1000)
                init.extend(a["value"] for a in record.annotations if a["key"] == "initTime")
                assert record.status_code == 0, record.result
            warm: list[float] = []
            same = target(kind, runs)
            await platform.invoker.submit(same, {}, subject="b").done
            for _ in range(runs * 5):
                start = time.perf_counter()
                await platform.invoker.submit(same, {}, subject="b").done
                warm.append((time.perf_counter() - start) * 1000)
        finally:
            await platform.stop()
    print(
        json.dumps(
            {
                "kind": kind,
                "runs": runs,
                "cold_from_stem_cell": summary(cold),
                "cold_init_time_ms_p50": statistics.median(init),
                "warm": summary(warm),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
