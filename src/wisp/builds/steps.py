"""The build steps a deploy runs on the server, each a command in a build sandbox.

- ``build.sh`` / ``.build``: the function's own script (DigitalOcean's convention).
- ``requirements.txt`` (Python): ``pip install --target`` into the bundle's
  ``virtualenv/lib/pythonX.Y/site-packages``, which the Python launcher puts on
  ``sys.path``.
- ``package.json`` (Node.js, with dependencies and no ``node_modules``):
  ``npm install --omit=dev``.
- Go: ``main.go`` with ``func Main(map[string]interface{}) map[string]interface{}``,
  compiled with a generated ``main`` into the ``exec`` the binary protocol runs.

Every command runs in a sandbox of its own (sandbox.py) that sees the function's
folder at ``/build/src``, a fresh output folder at ``/build/out`` and the cache
read-only; dependency installs are cached (cache.py) by a hash of what decides them
(the requirements files, package.json + lock), so a redeploy with the same
dependencies does no network work. The platform fills the cache from a build's
output once the build has ended; no build writes to it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wisp.builds import inputs
from wisp.builds.cache import BuildCache, CacheError, copy_tree
from wisp.builds.sandbox import CACHE, OUT, PROXY, SRC, BuildSandbox, Mount
from wisp.runtimes import HERE as RUNTIMES

log = logging.getLogger("wisp.builds")

LOG_MAX = 64 * 1024  # bytes of build output kept with a version
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


class StepFailed(Exception):
    """A build step exited non-zero or ran out of time; the message says which."""


@dataclass
class Runner:
    """Runs one build's commands, each in a sandbox, and collects their output as its log."""

    sandbox: BuildSandbox
    cache: BuildCache
    scratch: Path  # where output folders are made (beside the bundles, never in the cache)
    timeout: float
    uid: int | None  # the build's uid (None: the server's, in a user namespace)
    log: list[str]

    def note(self, line: str) -> None:
        self.log.append(line)

    def run(
        self,
        argv: list[str],
        source: Path,
        *,
        out: Path | None = None,
        cwd: str = SRC,
        env: dict[str, str] | None = None,
        network: bool = True,
        shown: list[str] | None = None,
    ) -> None:
        """Run ``argv`` with ``source`` at /build/src and ``out`` at /build/out;
        ``shown``: the command as the log shows it (default ``argv``)."""
        full_env = {"PATH": SAFE_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
        if network:
            for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
                full_env[name] = PROXY
        full_env.update(env or {})
        mounts = [Mount(source, SRC, True), Mount(self.cache.root, CACHE, False)]
        if out is not None:
            mounts.append(Mount(out, OUT, True))
        self.note(f"$ {' '.join(shown or argv)}")
        outcome = self.sandbox.run(
            argv,
            uid=self.uid,
            cwd=cwd,
            env=full_env,
            mounts=mounts,
            network=network,
            timeout=self.timeout,
        )
        output = outcome.output.rstrip()
        if output:
            self.note(output)
        if outcome.refused:
            listed = ", ".join(sorted(set(outcome.refused)))
            allowed = ", ".join(self.sandbox.registries)
            self.note(f"(the build proxy refused: {listed}; allowed: {allowed})")
        if outcome.overflow:
            raise StepFailed(f"{argv[0]} was stopped: {outcome.overflow} (WISP_BUILD_DISK_MB)")
        if outcome.timed_out:
            raise StepFailed(f"{argv[0]} did not finish within {self.timeout:g} s")
        if outcome.code != 0:
            raise StepFailed(f"{' '.join((shown or argv)[:3])} exited with status {outcome.code}")

    def own(self, path: Path) -> None:
        """Hand a tree to the build uid, so its steps can write there and nowhere else."""
        if self.uid is None:
            return
        for dirpath, dirnames, filenames in os.walk(path):
            os.chown(dirpath, self.uid, self.uid)
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.uid, follow_symlinks=False)

    def output_folder(self) -> Path:
        out = Path(tempfile.mkdtemp(dir=self.scratch, prefix=".out-"))
        os.chmod(out, 0o755)
        self.own(out)
        return out


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def install_into(
    runner: Runner,
    kind: str,
    key: str,
    target: Path,
    fill: Callable[[Path], Path],
) -> None:
    """Copy the verified cache entry ``kind/key`` to ``target``; without one, ``fill``
    a fresh output folder in a sandbox (returning the tree to keep), store that tree
    in the cache, then copy it."""
    tree, problem = runner.cache.lookup(kind, key)
    if problem:
        runner.note(f"{kind}: {problem}; installing afresh")
    if tree is not None:
        runner.note(f"{kind}: dependencies unchanged, using the cached install {tree.name[:12]}")
    else:
        out = runner.output_folder()
        try:
            kept = fill(out)
            try:
                tree = runner.cache.store(kind, key, kept)
            except CacheError as exc:
                raise StepFailed(f"{kind}: the install left {exc}") from None
        finally:
            shutil.rmtree(out, ignore_errors=True)
    copy_tree(tree, target)


# -- the steps ----------------------------------------------------------------------


def build_script(runner: Runner, bundle: Path, interpreter: str = "") -> bool:
    """``interpreter``: the function's runtime, whose folder comes first on PATH (a
    script's ``python3`` and ``pip`` are the ones the function runs with)."""
    path = f"{Path(interpreter).parent}:{SAFE_PATH}" if interpreter else SAFE_PATH
    for name in ("build.sh", ".build"):
        script = bundle / name
        if script.is_file():
            runner.run(["/bin/bash", name], bundle, env={"PATH": path})
            return True
    return False


