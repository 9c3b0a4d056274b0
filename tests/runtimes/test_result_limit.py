"""Every launcher frames a result so that the server's limit (``WISP_RESULT_MAX``) is
the result's own size: a result of exactly the limit passes, one byte more is refused
from the reply's length word, before the server reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtimes.conftest import Invoke, kind_of, make_target, make_zip
from wisp.config import Limits, Settings
from wisp.invoker.base import Target
from wisp.models import DEVELOPER_ERROR, SUCCESS
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

RESULT_MAX = 64 * 1024
AT_LIMIT = RESULT_MAX - len('{"x":""}')  # the length of x that makes the result RESULT_MAX

CODE = {
    "python": "def main(args):\n    return {'x': 'a' * args['n']}\n",
    "nodejs": "function main(args) {\n  return {x: 'a'.repeat(args.n)};\n}\n",
    "php": "<?php\nfunction main(array $args): array {\n"
    "    return ['x' => str_repeat('a', $args['n'])];\n}\n",
    "go": 'package main\n\nimport "strings"\n\n'
    "func Main(args map[string]interface{}) map[string]interface{} {\n"
    '\treturn map[string]interface{}{"x": strings.Repeat("a", int(args["n"].(float64)))}\n}\n',
}
# The binary runtime's line protocol, from a shell: N comes from the environment.
EXEC_SH = """#!/bin/sh
while read -r line; do
  printf '{"x":"%s"}\\n' "$(head -c "$N" /dev/zero | tr '\\0' a)" >&3
done
"""


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(
        data_dir=tmp_path, pool_memory_mb=2048, stem_cells=1, limits=Limits(result_max=RESULT_MAX)
    )
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    yield platform
    await platform.stop()


def target(platform: Platform, family: str, n: int) -> Target:
    name = f"{family}-{n}"
    if family == "binary":
        bundle = make_zip({"exec": EXEC_SH}, executable=("exec",))
        return make_target("binary:1", bundle, name=name, env={"N": str(n)})
    kind = kind_of(family)
    made = make_target(kind, CODE[family], name=name)
    if family == "go":
        builder = platform.builder
        assert builder is not None
        built = builder.build(made.action.exec, RuntimeTable(discover()).resolve(kind))
        assert built is not None
        made.action.exec.build = built.name
    return made


@pytest.mark.parametrize("family", ["python", "nodejs", "php", "binary", "go"])
async def test_a_result_of_exactly_the_limit_passes_and_one_byte_more_is_refused(
    family: str, platform: Platform, invoke: Invoke
) -> None:
    at = await invoke(target(platform, family, AT_LIMIT), {"n": AT_LIMIT})
    assert at.status_code == SUCCESS, (at.result, at.logs)
    assert at.result == {"x": "a" * AT_LIMIT} and at.result_size == RESULT_MAX
    over_target = target(platform, family, AT_LIMIT + 1)
    over = await invoke(over_target, {"n": AT_LIMIT + 1})
    assert over.status_code == DEVELOPER_ERROR
    assert over.result == {
        "error": "The action produced a response that exceeded the allowed length: "
        f"{RESULT_MAX + 1} > {RESULT_MAX} bytes."
    }
    action = over_target.action
    key = (action.namespace, action.package, action.name, action.version)
    assert platform.invoker.pool.instances(key) == 0  # type: ignore[attr-defined]  # killed
    assert platform.invoker.pool.instances(  # type: ignore[attr-defined]
        (action.namespace, action.package, f"{family}-{AT_LIMIT}", action.version)
    ) == 1  # the one at the limit is kept warm
