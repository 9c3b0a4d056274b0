"""When the sandbox refills its stem cells: not during the cold start that took one."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

from wisp.config import Settings
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox.local import EGRESS, REFILL_DELAY, LocalSandbox


class Cell:
    alive = True


def sandbox_with_cells(tmp_path: Path, count: int) -> tuple[LocalSandbox, list[float]]:
    settings = Settings(data_dir=tmp_path, cgroups="off", stem_cells=count)
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
    kind = sandbox.runtimes.spawner.kind
    sandbox.zygotes[kind] = object()  # type: ignore[assignment]
    sandbox.stem_cells[(kind, EGRESS)] = deque(Cell() for _ in range(count))  # type: ignore[misc]
    forks: list[float] = []
    loop = asyncio.get_running_loop()

    async def fork(kind: str, network: str = EGRESS) -> Any:
        forks.append(loop.time())
        return Cell()

    sandbox._fork = fork  # type: ignore[method-assign]
    return sandbox, forks


async def test_refill_waits_while_another_cell_is_ready(tmp_path: Path) -> None:
    sandbox, forks = sandbox_with_cells(tmp_path, 2)
    kind = sandbox.runtimes.spawner.kind
    taken = asyncio.get_running_loop().time()
    await sandbox.spawn(kind)
    for _ in range(5):
        await asyncio.sleep(0)
    assert forks == []  # nothing forked while the cold start loads its code
    await asyncio.sleep(REFILL_DELAY * 4)
    assert len(forks) == 1 and forks[0] - taken >= REFILL_DELAY * 0.9
    assert len(sandbox.stem_cells[(kind, EGRESS)]) == 2


async def test_taking_the_last_cell_refills_at_once(tmp_path: Path) -> None:
    sandbox, forks = sandbox_with_cells(tmp_path, 1)
    kind = sandbox.runtimes.spawner.kind
    await sandbox.spawn(kind)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(forks) == 1  # the next request would otherwise fork on its own path
    assert len(sandbox.stem_cells[(kind, EGRESS)]) == 1
