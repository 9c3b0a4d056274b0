"""What a build reads from the function, checked before anything runs.

``requirements.txt`` may include (``-r``/``-c``) only files inside the function's
folder and may not name another index (``-i``/``--index-url``,
``--extra-index-url``, ``-f``/``--find-links``, ``--trusted-host``); an ``.npmrc``
may not override a registry. Builds reach only the registries the operator allows
(proxy.py) whatever a file says; refusing here says so plainly, with the file and
line, instead of a build failing on a network error, and pip never reads (and so
never echoes into the build log) a file from outside the function.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from wisp.errors import BadRequest

INCLUDES = {
    "-r": "--requirement",
    "-c": "--constraint",
    "--requirement": "--requirement",
    "--constraint": "--constraint",
}
INDEXES = {
    "-i": "--index-url",
    "-f": "--find-links",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
}
REGISTRIES = "builds install only from the registries the operator allows (WISP_BUILD_REGISTRIES)"


class BuildInputRefused(BadRequest):
    code = "build_input_refused"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with comments cut and backslash continuations joined,
    as pip reads them."""
    found: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw
        if line.lstrip().startswith("#"):
            line = ""
        elif " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        pending += line
        if pending.strip():
            found.append((start, pending.strip()))
        pending = ""
    if pending.strip():
        found.append((start, pending.strip()))
    return found


def _option(token: str, table: dict[str, str]) -> tuple[str, str | None] | None:
    """(long name, attached value or None) when ``token`` is one of ``table``'s options."""
    name, eq, value = token.partition("=")
    if name in table:
        return table[name], value if eq else None
    if name.startswith("--") and len(name) > 2:
        # pip's option parser (optparse) takes any unambiguous prefix: --ind, --requ
        for long in table.values():
            if long.startswith(name):
                return long, value if eq else None
    for short, long in table.items():
        if len(short) == 2 and token.startswith(short) and len(token) > 2:
            return long, token[2:]
    return None


def requirements(folder: Path, name: str = "requirements.txt") -> tuple[bytes, bool]:
    """The bytes that decide a pip install (``name`` and what it includes) and whether
    it installs local paths (then the whole folder decides it). Raises
    BuildInputRefused naming the file and line of the first refused one."""
    root = folder.resolve()
    decided: list[bytes] = []
    local = False
    seen: set[Path] = set()

    def read(path: Path) -> None:
        nonlocal local
        if path in seen:
            return
        seen.add(path)
        rel = path.relative_to(root).as_posix()
        text = path.read_bytes().decode("utf-8", "replace")
        decided.append(rel.encode() + b"\0" + text.encode())
        for number, line in _logical_lines(text):
            where = f"{rel} line {number}"
            shown = line if len(line) <= 120 else line[:117] + "..."
            try:
                tokens = shlex.split(line)
            except ValueError:
                tokens = line.split()
            for token in tokens:
                found = _option(token, INDEXES)
                if found is not None:
                    raise BuildInputRefused(f"{where}: {found[0]} is not allowed: {REGISTRIES}")
            first = tokens[0] if tokens else ""
            include = _option(first, INCLUDES)
            if include is not None:
                target = include[1] if include[1] is not None else " ".join(tokens[1:2])
                included = _inside(path.parent, target, root)
                if included is None or not included.is_file():
                    raise BuildInputRefused(
                        f"{where}: {shown!r}: {include[0]} must name a file inside the "
                        "function's folder"
                    )
                read(included)
                continue
            if first in ("-e", "--editable"):
                targets = tokens[1:2]
            elif first.startswith("--editable="):
                targets = [first.partition("=")[2]]
            elif first.startswith("-e"):
                targets = [first[2:]]
            else:
                targets = [first]
            targets += [t for t in tokens if t.startswith("file:")]  # "pkg @ file:..."
            for target in filter(_is_path, targets):
                path_part = target.removeprefix("file://").removeprefix("file:")
                if _inside(path.parent, path_part, root) is None:
                    raise BuildInputRefused(
                        f"{where}: {shown!r} refers to a path outside the function's folder"
                    )
                local = True

    top = _inside(root, name, root)
    if top is None or not top.is_file():
        raise BuildInputRefused(f"{name} is not a file inside the function's folder")
    read(top)
    return b"\0\0".join(decided), local


def _is_path(token: str) -> bool:
    return token.startswith((".", "/", "~", "file:"))


def _inside(base: Path, target: str, root: Path) -> Path | None:
    if not target or "://" in target:
        return None
    path = (base / target).resolve()
    return path if path.is_relative_to(root) else None


def npmrc(folder: Path) -> None:
    """Refuse an ``.npmrc`` that sets a registry (``registry=`` or ``@scope:registry=``)."""
    path = folder / ".npmrc"
    if not path.is_file() or path.is_symlink():
        return
    for number, raw in enumerate(path.read_bytes().decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        key = line.partition("=")[0].strip().lower()
        if key == "registry" or key.endswith(":registry"):
            raise BuildInputRefused(f".npmrc line {number}: {key} is not allowed: {REGISTRIES}")
