"""Build a function version's bundle on the server, once per code digest.

A deploy (``PUT .../actions/...``) whose code needs a build — Go source, a zip with
``build.sh``/``.build``, a Python zip with ``requirements.txt``, a Node.js zip with
dependencies but no ``node_modules`` — is built here before the version is stored.
The result is a read-only directory beside the unpacked bundles, named by a hash
of the code, and the version records its name and log (``Exec.build``,
``Exec.build_log``). A failed build raises, so that version is never stored and the
running one stays; a built bundle over the code limit is refused with its size.
Inputs that reach outside the function are refused first (inputs.py); every command
then runs in a build sandbox (sandbox.py), at most ``WISP_BUILD_CONCURRENCY`` builds
at once.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wisp.builds import inputs, steps
from wisp.builds.cache import BuildCache
from wisp.builds.sandbox import BuildSandbox
from wisp.errors import BadRequest, PayloadTooLarge
from wisp.models import Exec
from wisp.runtimes import Runtime
from wisp.sandbox.bundles import BundleCache

LOG_TAIL = 4096  # characters of the log an error message carries
MB = 1024 * 1024


class BuildFailed(BadRequest):
    code = "build_failed"


@dataclass
class BuildResult:
    name: str  # the built bundle's directory under the bundles root
    log: str
    cached: bool


class Builder:
    def __init__(
        self,
        bundles: BundleCache,
        cache: BuildCache,
        code_max: int,
        sandbox: BuildSandbox,
        timeout: float = 300.0,
    ) -> None:
        self.bundles = bundles
        self.root = bundles.root
        self.cache = cache
        self.code_max = code_max
        self.sandbox = sandbox
        self.timeout = timeout
        # Builds at once, each with its cgroup's memory and CPU: the rest wait their turn.
        self._running = threading.BoundedSemaphore(max(1, sandbox.settings.build_concurrency))
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, name: str) -> Path:
        return self.root / name

    def wanted(self, exec_: Exec, runtime: Runtime) -> bool:
        """Whether this code needs a build (cheap: reads the zip's directory only)."""
        if runtime.build:
            return True
        if not exec_.binary:
            return False
        names = set(_zip_names(exec_.code))
        if {"build.sh", ".build"} & names:
            return True
        if runtime.family == "python":
            return "requirements.txt" in names
        if runtime.family == "nodejs" and "package.json" in names:
            if any(name.startswith("node_modules/") for name in names):
                return False  # dependencies shipped with the code
            return _has_dependencies(exec_.code)
        return False

    def build(self, exec_: Exec, runtime: Runtime) -> BuildResult | None:
        """Build (or find the earlier build of) this code; None when it needs none.

        Blocking, and possibly long: call it from a thread.
        """
        if not self.wanted(exec_, runtime):
            return None
        name = "build-" + steps.digest(b"wisp-build-1", exec_.digest.encode())[:40]
        target = self.root / name
        log_file = self.root / f"{name}.log"
        with self._lock(name):
            if target.is_dir():
                log = log_file.read_text(encoding="utf-8") if log_file.is_file() else ""
                return BuildResult(name, log, cached=True)
            self.root.mkdir(parents=True, exist_ok=True)
            self.cache.prepare()
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".build-"))
            log_lines: list[str] = []
            try:
                self._sources(exec_, runtime, staging)
                self._check(runtime, staging)
                with self._running, self.sandbox.uid() as uid:
                    runner = steps.Runner(
                        self.sandbox, self.cache, self.root, self.timeout, uid, log_lines
                    )
                    self._steps(runner, runtime, staging, exec_.digest)
                size = _tree_size(staging)
                if size > self.code_max:
                    raise PayloadTooLarge(
                        f"the built bundle is {size} bytes ({size / MB:.1f} MB), over the "
                        f"code limit of {self.code_max} bytes ({self.code_max / MB:.0f} MB)"
                    )
                _seal(staging)
                log = _clip("\n".join(log_lines) + "\n")
                log_file.write_text(log, encoding="utf-8")
                os.chmod(log_file, 0o600)
                os.rename(staging, target)
            except steps.StepFailed as exc:
                tail = _clip("\n".join(log_lines))[-LOG_TAIL:]
                raise BuildFailed(f"the build failed: {exc}\n{tail}") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return BuildResult(name, log, cached=False)

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _sources(self, exec_: Exec, runtime: Runtime, staging: Path) -> None:
        if exec_.binary:
            unpacked = Path(self.bundles.unpack(exec_.digest, exec_.code))
            shutil.copytree(unpacked, staging, dirs_exist_ok=True, symlinks=True)
        elif runtime.build == "go":
            (staging / "main.go").write_text(exec_.code, encoding="utf-8")
        # everything the steps may write is theirs; the rest of the root is not
        os.chmod(staging, 0o755)

    @staticmethod
    def _check(runtime: Runtime, bundle: Path) -> None:
        """Refuse (400, naming the file and line) inputs that reach outside the function."""
        if runtime.family == "python" and (bundle / "requirements.txt").is_file():
            inputs.requirements(bundle)
        if runtime.family == "nodejs":
            inputs.npmrc(bundle)

    def _steps(self, runner: steps.Runner, runtime: Runtime, bundle: Path, code: str) -> None:
        runner.own(bundle)
        if steps.build_script(runner, bundle, runtime.interpreter):
            pass  # the function's own script replaces the automatic steps
        elif runtime.family == "python" and (bundle / "requirements.txt").is_file():
            steps.pip_install(runner, bundle, runtime.interpreter, _python_version(runtime), code)
        elif (
            runtime.family == "nodejs"
            and (bundle / "package.json").is_file()
            and not (bundle / "node_modules").exists()
        ):
            steps.npm_install(runner, bundle)
        if runtime.build == "go":
            steps.go_build(runner, bundle, runtime.interpreter, runtime.kind.partition(":")[2])


def _python_version(runtime: Runtime) -> str:
    return runtime.kind.partition(":")[2] or steps.python_version()


def _decoded(code: str) -> bytes:
    try:
        return base64.b64decode("".join(code.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _zip_names(code: str) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(_decoded(code))) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def _has_dependencies(code: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(_decoded(code))) as archive:
            manifest = json.loads(archive.read("package.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return False
    return isinstance(manifest, dict) and bool(manifest.get("dependencies"))


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _seal(root: Path) -> None:
    """Owned by us and read-only to everyone else, as unpacked bundles are."""
    uid, gid = os.getuid(), os.getgid()
    for dirpath, _, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chown(path, uid, gid, follow_symlinks=False)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & 0o111
            os.chmod(path, 0o755 if executable else 0o644)


def _clip(log: str) -> str:
    if len(log) <= steps.LOG_MAX:
        return log
    return "[... earlier output cut ...]\n" + log[-steps.LOG_MAX :]
