"""The runtimes table: which kinds exist, how each is launched, and which is default.

Launchers live beside this file and run *inside* sandboxes: standard library only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from wisp.errors import UnknownKind

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Runtime:
    kind: str  # "python:3.11"
    family: str  # "python"
    default: bool  # the kind that "python:default" resolves to
    extensions: tuple[str, ...]  # source file extensions that select this runtime
    launcher: Path  # program the zygote / stem cell runs
    interpreter: str  # executable that runs the launcher

    @property
    def command(self) -> list[str]:
        if self.family == "python":
            # -I: isolated (no env, no user site); -S: no site hooks. Both keep the
            # host's configuration out of the sandbox and cut start-up time.
            return [self.interpreter, "-I", "-S", str(self.launcher)]
        return [self.interpreter, str(self.launcher)]


def discover() -> list[Runtime]:
    """The runtimes this host can serve."""
    found = [
        Runtime(
            kind=f"python:{sys.version_info.major}.{sys.version_info.minor}",
            family="python",
            default=True,
            extensions=(".py",),
            launcher=HERE / "python" / "launcher.py",
            interpreter=sys.executable,
        )
    ]
    # other families join here as they are built (node, go, php, binary)
    return found


class RuntimeTable:
    def __init__(self, runtimes: list[Runtime]) -> None:
        self.runtimes = {r.kind: r for r in runtimes}

    def resolve(self, kind: str) -> Runtime:
        """Map a kind (or 'family:default') to a runtime, or raise UnknownKind."""
        if kind in self.runtimes:
            return self.runtimes[kind]
        family, _, version = kind.partition(":")
        if version == "default" or not version:
            for runtime in self.runtimes.values():
                if runtime.family == family and runtime.default:
                    return runtime
        known = ", ".join(sorted(self.runtimes))
        raise UnknownKind(f"the kind {kind!r} is not supported; supported kinds: {known}")

    def by_extension(self, ext: str) -> Runtime | None:
        for runtime in self.runtimes.values():
            if runtime.default and ext in runtime.extensions:
                return runtime
        return None

    def describe(self) -> dict[str, list[dict[str, object]]]:
        """The ``runtimes`` object of ``GET /api/v1``."""
        out: dict[str, list[dict[str, object]]] = {}
        for runtime in sorted(self.runtimes.values(), key=lambda r: r.kind):
            out.setdefault(runtime.family, []).append(
                {"kind": runtime.kind, "default": runtime.default, "deprecated": False}
            )
        return out
