"""Function code on disk: find it under ``packages/`` and turn it into an action's exec.

A function is either one file ``packages/<pkg>/<fn>.<ext>`` or a folder
``packages/<pkg>/<fn>/`` that is zipped. The zip must be byte-for-byte the same
for an unchanged folder, otherwise every deploy would look like a code change:
entries are sorted, timestamps and permissions fixed, caches left out.
"""

from __future__ import annotations

import base64
import fnmatch
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wisp.deploy.errors import ProjectError

# Which runtime family a source file extension selects ("family:default" is then
# resolved against the server's runtimes).
EXTENSION_FAMILIES: dict[str, str] = {
    ".py": "python",
    ".js": "nodejs",
    ".mjs": "nodejs",
    ".cjs": "nodejs",
    ".ts": "typescript",
    ".go": "go",
    ".php": "php",
    ".java": "java",
    ".rb": "ruby",
    ".swift": "swift",
}
NOT_PACKAGES = {"lib"}  # shared build output, never deployed as a package
BUILD_FILES = (".include", ".ignore")
_ALWAYS_SKIPPED = ("__pycache__", "*.pyc", ".DS_Store", ".git", ".deployed")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


@dataclass(frozen=True)
class Source:
    """Where one function's code lives."""

    package: str
    name: str
    path: Path

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    @property
    def label(self) -> str:
        return self.path.as_posix()


def _skipped(name: str) -> bool:
    return name.startswith(".") or any(fnmatch.fnmatch(name, p) for p in _ALWAYS_SKIPPED)


def scan_packages(root: Path) -> dict[str, dict[str, Source]]:
    """Every function found under ``root/packages``: package → function → source."""
    found: dict[str, dict[str, Source]] = {}
    base = root / "packages"
    if not base.is_dir():
        return found
    for pkg_dir in sorted(base.iterdir()):
        if not pkg_dir.is_dir() or _skipped(pkg_dir.name) or pkg_dir.name in NOT_PACKAGES:
            continue
        functions: dict[str, Source] = {}
        for entry in sorted(pkg_dir.iterdir()):
            if _skipped(entry.name):
                continue
            name = entry.name if entry.is_dir() else entry.stem
            if not name:
                continue
            rel = entry.relative_to(root).as_posix()
            if name in functions:
                other = functions[name].path.relative_to(root).as_posix()
                raise ProjectError(
                    f"{rel}: function {pkg_dir.name}/{name} is also defined by {other}"
                )
            functions[name] = Source(pkg_dir.name, name, entry)
        found[pkg_dir.name] = functions
    return found


def infer_family(source: Path) -> str | None:
    """The runtime family a file's extension or a folder's contents imply."""
    if source.is_file():
        return EXTENSION_FAMILIES.get(source.suffix.lower())
    if (source / "__main__.py").is_file():
        return "python"
    if (source / "package.json").is_file():
        return "nodejs"
    if (source / "go.mod").is_file():
        return "go"
    families = {
        EXTENSION_FAMILIES[p.suffix.lower()]
        for p in source.rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSION_FAMILIES
    }
    return families.pop() if len(families) == 1 else None


def _read_list(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line.rstrip("/"))
    return lines


def _matches(rel: PurePosixPath, patterns: list[str]) -> bool:
    """True if the path, its name, or any of its parent folders matches a pattern."""
    candidates = [rel.as_posix(), rel.name] + [p.as_posix() for p in rel.parents if p.name]
    return any(fnmatch.fnmatch(c, pattern) for c in candidates for pattern in patterns)


def folder_files(folder: Path) -> list[str]:
    """The relative paths that go into a folder function's zip, sorted.

    ``.include`` (when present) lists the only paths to take — files, folders or
    globs; ``.ignore`` lists glob patterns to leave out.
    """
    include = _read_list(folder / ".include") if (folder / ".include").is_file() else None
    ignore = _read_list(folder / ".ignore") if (folder / ".ignore").is_file() else []
    chosen: list[str] = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        # hidden folders (.git, .venv, ...) and caches never ship; hidden files may
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        if rel.as_posix() in BUILD_FILES or _matches(rel, list(_ALWAYS_SKIPPED)):
            continue
        if include is not None and not _matches(rel, include):
            continue
        if _matches(rel, ignore):
            continue
        chosen.append(rel.as_posix())
    if include is not None:
        # A listed path that does not exist is a typo worth reporting; a glob may match nothing.
        for entry in include:
            if entry.startswith("/") or ".." in PurePosixPath(entry).parts:
                raise ProjectError(
                    f"{folder / '.include'}: {entry!r} is outside the function folder "
                    "(not supported yet)"
                )
            if not any(ch in entry for ch in "*?[") and not (folder / entry).exists():
                raise ProjectError(f"{folder / '.include'}: {entry!r} does not exist")
    return sorted(chosen)


def zip_folder(folder: Path) -> bytes:
    """A deterministic zip of the folder's files (see :func:`folder_files`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in folder_files(folder):
            path = folder / rel
            info = zipfile.ZipInfo(rel, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode bits below mean what they say
            executable = path.stat().st_mode & 0o111
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def read_code(source: Path, binary: bool | None) -> tuple[str, bool]:
    """(code, binary) as an action's exec carries them: text, or base64 when binary."""
    try:
        if source.is_dir():
            if not folder_files(source):
                raise ProjectError(f"{source}: the folder has no files to deploy")
            return base64.b64encode(zip_folder(source)).decode("ascii"), True
        data = source.read_bytes()
    except OSError as exc:
        raise ProjectError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if binary is None:
        binary = source.suffix.lower() in {".zip", ".jar"}
    if binary:
        return base64.b64encode(data).decode("ascii"), True
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{source}: not UTF-8 text (set binary: true for binary code)") from exc
