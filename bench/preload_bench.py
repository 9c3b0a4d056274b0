"""Python cold starts of functions that use `requests`, and idle instance memory.

At the sandbox level (no HTTP), as bench/node_bench.py: each cold start is a new
function version on a ready instance — init (which runs the module's imports) and
the first run. Three functions: `plain` (no imports); `inline_requests`, a single
file doing `import requests` (possible since the zygote preloads it,
wisp.runtimes.PRELOADED); `bundled_requests`, a zip shipping its own requests,
urllib3, idna, certifi and charset_normalizer (copied from this host), which is
what a function had to do before — and still does when it pins its own version.
Every version of a function shares one code digest, so the zip is unpacked once.
Idle memory is the private memory (Private_Clean + Private_Dirty of
/proc/PID/smaps_rollup) of each function's warm instances left idle after the runs
(issue 2's figure: <= 3 MiB for an idle warm Python instance), and of the zygote.

With ``--baseline-src DIR`` (another checkout's src/, e.g. before the preload) the
measurement runs in child processes alternating between DIR and this checkout,
``--rounds`` times each, and pools the samples: an A/B in one run.
Prints JSON. Run: python bench/preload_bench.py [--runs N] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from alternate import pooled_rounds

IMPORTS = "import requests\n\ndef main(args):\n    return {'v': requests.__version__}\n"
PLAIN = "def main(args):\n    return {'v': 1}\n"
SHIPPED = ("requests", "urllib3", "idna", "certifi", "charset_normalizer")


def bundle_with_requests() -> str:
    """A zip (base64) holding IMPORTS as __main__.py and this host's copies of SHIPPED."""
    import importlib.util

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", IMPORTS)
        for name in SHIPPED:
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.origin is not None, name
            folder = Path(spec.origin).parent
            # With the bytecode, as `pip install` (a server-side build) leaves it.
            for path in folder.rglob("*"):
                if path.is_file():
                    archive.write(path, str(path.relative_to(folder.parent)))
        for path in folder.parent.glob("*__mypyc*.so"):  # charset_normalizer's helpers
            archive.write(path, path.name)
    return base64.b64encode(buffer.getvalue()).decode()


def private_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    return sum(int(m) for m in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)", text)) / 1024


async def measure(runs: int) -> dict[str, Any]:
    """One platform, in this process, from whichever wisp is on sys.path."""
    from wisp.config import Settings
    from wisp.invoker.base import Target
    from wisp.models import Action, ActionLimits, Exec
    from wisp.runtimes import RuntimeTable, discover
    from wisp.server import build_platform
    from wisp.store.memory import MemoryStore

    kind = RuntimeTable(discover()).resolve("python:default").kind

    def target(name: str, code: str, version: int, binary: bool = False) -> Target:
        action = Action(
            namespace="bench",
            package="default",
            name=name,
            exec=Exec(kind=kind, code=code, binary=binary, digest=name),
            limits=ActionLimits(timeout=5000, memory=256, logs=1024),
            version=f"0.0.{version}",
        )
        return Target(action=action)

    functions = {
        "plain": (PLAIN, False),
        "inline_requests": (IMPORTS, False),
        "bundled_requests": (bundle_with_requests(), True),
    }
    samples: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), stem_cells=2, pool_memory_mb=1 << 16)
        platform = build_platform(settings, MemoryStore())
        await platform.start()
        try:
            for i in range(runs):
                for name, (code, binary) in functions.items():
                    await asyncio.sleep(0.2)  # the sandbox refills its stem cells
                    start = time.perf_counter()
                    invocation = platform.invoker.submit(
                        target(name, code, i, binary), {}, subject="b"
                    )
                    record = await invocation.done
                    elapsed = (time.perf_counter() - start) * 1000
                    if record.status_code != 0:  # e.g. a Wisp without the preload
                        samples.setdefault(f"{name}_failed", []).append(1)
                        continue
                    samples.setdefault(name, []).append(elapsed)
                    samples.setdefault(f"{name}_init", []).extend(
                        a["value"] for a in record.annotations if a["key"] == "initTime"
                    )
            await asyncio.sleep(1.0)
            pool: Any = getattr(platform.invoker, "pool")  # noqa: B009
            for key, leases in pool._idle.items():  # (namespace, package, name, version)
                memory = [private_mib(lease.instance.pid) for lease in leases]
                samples.setdefault(f"{key[2]}_idle_mib", []).extend(m for m in memory if m)
            sandbox: Any = getattr(platform.invoker, "sandbox")  # noqa: B009
            samples["zygote_private_mib"] = [private_mib(sandbox.zygotes[kind].pid)]
        finally:
            await platform.stop()
    return samples


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="another checkout's src/ to A/B against")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or not args.baseline_src:
        samples = asyncio.run(measure(args.runs))
        if args.child:
            print(json.dumps(samples))
            return
        pooled = {"change": samples}
    else:
        pooled = pooled_rounds(__file__, ["--runs", str(args.runs)], args.baseline_src, args.rounds)
    report: dict[str, Any] = {"runs": args.runs}
    for variant, samples in pooled.items():
        figures: dict[str, Any] = {}
        for name in ("plain", "inline_requests", "bundled_requests"):
            if samples.get(name):
                figures[f"cold_{name}_p50_ms"] = median(samples[name])
                figures[f"cold_{name}_init_time_p50_ms"] = median(samples[f"{name}_init"])
            else:
                figures[f"cold_{name}"] = "failed (no such package here)"
                continue
            figures[f"idle_{name}_private_mib_p50"] = median(samples.get(f"{name}_idle_mib", []))
        figures["zygote_private_mib"] = median([v for v in samples["zygote_private_mib"] if v])
        report[variant] = figures
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
