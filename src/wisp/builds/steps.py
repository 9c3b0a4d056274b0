"""The build steps a deploy runs on the server, each a subprocess with a clean environment.

- ``build.sh`` / ``.build``: the function's own script (DigitalOcean's convention).
- ``requirements.txt`` (Python): ``pip install --target`` into the bundle's
  ``virtualenv/lib/pythonX.Y/site-packages``, which the Python launcher puts on
  ``sys.path``.
- ``package.json`` (Node.js, with dependencies and no ``node_modules``):
  ``npm install --omit=dev``.
- Go: ``main.go`` with ``func Main(map[string]interface{}) map[string]interface{}``,
  compiled with a generated ``main`` into the ``exec`` the binary protocol runs.

Dependency installs are cached by a hash of what decides them (the requirements
file, package.json + lock), so a redeploy with the same dependencies does no
network work. Steps run as an unprivileged uid when Wisp runs as root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wisp.runtimes import HERE as RUNTIMES

LOG_MAX = 64 * 1024  # bytes of build output kept with a version
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


class StepFailed(Exception):
    """A build step exited non-zero or ran out of time; the message says which."""


@dataclass
class Runner:
    """Runs one build's commands and collects their output as its log."""

    cache: Path  # <data-dir>/build-cache: dependency installs and the Go build cache
    timeout: float
    uid: int | None  # run as this uid (root only), else as ourselves
    log: list[str]

    def note(self, line: str) -> None:
        self.log.append(line)

    def run(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        *,
        trusted: bool = False,
    ) -> None:
        """``trusted``: run as the server's own user (only for commands that execute no
        code from the function or its dependencies)."""
        uid = None if trusted else self.uid
        home = Path(tempfile.mkdtemp(prefix="wisp-build-home-"))
        if uid is not None:
            self.own(home)
        full_env = {"PATH": SAFE_PATH, "HOME": str(home), "LANG": "C.UTF-8", **(env or {})}
        self.note(f"$ {' '.join(argv)}")
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                start_new_session=True,
                user=uid,
                group=uid,
                extra_groups=[] if uid is not None else None,
            )
        except subprocess.TimeoutExpired as exc:
            self.note(_text(exc.stdout))
            raise StepFailed(f"{argv[0]} did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise StepFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(home, ignore_errors=True)
        output = _text(done.stdout).rstrip()
        if output:
            self.note(output)
        if done.returncode != 0:
            raise StepFailed(f"{' '.join(argv[:3])} exited with status {done.returncode}")

    def own(self, path: Path) -> None:
        """Hand a tree to the build uid, so its steps can write there and nowhere else."""
        if self.uid is None:
            return
        for dirpath, dirnames, filenames in os.walk(path):
            os.chown(dirpath, self.uid, self.uid)
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.uid, follow_symlinks=False)

    def cached_dir(self, kind: str, key: str) -> tuple[Path, bool]:
        """``cache/<kind>/<key>``: (path, True) when a previous build filled it."""
        path = self.cache / kind / key
        return path, path.is_dir()

    def reachable(self, path: Path) -> Path:
        """Create ``path`` (under the cache) so the build uid can traverse to it: the
        server's umask makes new folders private."""
        path.mkdir(parents=True, exist_ok=True)
        folder = path
        while True:
            os.chmod(folder, 0o711)
            if folder == self.cache or folder == folder.parent:
                return path
            folder = folder.parent


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def world_executable(program: Path) -> bool:
    """Whether any uid may run ``program``: it and every folder above it allow others."""
    try:
        real = program.resolve()
        if not real.stat().st_mode & 0o001:
            return False
        return all(folder.stat().st_mode & 0o001 for folder in real.parents)
    except OSError:
        return False


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def copy_tree(source: Path, target: Path) -> None:
    """Hard links when the cache and the bundle share a filesystem, copies otherwise."""

    def link_or_copy(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            return shutil.copy2(src, dst)

    shutil.copytree(source, target, dirs_exist_ok=True, copy_function=link_or_copy, symlinks=True)


def install_into(
    runner: Runner, kind: str, key: str, target: Path, fill: Callable[[Path], None]
) -> None:
    """Fill ``cache/<kind>/<key>`` once (``fill(staging)``), then copy it to ``target``."""
    cached, hit = runner.cached_dir(kind, key)
    if hit:
        runner.note(f"{kind}: dependencies unchanged, using the cached install {key[:12]}")
    else:
        runner.reachable(cached.parent)
        staging = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".fill-"))
        try:
            runner.own(staging)
            fill(staging)
            os.rename(staging, cached)
        except OSError:
            if not cached.is_dir():  # unless a concurrent build filled it first
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    copy_tree(cached, target)


