"""Cold starts of Node.js and PHP over HTTP, and redeploys with cached dependencies.

Starts a real `wisp server` (as bench/invoke_bench.py does) and measures:
- cold start over HTTP: a new function each time, its first blocking invoke (the
  stem cell is ready: the sandbox refills in the background between samples);
- redeploying an unchanged project whose functions have dependencies (a Node
  package.json, a Python requirements.txt): the whole `wisp deploy` command, and the
  plan alone in-process (what `wisp watch` does per save, without the CLI start-up);
- redeploying after a code change with the same dependencies (the build is a
  dependency-cache hit): the whole `wisp deploy` command.
The `wisp deploy` figures include the CLI's start-up; the in-process ones do not.
The first deploy installs `is-number` from npm and `six` from PyPI.

`cli_one_shot` is the issue's "dependency-cached redeploy of an unchanged function"
as the user sees it: the whole `wisp deploy DIR` command, p50 of N runs, interleaved
with `python3 -c pass` (the interpreter's own start-up on this machine) and, with
`--cli-src DIR`, the same command from another checkout's src/ (A/B in one run).
The CLI runs with its bytecode cached (in a temporary PYTHONPYCACHEPREFIX), as after
`pip install`, even where PYTHONDONTWRITEBYTECODE is set.
Prints JSON. Run: python bench/dev_loop_bench.py [--runs N] [--cli-only] [--cli-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from invoke_bench import RawClient, start_server, summary

from wisp.cli.client import WispClient
from wisp.deploy.apply import apply_plan
from wisp.deploy.desired import Runtimes, desired_state
from wisp.deploy.plan import make_plan
from wisp.deploy.project import load_project

SOURCES = {
    "nodejs": "function main(args) {{ return {{n: {i}, g: 'Hello ' + (args.name || 'x')}}; }}\n",
    "php": "<?php\nfunction main(array $args): array {{ return ['n' => {i}]; }}\n",
}


def cold_starts(client: RawClient, family: str, runs: int) -> dict[str, float]:
    total: list[float] = []
    init: list[float] = []
    for i in range(runs):
        name = f"cold-{family}-{i}"
        body = json.dumps(
            {"exec": {"kind": f"{family}:default", "code": SOURCES[family].format(i=i)}}
        )
        status, text = client.request(
            "PUT", f"/api/v1/namespaces/_/actions/{name}?overwrite=true", body.encode()
        )
        if status != 200:
            raise SystemExit(f"could not create {name}: {status} {text!r}")
        time.sleep(0.3)  # let the sandbox refill its stem cells, as it does between requests
        start = time.perf_counter()
        status, text = client.request("POST", f"/api/v1/namespaces/_/actions/{name}?blocking=true")
        total.append((time.perf_counter() - start) * 1000)
        record = json.loads(text)
        if status != 200 or record["response"]["status"] != "success":
            raise SystemExit(f"{name} failed: {status} {text!r}")
        init.extend(a["value"] for a in record["annotations"] if a["key"] == "initTime")
    return {**summary(total), "init_time_p50_ms": sorted(init)[len(init) // 2]}


def write_project(root: Path) -> Path:
    node = root / "packages" / "deps" / "node"
    node.mkdir(parents=True)
    (node / "package.json").write_text(
        '{"name": "node", "main": "index.js", "dependencies": {"is-number": "7.0.0"}}'
    )
    (node / "index.js").write_text(
        "const isNumber = require('is-number');\nexports.main = (a) => ({n: isNumber(a.n)});\n"
    )
    py = root / "packages" / "deps" / "py"
    py.mkdir()
    (py / "requirements.txt").write_text("six==1.16.0\n")
    (py / "__main__.py").write_text("import six\n\ndef main(args):\n    return {'py3': six.PY3}\n")
    (root / "packages" / "deps" / "plain.py").write_text("def main(args):\n    return {}\n")
    return node


def timed_deploy(project: Path, env: dict[str, str], expect: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(["wisp", "deploy", str(project)], env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"wisp deploy: {done.returncode} {done.stdout} {done.stderr}")
    return elapsed


def cli_from(src: Path) -> list[str]:
    """`wisp` run from the given src/ folder (the same way for every variant)."""
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from wisp.cli.main import main; main()"
    return [sys.executable, "-c", code, str(src)]


def one_shot(project: Path, env: dict[str, str], runs: int, base_src: str | None) -> object:
    """p50 of `wisp deploy` on the unchanged project, interleaved with its baselines."""
    here = Path(__file__).resolve().parent.parent / "src"
    variants = {
        "python_c_pass": [sys.executable, "-c", "pass"],
        "wisp_deploy": [*cli_from(here), "deploy", str(project)],
        # The console script pip installed beside this interpreter: what the user types.
        "wisp_script_deploy": [str(Path(sys.executable).with_name("wisp")), "deploy", str(project)],
    }
    if base_src:
        variants["baseline_wisp_deploy"] = [*cli_from(Path(base_src)), "deploy", str(project)]
    on_path = shutil.which("wisp")
    if on_path and Path(on_path).resolve() != Path(variants["wisp_script_deploy"][0]).resolve():
        variants["wisp_on_path_deploy"] = [on_path, "deploy", str(project)]  # e.g. a pyenv shim
    cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="wisp-bench-pyc-")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for attempt in range(runs + 2):  # two warm-ups write the bytecode and fill the caches
        for name, cmd in variants.items():
            start = time.perf_counter()
            done = subprocess.run(cmd, env=cached, capture_output=True, text=True)
            elapsed = (time.perf_counter() - start) * 1000
            if done.returncode != 0 or (name != "python_c_pass" and "Nothing" not in done.stdout):
                raise SystemExit(f"{name}: {done.returncode} {done.stdout} {done.stderr}")
            if attempt >= 2:
                times[name].append(elapsed)
    shutil.rmtree(cached["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    result: dict[str, object] = {name: summary(values) for name, values in times.items()}
    p50 = {name: s["p50_ms"] for name, s in result.items() if isinstance(s, dict)}
    result["over_python_start_up_p50_ms"] = round(p50["wisp_deploy"] - p50["python_c_pass"], 1)
    if base_src:
        result["baseline_over_change_p50"] = round(
            p50["baseline_wisp_deploy"] / p50["wisp_deploy"], 2
        )
    result["load_average"] = os.getloadavg()
    return result


def main(runs: int, cli_only: bool, base_src: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proc, port, auth = start_server(tmp)
        env = {**os.environ, "WISP_CONFIG": str(tmp / "credentials.json")}
        try:
            client = RawClient(port, auth)
            results: dict[str, object] = {"runs": runs}
            project = tmp / "project"
            node = write_project(project)
            timed_deploy(project, env, "created")  # installs the dependencies once
            results["cli_one_shot"] = one_shot(project, env, runs, base_src)
            if cli_only:
                print(json.dumps(results, indent=2))
                return
            for family in ("nodejs", "php"):
                results[f"{family}_cold_start_http"] = cold_starts(client, family, runs)

            unchanged = [timed_deploy(project, env, "Nothing changed") for _ in range(runs)]
            results["redeploy_unchanged_cli"] = summary(unchanged)

            plans: list[float] = []
            with WispClient(f"http://127.0.0.1:{port}", auth) as api:
                runtimes = Runtimes(api.api_info().get("runtimes") or {})
                for _ in range(runs):
                    start = time.perf_counter()
                    plan = make_plan(desired_state(load_project(project), runtimes), api)
                    plans.append((time.perf_counter() - start) * 1000)
                    assert not plan.has_changes
                results["redeploy_unchanged_plan_in_process"] = summary(plans)
                # What `wisp watch` does on a save: plan and apply, the build hitting
                # the dependency cache.
                edits: list[float] = []
                for i in range(runs):
                    with (node / "index.js").open("a") as source:
                        source.write(f"// in-process edit {i}\n")
                    start = time.perf_counter()
                    plan = make_plan(desired_state(load_project(project), runtimes), api)
                    outcomes = apply_plan(plan, api)
                    edits.append((time.perf_counter() - start) * 1000)
                    assert [o.ok for o in outcomes] == [True], outcomes
            results["redeploy_code_change_cached_deps_in_process"] = summary(edits)

            changed: list[float] = []
            for i in range(runs):
                with (node / "index.js").open("a") as source:
                    source.write(f"// edit {i}\n")
                changed.append(timed_deploy(project, env, "1 updated"))
            results["redeploy_code_change_cached_deps_cli"] = summary(changed)

            start = time.perf_counter()
            subprocess.run(["wisp", "--version"], env=env, capture_output=True, check=True)
            results["cli_start_up_ms"] = round((time.perf_counter() - start) * 1000, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cli-only", action="store_true", help="only the one-shot CLI figures")
    parser.add_argument("--cli-src", help="also run `wisp deploy` from this src/ folder (A/B)")
    args = parser.parse_args()
    main(args.runs, args.cli_only, args.cli_src)
