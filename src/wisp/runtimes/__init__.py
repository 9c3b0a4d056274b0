"""The runtimes table: which kinds exist, how each is launched, and which is default.

One row per kind: its family, the file extensions that select it, whether it is its
family's default, the build step a deploy runs for it, older kinds accepted as
aliases, and how a sandbox starts it. Python instances are forked from the Python
zygote. Every other kind is a *stem cell*: a child of that same zygote that confines
itself exactly like a Python instance and then ``exec``s ``stem`` (its language's
launcher) with an empty environment, keeping the control socket on fd 3.

The host is probed once at start-up; only kinds whose toolchain is installed are
listed. An operator adds kinds with a JSON file (``WISP_RUNTIMES_FILE``): a list of
``{"kind", "stem": [argv...], "extensions"?, "default"?, "aliases"?, "build"?}``
whose ``stem`` program speaks the framed protocol on fd 3 (see docs/runtimes.md).

Launchers live beside this file and run *inside* sandboxes: standard library only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wisp.errors import UnknownKind

HERE = Path(__file__).resolve().parent
NODE_HEAP_MB = 1024  # V8's old-space cap; the per-function limit is the cgroup's
# The kinds DigitalOcean Functions documents (and Node 16, which older projects name).
# Each is accepted when its language is installed: a kind whose version this host
# does not have runs on the installed one, with a warning and a ``runtime``
# annotation naming what ran (docs/runtimes.md).
DOCUMENTED = {
    "nodejs": ("nodejs:14", "nodejs:16", "nodejs:18"),
    "python": ("python:3.9", "python:3.11"),
    "go": ("go:1.17", "go:1.20"),
    "php": ("php:8.0", "php:8.2"),
}
# What provides each language's toolchain (Debian packages), named when a kind of a
# language that is not installed is refused.
PROVIDERS = {"nodejs": "nodejs", "python": "python3", "go": "golang-go", "php": "php-cli"}
LANGUAGES = {"nodejs": "Node.js", "python": "Python", "go": "Go", "php": "PHP"}
# Popular Python distributions the Python zygote imports before it forks, so that
# `import requests` costs a function nothing on a cold start (docs/runtimes.md). They
# come with Wisp's own dependencies; a bundle's own copy of any of them wins.
PRELOADED = ("requests", "urllib3", "idna", "certifi", "charset-normalizer")


@dataclass(frozen=True)
class Runtime:
    kind: str  # "python:3.11"
    family: str  # "python"
    default: bool  # the kind that "python:default" resolves to
    extensions: tuple[str, ...]  # source file extensions that select this runtime
    launcher: Path  # program the zygote / stem cell runs
    interpreter: str  # executable that runs the launcher
    stem: tuple[str, ...] = ()  # argv a confined stem cell execs; () = a Python fork
    build: str = ""  # build step a deploy runs: "go", or "" (dependencies only)
    aliases: tuple[str, ...] = ()  # older kinds served by this one, with a warning
    preload: tuple[Path, ...] = ()  # packages (folders or .py files) the zygote pre-imports
    version: str = ""  # the toolchain's full version ("20.20.2"), when known

    @property
    def command(self) -> list[str]:
        if self.family == "python":
            # -I: isolated (no env, no user site); -S: no site hooks. Both keep the
            # host's configuration out of the sandbox and cut start-up time.
            # The real file, not a virtual environment's link to it: the sandbox shows the
            # interpreter's own prefix, and functions that run sys.executable need a path
            # that exists there (-I -S ignore the environment's site-packages anyway).
            command = [os.path.realpath(self.interpreter), "-I", "-S", str(self.launcher)]
            if self.preload:
                command.append("--preload=" + ",".join(str(p) for p in self.preload))
            return command
        return [self.interpreter, str(self.launcher)]


@functools.cache
def _probe(argv: tuple[str, ...]) -> str:
    """A tool's version output, or "" when it is missing or broken (cached per host)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@functools.cache
def _source(launcher: Path) -> str:
    """A launcher's text, passed on the command line (``node -e``, ``php -r``, ``python
    -c``): a confined instance may not see the install's files (a private /tmp hides an
    install under /tmp), but it always has its argv."""
    try:
        return launcher.read_text(encoding="utf-8")
    except OSError:
        return ""


def python_runtime() -> Runtime:
    return Runtime(
        kind=f"python:{sys.version_info.major}.{sys.version_info.minor}",
        family="python",
        default=True,
        extensions=(".py",),
        launcher=HERE / "python" / "launcher.py",
        interpreter=sys.executable,
        preload=preload_paths(PRELOADED),
        version="{}.{}.{}".format(*sys.version_info[:3]),
        aliases=_substitutes("python", f"python:{sys.version_info.major}.{sys.version_info.minor}"),
    )


