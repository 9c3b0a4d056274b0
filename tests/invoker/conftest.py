from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest

from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.models import Action, ActionLimits, Exec
from wisp.server import build_platform
from wisp.store.memory import MemoryStore


def make_target(
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
    parameters: dict[str, object] | None = None,
) -> Target:
    binary = isinstance(code, bytes)
    text = base64.b64encode(code).decode() if isinstance(code, bytes) else code
    digest = hashlib.sha256(f"python:3.11{main}{text}".encode()).hexdigest()
    action = Action(
        namespace="guest",
        package=package,
        name=name,
        exec=Exec(kind="python:3.11", code=text, binary=binary, main=main, digest=digest),
        limits=ActionLimits(timeout=timeout, memory=memory, logs=logs),
        version=version,
    )
    return Target(action=action, parameters=dict(parameters or {}), env=dict(env or {}))


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


@pytest.fixture
async def platform(tmp_path, server_umask):
    settings = Settings(data_dir=tmp_path, pool_memory_mb=2048, stem_cells=1, keepalive=60)
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
def invoke(platform):
    async def run(target: Target, params: dict[str, object] | None = None):
        invocation = platform.invoker.submit(target, dict(params or {}), subject="guest")
        return await invocation.done

    return run