def pip_install(runner: Runner, bundle: Path, python: str, version: str, code: str) -> None:
    """``code``: the function's code digest, which decides the install when the
    requirements name local paths."""
    decided, local = inputs.requirements(bundle)
    key = digest(b"pip", version.encode(), decided, code.encode() if local else b"")
    site = bundle / "virtualenv" / "lib" / f"python{version}" / "site-packages"

    def fill(out: Path) -> Path:
        argv = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        argv += ["--no-cache-dir", "--target", OUT, "-r", f"{SRC}/requirements.txt"]
        runner.run(argv, bundle, out=out)
        return out

    install_into(runner, "pip", key, site, fill)


def npm_install(runner: Runner, bundle: Path) -> None:
    manifest = (bundle / "package.json").read_bytes()
    lock_path = bundle / "package-lock.json"
    lock = lock_path.read_bytes() if lock_path.is_file() else b""
    key = digest(b"npm", manifest, lock)

    def fill(out: Path) -> Path:
        (out / "package.json").write_bytes(manifest)
        if lock:
            (out / "package-lock.json").write_bytes(lock)
        runner.own(out)
        npm = shutil.which("npm", path=SAFE_PATH) or "npm"
        runner.run(
            [npm, "ci" if lock else "install", "--omit=dev", "--no-audit", "--no-fund"],
            bundle,
            out=out,
            cwd=OUT,
            env={
                "npm_config_cache": "/tmp/npm-cache",
                "npm_config_update_notifier": "false",
                "npm_config_proxy": PROXY,
                "npm_config_https_proxy": PROXY,
            },
        )
        modules = out / "node_modules"
        modules.mkdir(exist_ok=True)
        return modules

    install_into(runner, "npm", key, bundle / "node_modules", fill)


GO_ENV = {
    "GOCACHE": "/tmp/go/cache",
    "GOPATH": "/tmp/go/path",
    "GOFLAGS": "-mod=mod",
    "GOTOOLCHAIN": "local",
    "GOPROXY": "off",  # a function's imports are the standard library's
    "CGO_ENABLED": "0",
}
GO_SEED_MAIN = (
    "package main\n\nfunc Main(args map[string]interface{}) map[string]interface{} {\n"
    "\treturn args\n}\n"
)


def go_build(runner: Runner, bundle: Path, go: str, version: str) -> None:
    """Compile the function with Wisp's main loop into ``bundle/exec``.

    Each build compiles with a build cache of its own in the sandbox's private /tmp (a
    cache shared between tenants' builds would let one plant objects in another's
    binary), started from a copy of a seed the platform made once by compiling only
    its own loop (no tenant code), kept in the build cache and checked like any entry.
    """
    shutil.copy(RUNTIMES / "go" / "main_loop.go", bundle / "wisp_main.go")
    if not (bundle / "go.mod").is_file():
        (bundle / "go.mod").write_text(f"module function\n\ngo {version}\n")
    runner.own(bundle)
    seed = _go_seed(runner, go, version)
    argv = [go, "build", "-trimpath", "-o", "exec", "."]
    if seed is not None:
        copy = f'mkdir -p /tmp/go/cache && cp -R "{CACHE}/{seed}/." /tmp/go/cache && exec "$@"'
        runner.run(
            ["/bin/sh", "-c", copy, "sh", *argv], bundle, env=GO_ENV, network=False, shown=argv
        )
    else:
        runner.run(argv, bundle, env=GO_ENV, network=False)
    # Only the executable ships: the sources stay with the action's code.
    for entry in bundle.iterdir():
        if entry.name != "exec":
            is_tree = entry.is_dir() and not entry.is_symlink()
            shutil.rmtree(entry) if is_tree else entry.unlink()


def _go_seed(runner: Runner, go: str, version: str) -> str | None:
    """The seed build cache's path under /build/cache, made on first use; None when it
    cannot be made (each build then starts from an empty cache)."""
    loop = (RUNTIMES / "go" / "main_loop.go").read_bytes()
    key = digest(b"go-seed", go.encode(), version.encode(), loop, GO_SEED_MAIN.encode())
    tree, problem = runner.cache.lookup("go", key)
    if problem:
        runner.note(f"go: {problem}; seeding afresh")
    if tree is None:
        source = runner.output_folder()
        out = runner.output_folder()
        try:
            (source / "wisp_main.go").write_bytes(loop)
            (source / "main.go").write_text(GO_SEED_MAIN)
            (source / "go.mod").write_text(f"module function\n\ngo {version}\n")
            runner.own(source)
            seed_log = Runner(
                runner.sandbox, runner.cache, runner.scratch, runner.timeout, runner.uid, []
            )
            seed_log.run(
                [go, "build", "-trimpath", "-o", "/tmp/exec", "."],
                source,
                out=out,
                env={**GO_ENV, "GOCACHE": OUT},
                network=False,
            )
            tree = runner.cache.store("go", key, out)
        except (StepFailed, CacheError, OSError) as exc:
            log.warning("go: no seed build cache: %s", exc)
            return None
        finally:
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    return str(tree.relative_to(runner.cache.root))


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"
