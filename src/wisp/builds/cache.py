"""The build cache: dependency installs, content-addressed and checked when used.

``objects/<sha256>/`` holds a tree named by the digest of its content (every path,
its type, executable bit, and the bytes or link target); ``refs/<kind>/<key>`` maps
what decided an install (the requirements, package.json and lock) to such a digest.
Only the platform writes here: it copies a build's output in after the build has
ended, as its own files, read-only to everyone else. Builds see the cache read-only.
Every use recomputes the digest: a tree changed on disk (poisoned, or corrupted) is
removed and the install is done afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("wisp.builds")

LEGACY = ("pip", "npm", "go")  # the old layout: folders builds could write


class CacheError(Exception):
    """A build's output that cannot be cached (a fifo, a device, ...)."""


def tree_digest(root: Path) -> str:
    """sha256 over the tree's paths, types, executable bits and contents; symlinks are
    never followed."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        h.update(f"d {rel}\0".encode())
        linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + linked):
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            entry = os.path.join(rel, name)
            if stat.S_ISLNK(info.st_mode):
                h.update(f"l {entry}\0{os.readlink(path)}\0".encode())
            elif stat.S_ISREG(info.st_mode):
                executable = "x" if info.st_mode & 0o111 else "-"
                h.update(f"f {entry} {executable}\0".encode())
                h.update(_file_digest(path))
            else:
                raise CacheError(f"{entry} is not a regular file, folder or symlink")
    return h.hexdigest()


def _file_digest(path: str) -> bytes:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").digest()


def copy_tree(source: Path, target: Path) -> None:
    """Copy regular files, folders and symlinks (never followed) as this process's own
    files: folders 0755, files 0755 or 0644 by their executable bit."""
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        for name in sorted(dirnames + filenames):
            src = Path(dirpath) / name
            dst = target / rel / name
            info = os.lstat(src)
            if stat.S_ISLNK(info.st_mode):
                with contextlib.suppress(FileNotFoundError):
                    dst.unlink()
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISDIR(info.st_mode):
                dst.mkdir(mode=0o755, exist_ok=True)
                os.chmod(dst, 0o755)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
                os.chmod(dst, 0o755 if info.st_mode & 0o111 else 0o644)
                # Compiled .pyc files name their source's mtime: keep it, or every cold
                # start recompiles the dependencies (a bundle is read-only).
                os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
            else:
                raise CacheError(f"{rel / name} is not a regular file, folder or symlink")


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.refs = root / "refs"

    def prepare(self) -> None:
        for folder, mode in ((self.root, 0o755), (self.objects, 0o755), (self.refs, 0o700)):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, mode)
        for name in LEGACY:
            shutil.rmtree(self.root / name, ignore_errors=True)

    def _ref(self, kind: str, key: str) -> Path:
        return self.refs / kind / key

    def lookup(self, kind: str, key: str) -> tuple[Path | None, str]:
        """(the verified tree, "") when cached; (None, why) when it failed its check;
        (None, "") when there is none."""
        try:
            digest = self._ref(kind, key).read_text().strip()
        except OSError:
            return None, ""
        tree = self.objects / digest
        if len(digest) != 64 or not tree.is_dir():
            self._ref(kind, key).unlink(missing_ok=True)
            return None, ""
        try:
            actual = tree_digest(tree)
        except (OSError, CacheError) as exc:
            actual = f"unreadable ({exc})"
        if actual == digest:
            return tree, ""
        log.warning("build cache entry %s failed its check (now %s): removed", digest, actual)
        self._ref(kind, key).unlink(missing_ok=True)
        shutil.rmtree(tree, ignore_errors=True)
        return None, f"the cached install {digest[:12]} failed its check (changed on disk)"

    def store(self, kind: str, key: str, tree: Path) -> Path:
        """Copy a finished build's ``tree`` in and point ``kind/key`` at it."""
        staging = Path(tempfile.mkdtemp(dir=self.objects, prefix=".in-"))
        try:
            copy_tree(tree, staging)
            digest = tree_digest(staging)
            target = self.objects / digest
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():  # not another build's identical tree
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        ref = self._ref(kind, key)
        ref.parent.mkdir(mode=0o700, exist_ok=True)
        temporary = ref.with_name(f".{ref.name}.{os.getpid()}.{id(tree)}")
        temporary.write_text(digest)
        os.replace(temporary, ref)
        return target
