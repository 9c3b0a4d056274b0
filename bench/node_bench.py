"""Node.js cold start from a ready stem cell, and warm latency, at the sandbox level.

Cold: a new function version each time (init + run on a stem cell the sandbox
prepared in the background); warm: the same version again. Prints JSON.

With ``--baseline-launcher FILE`` (e.g. another checkout's runtimes/node/launcher.js)
the same platform also serves two extra kinds, ``nodejs:baseline`` running FILE and
``nodejs:change`` running this checkout's launcher, started the same way (``node
FILE``), and the cold starts of the three kinds are interleaved: an A/B in one run.
Run: python bench/node_bench.py [--runs N] [--baseline-launcher FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.models import Action, ActionLimits, Exec
from wisp.runtimes import HERE, NODE_HEAP_MB, RuntimeTable, discover
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

CODE = "function main(args) { return {greeting: 'Hello ' + (args.name || 'x')}; }\n"


def target(kind: str, version: int) -> Target:
    action = Action(
        namespace="bench",
        package="default",
        name="hello-" + kind.replace(":", "-"),  # each kind its own function
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


def ab_kinds(baseline: Path, folder: Path) -> Path:
    """A runtimes file with nodejs:baseline and nodejs:change, both run as `node FILE`.

    The baseline is copied out of /tmp first: a confined instance has a private /tmp.
    """
    copy = Path.home() / ".cache" / "wisp-bench" / "baseline-launcher.js"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(baseline, copy)
    node = shutil.which("node") or "node"
    heap = f"--max-old-space-size={NODE_HEAP_MB}"
    change = (HERE / "node" / "launcher.js").resolve()
    entries = [
        {"kind": f"nodejs:{name}", "stem": [node, heap, str(path)]}
        for name, path in (("baseline", copy), ("change", change))
    ]
    path = folder / "runtimes.json"
    path.write_text(json.dumps(entries))
    return path


async def main(runs: int, baseline: Path | None) -> None:
    kind = RuntimeTable(discover()).resolve("nodejs:default").kind
    kinds = [kind] + (["nodejs:baseline", "nodejs:change"] if baseline else [])
    with tempfile.TemporaryDirectory() as data:
        extra = str(ab_kinds(baseline, Path(data))) if baseline else ""
        settings = Settings(
            data_dir=Path(data), stem_cells=2, pool_memory_mb=1 << 16, runtimes_file=extra
        )
        platform = build_platform(settings, MemoryStore())
        await platform.start()
        try:
            cold: dict[str, list[float]] = {k: [] for k in kinds}
            init: dict[str, list[float]] = {k: [] for k in kinds}
            for i in range(runs):
                for each in kinds:
                    await asyncio.sleep(0.5)  # let the sandbox refill its stem cells
                    start = time.perf_counter()
                    record = await platform.invoker.submit(target(each, i), {}, subject="b").done
                    cold[each].append((time.perf_counter() - start) * 1000)
                    init[each].extend(
                        a["value"] for a in record.annotations if a["key"] == "initTime"
                    )
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
    results: dict[str, object] = {
        "kind": kind,
        "runs": runs,
        "cold_from_stem_cell": summary(cold[kind]),
        "cold_init_time_ms_p50": statistics.median(init[kind]),
        "warm": summary(warm),
    }
    if baseline:
        for name in ("baseline", "change"):
            results[f"ab_{name}_cold"] = summary(cold[f"nodejs:{name}"])
            results[f"ab_{name}_init_time_ms_p50"] = statistics.median(init[f"nodejs:{name}"])
        results["ab_baseline_launcher"] = str(baseline)
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--baseline-launcher", type=Path, help="a Node launcher.js to A/B against")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.baseline_launcher))
