"""Multi-file functions: each zip is unpacked once per code digest and shared read-only."""

from __future__ import annotations

import base64
import binascii
import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from wisp.errors import BadRequest


class BundleError(BadRequest):
    code = "bad_bundle"


FALLBACK_ROOT = Path("/var/lib/wisp/bundles")
# Instances get private, empty copies of these: bundles there would be invisible.
MASKED = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))


def bundle_root(data_dir: Path) -> Path:
    """``<data-dir>/bundles`` when sandbox uids can reach it, else a shared fallback.

    A data dir under a private home (``/root`` is 0700) cannot be traversed by the
    unprivileged uids instances run as, and one under /tmp is hidden from them by
    their private /tmp, so their bundles live elsewhere.
    """
    preferred = data_dir.resolve() / "bundles"
    if os.geteuid() != 0:
        return preferred
    masked = any(preferred.is_relative_to(m) for m in MASKED)
    if all_traversable(preferred.parent) and not masked:
        return preferred
    return FALLBACK_ROOT


def all_traversable(path: Path) -> bool:
    for part in [path, *path.parents]:
        try:
            if part.exists() and not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


class BundleCache:
    """``<data-dir>/bundles/<digest>/``: directories 0755 and files 0644 so sandbox uids
    can read them, under a parent (0311) they can traverse but not list."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def prepare(self) -> None:
        old = os.umask(0o022)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        finally:
            os.umask(old)
        # Sandboxes traverse it but none may list it (no read bit even for the owner: without
        # root, instances run as the server's own uid inside their user namespace).
        os.chmod(self.root, 0o311)

    def unpack(self, digest: str, code_b64: str) -> str:
        """Path of the unpacked bundle (blocking: call from a thread)."""
        target = self.root / digest
        if target.is_dir():
            return str(target)
        try:
            data = base64.b64decode(code_b64, validate=False)
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (binascii.Error, ValueError, zipfile.BadZipFile) as exc:
            raise BundleError(f"the code is not a valid zip archive: {exc}") from exc
        total = sum(info.file_size for info in archive.infolist())
        if total > self.max_bytes:
            raise BundleError(
                f"the unpacked bundle is {total} bytes, over the limit of {self.max_bytes}"
            )
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".unpack-"))
        try:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise BundleError(f"the zip entry {info.filename!r} escapes the bundle")
                dest = staging.joinpath(*name.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                os.chmod(dest, mode)
            for dirpath, _, _ in os.walk(staging):
                os.chmod(dirpath, 0o755)
            os.rename(staging, target)
        except FileExistsError:
            shutil.rmtree(staging, ignore_errors=True)  # another thread unpacked it first
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if target.is_dir():
                return str(target)
            raise BundleError(f"the bundle could not be unpacked: {exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return str(target)
