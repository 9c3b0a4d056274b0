"""Real sandboxes for every runtime kind, and helpers to build invoke targets.

A toolchain a test needs (node, go, php) that is missing skips the test locally
and fails it in CI: scripts/test installs them there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.models import Action, ActionLimits, Activation, Exec
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

Invoke = Callable[..., Awaitable[Activation]]


def kind_of(family: str) -> str:
    """The host's kind for a family, or skip (fail under CI) when it is not installed."""
    try:
        return RuntimeTable(discover()).resolve(f"{family}:default").kind
    except Exception:
        message = f"no {family} toolchain on this host"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_target(
    kind: str,
    code: str | bytes,
    *,
    name: str = "fn",
    package: str = "default",
    main: str = "main",
    timeout: int = 3000,
    memory: int = 256,
    logs: int = 1024,
    version: str = "0.0.1",
    env: dict[str, str] | None = None,
    build: str = "",
) -> Target:
    binary = isinstance(code, bytes)
    text = base64.b64encode(code).decode() if isinstance(code, bytes) else code
    digest = hashlib.sha256(f"{kind}\0{main}\0{text}".encode()).hexdigest()
    action = Action(
        namespace="guest",
        package=package,
        name=name,
        exec=Exec(kind=kind, code=text, binary=binary, main=main, digest=digest),
        limits=ActionLimits(timeout=timeout, memory=memory, logs=logs),
        version=version,
    )
    return Target(action=action, parameters={}, env=dict(env or {}))


def make_zip(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if path in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def annotation(record: Activation, key: str) -> Any:
    return next((a["value"] for a in record.annotations if a["key"] == key), None)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(data_dir=tmp_path, pool_memory_mb=2048, stem_cells=1, keepalive=60)
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
def invoke(platform: Platform) -> Invoke:
    async def run(target: Target, params: dict[str, Any] | None = None) -> Activation:
        invocation = platform.invoker.submit(target, dict(params or {}), subject="guest")
        return await invocation.done

    return run