# -- the steps ----------------------------------------------------------------------


def build_script(runner: Runner, bundle: Path) -> bool:
    for name in ("build.sh", ".build"):
        script = bundle / name
        if script.is_file():
            runner.run(["/bin/bash", name], bundle)
            return True
    return False


def pip_install(runner: Runner, bundle: Path, python: str, version: str) -> None:
    requirements = (bundle / "requirements.txt").read_bytes()
    key = digest(b"pip", version.encode(), requirements)
    site = bundle / "virtualenv" / "lib" / f"python{version}" / "site-packages"

    # The build uid may not reach the server's interpreter (a pyenv under /root): pip
    # then runs as the server's user, restricted to wheels, which install without
    # running any of the package's code.
    trusted = runner.uid is not None and not world_executable(Path(python))

    def fill(staging: Path) -> None:
        listing = staging / ".requirements.txt"
        listing.write_bytes(requirements)
        runner.own(staging)
        argv = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        argv += ["--no-cache-dir", "--target", str(staging), "-r", str(listing)]
        if trusted:
            argv.insert(4, "--only-binary=:all:")
        runner.run(argv, staging, trusted=trusted)
        listing.unlink()

    install_into(runner, "pip", key, site, fill)


def npm_install(runner: Runner, bundle: Path) -> None:
    manifest = (bundle / "package.json").read_bytes()
    lock_path = bundle / "package-lock.json"
    lock = lock_path.read_bytes() if lock_path.is_file() else b""
    key = digest(b"npm", manifest, lock)

    def fill(staging: Path) -> None:
        # npm creates its folder's parents itself and fails on a private one: give it
        # a folder of its own inside the staging one.
        work = staging / "work"
        work.mkdir()
        (work / "package.json").write_bytes(manifest)
        if lock:
            (work / "package-lock.json").write_bytes(lock)
        runner.own(staging)
        npm = shutil.which("npm", path=SAFE_PATH) or "npm"
        runner.run(
            [npm, "ci" if lock else "install", "--omit=dev", "--no-audit", "--no-fund"],
            work,
            {"npm_config_cache": str(work / ".npm-cache"), "npm_config_update_notifier": "false"},
        )
        if (work / "node_modules").is_dir():
            os.rename(work / "node_modules", staging / "node_modules")
        shutil.rmtree(work)

    install_into(runner, "npm", key, bundle, fill)


def go_build(runner: Runner, bundle: Path, go: str, version: str) -> None:
    """Compile the function with Wisp's main loop into ``bundle/exec``."""
    shutil.copy(RUNTIMES / "go" / "main_loop.go", bundle / "wisp_main.go")
    if not (bundle / "go.mod").is_file():
        (bundle / "go.mod").write_text(f"module function\n\ngo {version}\n")
    cache = runner.reachable(runner.cache / "go")
    runner.own(cache)
    runner.own(bundle)
    runner.run(
        [go, "build", "-trimpath", "-o", "exec", "."],
        bundle,
        {
            "GOCACHE": str(cache / "build"),
            "GOPATH": str(cache / "path"),
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",  # a function's imports are the standard library's
            "CGO_ENABLED": "0",
        },
    )
    # Only the executable ships: the sources stay with the action's code.
    for entry in bundle.iterdir():
        if entry.name != "exec":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"