def preload_paths(distributions: tuple[str, ...]) -> tuple[Path, ...]:
    """The top-level packages and modules of the installed ``distributions``.

    Only these are offered to functions, not the folder that holds them: the rest of
    the server's site-packages (Wisp, its web stack) stays out of the sandbox's reach.
    A distribution that is not installed is skipped.
    """
    # Here, not at the top: importlib.metadata pulls in the email package, which
    # `wisp deploy` (importing this module for the kinds) otherwise never needs.
    import importlib.metadata

    found: dict[Path, None] = {}
    for name in distributions:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if len(file.parts) == 1 and not top.endswith((".py", ".so")):
                continue  # e.g. a stray top-level data file
            if top == ".." or top.endswith((".dist-info", ".data")) or top == "__pycache__":
                continue
            found[Path(str(dist.locate_file(top))).resolve()] = None
    return tuple(path for path in found if path.exists())


def _python_stem(launcher: Path) -> tuple[str, ...]:
    """A Python adapter's argv: exec'd after the uid change, so it needs an interpreter
    any uid may run (the server's own may sit in a private home, e.g. a pyenv)."""
    return (_world_python(), "-I", "-S", "-c", _source(launcher))


@functools.cache
def _world_python() -> str:
    for candidate in (shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin"), sys.executable):
        if candidate and _world_executable(Path(candidate)):
            return candidate
    return sys.executable


def _world_executable(program: Path) -> bool:
    try:
        real = program.resolve()
        return all(p.stat().st_mode & 0o001 for p in (real, *real.parents))
    except OSError:
        return False


def node_runtime() -> Runtime | None:
    node = shutil.which("node")
    if node is None:
        return None
    match = re.fullmatch(r"v((\d+)\.\d+\.\d+).*", _probe((node, "--version")))
    if match is None:
        return None
    major = int(match.group(2))
    launcher = HERE / "node" / "launcher.js"
    return Runtime(
        kind=f"nodejs:{major}",
        family="nodejs",
        default=True,
        extensions=(".js", ".mjs", ".cjs"),
        launcher=launcher,
        interpreter=node,
        stem=(node, f"--max-old-space-size={NODE_HEAP_MB}", "-e", _source(launcher)),
        aliases=_substitutes("nodejs", f"nodejs:{major}"),
        version=match.group(1),
    )


def go_runtime() -> Runtime | None:
    go = shutil.which("go")
    if go is None:
        return None
    match = re.fullmatch(r"go((\d+)\.(\d+)[.\d]*).*", _probe((go, "env", "GOVERSION")))
    if match is None:
        return None
    launcher = HERE / "binary" / "launcher.py"
    kind = f"go:{match.group(2)}.{match.group(3)}"
    return Runtime(
        kind=kind,
        family="go",
        default=True,
        extensions=(".go",),
        launcher=launcher,
        interpreter=go,
        stem=_python_stem(launcher),
        build="go",
        aliases=_substitutes("go", kind),
        version=match.group(1),
    )


def php_runtime() -> Runtime | None:
    php = shutil.which("php")
    if php is None:
        return None
    full = _probe((php, "-r", "echo PHP_VERSION;"))
    match = re.fullmatch(r"(\d+\.\d+)\.\d+.*", full)
    if match is None:
        return None
    version = match.group(1)
    launcher = HERE / "php" / "launcher.php"
    return Runtime(
        kind=f"php:{version}",
        family="php",
        default=True,
        extensions=(".php",),
        launcher=launcher,
        interpreter=php,
        # display_errors to stderr: parse errors of user code belong in its logs.
        # memory_limit=-1: the function's limit is its cgroup's, as for every kind.
        # -r takes code without the opening tag.
        stem=(
            php,
            *("-d", "display_errors=stderr", "-d", "log_errors=0", "-d", "memory_limit=-1"),
            "-r",
            _source(launcher).removeprefix("<?php\n"),
        ),
        aliases=_substitutes("php", f"php:{version}"),
        version=full,
    )


def _substitutes(family: str, kind: str) -> tuple[str, ...]:
    """The documented kinds of ``family`` that the installed ``kind`` runs instead."""
    return tuple(k for k in DOCUMENTED.get(family, ()) if k != kind)


def binary_runtime() -> Runtime | None:
    launcher = HERE / "binary" / "launcher.py"
    return Runtime(
        kind="binary:1",
        family="binary",
        default=True,
        extensions=(),
        launcher=launcher,
        interpreter=sys.executable,
        stem=_python_stem(launcher),
    )


def discover(extra: Path | None = None) -> list[Runtime]:
    """The runtimes this host can serve; Python first (it forks every other kind)."""
    found = [python_runtime()]
    for probe in (node_runtime, go_runtime, php_runtime, binary_runtime):
        runtime = probe()
        # A kind whose launcher is missing (a partial install) is not offered.
        if runtime is not None and runtime.launcher.is_file():
            found.append(runtime)
    if extra is not None:
        found.extend(load_extra(extra))
    return found


def load_extra(path: Path) -> list[Runtime]:
    """Operator-defined kinds from a JSON file; a bad file is a clear start-up error."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the runtimes file: {exc}") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{path}: must hold a JSON list of runtimes")
    return [_extra_runtime(path, i, entry) for i, entry in enumerate(entries)]


def _extra_runtime(path: Path, i: int, entry: Any) -> Runtime:
    where = f"{path}: [{i}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object")
    kind = entry.get("kind")
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*:[\w.-]+", kind):
        raise ValueError(f"{where}.kind: must look like 'family:version'")
    stem = entry.get("stem")
    if not isinstance(stem, list) or not stem or not all(isinstance(a, str) for a in stem):
        raise ValueError(f"{where}.stem: must be a non-empty list of strings (argv)")
    extensions = entry.get("extensions", [])
    aliases = entry.get("aliases", [])
    for name, value in (("extensions", extensions), ("aliases", aliases)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}.{name}: must be a list of strings")
    build = entry.get("build", "")
    if build not in ("", "go"):
        raise ValueError(f"{where}.build: must be 'go' or empty")
    return Runtime(
        kind=kind,
        family=kind.partition(":")[0],
        default=bool(entry.get("default", False)),
        extensions=tuple(extensions),
        launcher=Path(stem[-1]),
        interpreter=stem[0],
        stem=tuple(stem),
        build=build,
        aliases=tuple(aliases),
    )


class RuntimeTable:
    def __init__(self, runtimes: list[Runtime]) -> None:
        self.runtimes = {r.kind: r for r in runtimes}
        self.aliases = {alias: r for r in runtimes for alias in r.aliases}

    @property
    def spawner(self) -> Runtime:
        """The Python runtime whose zygote forks every instance and stem cell."""
        for runtime in self.runtimes.values():
            if not runtime.stem:
                return runtime
        raise UnknownKind("no Python runtime to fork sandboxes from")

    def resolve(self, kind: str) -> Runtime:
        """Map a kind (an alias, or 'family:default') to a runtime, or raise UnknownKind."""
        if kind in self.runtimes:
            return self.runtimes[kind]
        if kind in self.aliases:
            return self.aliases[kind]
        family, _, version = kind.partition(":")
        if version == "default" or not version:
            for runtime in self.runtimes.values():
                if runtime.family == family and runtime.default:
                    return runtime
        if family in PROVIDERS and not any(r.family == family for r in self.runtimes.values()):
            raise UnknownKind(
                f"the kind {kind!r} needs {LANGUAGES[family]}, which is not installed on this "
                f"server; the Debian package {PROVIDERS[family]} provides it (install it and "
                "restart the server)"
            )
        known = ", ".join(sorted({*self.runtimes, *self.mapping()}))
        raise UnknownKind(f"the kind {kind!r} is not supported; supported kinds: {known}")

    def substitute(self, kind: str) -> Runtime | None:
        """The runtime that runs ``kind`` when this host has another version of its
        language (``go:1.20`` on Go 1.19); None when ``kind`` runs as asked."""
        if kind in self.runtimes:
            return None
        return self.aliases.get(kind)

    def alias_warning(self, kind: str) -> str | None:
        """What to tell a deploy that asked for a kind this host runs on another version."""
        runtime = self.substitute(kind)
        if runtime is None:
            return None
        return f"{kind} is not installed on this server; {runtime_label(runtime)} runs it instead"

    def mapping(self) -> dict[str, str]:
        """Each accepted kind that runs on another version → the kind that runs it."""
        return {a: r.kind for a, r in sorted(self.aliases.items()) if a not in self.runtimes}

    def missing(self) -> dict[str, str]:
        """Each language Wisp runs that this host lacks → the Debian package adding it."""
        have = {r.family for r in self.runtimes.values()}
        return {family: package for family, package in PROVIDERS.items() if family not in have}

    def banner(self) -> dict[str, str]:
        """The start-up banner's lines: the kinds found, and what would add the others."""
        found = sorted(self.runtimes.values(), key=lambda r: (r.family != "python", r.kind))
        lines = {"runtimes": ", ".join(runtime_label(r) for r in found)}
        missing = self.missing()
        if missing:
            lines["missing"] = "; ".join(
                f"{LANGUAGES[family]} (apt-get install {package})"
                for family, package in sorted(missing.items())
            )
        return lines

    def by_extension(self, ext: str) -> Runtime | None:
        for runtime in self.runtimes.values():
            if runtime.default and ext in runtime.extensions:
                return runtime
        return None

    def describe(self) -> dict[str, list[dict[str, object]]]:
        """The ``runtimes`` object of ``GET /api/v1``; aliases are listed as deprecated
        entries naming the kind that serves them, so deployers accept and map them."""
        out: dict[str, list[dict[str, object]]] = {}
        for runtime in sorted(self.runtimes.values(), key=lambda r: r.kind):
            entry: dict[str, object] = {
                "kind": runtime.kind,
                "default": runtime.default,
                "deprecated": False,
            }
            if runtime.version:
                entry["version"] = runtime.version
            out.setdefault(runtime.family, []).append(entry)
        for alias, kind in self.mapping().items():
            runtime = self.runtimes[kind]
            entry = {"kind": alias, "default": False, "deprecated": True, "alias": kind}
            if runtime.version:
                entry["version"] = runtime.version
            out.setdefault(runtime.family, []).append(entry)
        return out


def runtime_label(runtime: Runtime) -> str:
    """``go:1.19 (1.19.8)``: a kind with the toolchain version that runs it."""
    return f"{runtime.kind} ({runtime.version})" if runtime.version else runtime.kind
