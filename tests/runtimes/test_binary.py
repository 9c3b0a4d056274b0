"""The binary runtime (any executable, line protocol) and Go built into it at deploy time."""

from __future__ import annotations

import pytest

from tests.runtimes.conftest import Invoke, kind_of, make_target, make_zip
from wisp.builds import BuildFailed
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover

ECHO_SH = """#!/bin/sh
# one request per line in; one reply per line out on fd 3
while read -r line; do
  echo "got: $line"
  echo "{\\"echo\\": $line, \\"secret\\": \\"$SECRET\\"}" >&3
done
"""

GO_MAIN = """package main

import (
\t"fmt"
\t"os"
)

func Main(args map[string]interface{}) map[string]interface{} {
\tname, ok := args["name"].(string)
\tif !ok {
\t\tname = "stranger"
\t}
\tif name == "panic" {
\t\tpanic("asked to")
\t}
\tfmt.Println("hello from go", name)
\treturn map[string]interface{}{"body": "Hello " + name + "!", "id": os.Getenv("__OW_ACTIVATION_ID")}
}
"""


async def test_executable_speaks_the_line_protocol(invoke: Invoke) -> None:
    bundle = make_zip({"exec": ECHO_SH}, executable=("exec",))
    target = make_target("binary:1", bundle, env={"SECRET": "s3"})
    record = await invoke(target, {"a": 1})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result["echo"]["value"] == {"a": 1}
    assert record.result["echo"]["activation_id"] == record.activation_id
    assert record.result["secret"] == "s3"
    assert any("got: " in line and "stdout" in line for line in record.logs)
    again = await invoke(target, {"a": 2})  # the same warm process
    assert again.result["echo"]["value"] == {"a": 2}


async def test_zip_without_exec_fails_init(invoke: Invoke) -> None:
    record = await invoke(make_target("binary:1", make_zip({"run.sh": "x"})))
    assert record.status_code == DEVELOPER_ERROR
    assert "executable file named exec" in record.result["error"]


async def test_executable_that_exits_is_a_crash(invoke: Invoke) -> None:
    bundle = make_zip({"exec": "#!/bin/sh\nread line\nexit 4\n"}, executable=("exec",))
    record = await invoke(make_target("binary:1", bundle))
    assert record.status_code == DEVELOPER_ERROR
    assert "exited unexpectedly" in record.result["error"]
    assert any("exited with status 4" in line for line in record.logs)


async def test_go_function_is_built_at_deploy_and_runs(platform: Platform, invoke: Invoke) -> None:
    kind = kind_of("go")
    runtime = RuntimeTable(discover()).resolve(kind)
    builder = platform.builder
    assert builder is not None
    target = make_target(kind, GO_MAIN)
    result = builder.build(target.action.exec, runtime)
    assert result is not None  # (cached when an earlier run shared the bundles root)
    target.action.exec.build = result.name
    record = await invoke(target, {"name": "Ada"})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result == {"body": "Hello Ada!", "id": record.activation_id}
    assert any("hello from go Ada" in line for line in record.logs)
    panicked = await invoke(target, {"name": "panic"})
    assert panicked.status_code == APPLICATION_ERROR
    assert panicked.result == {"error": "panic: asked to"}
    assert builder.build(target.action.exec, runtime).cached  # type: ignore[union-attr]


async def test_go_compile_error_fails_the_build(platform: Platform) -> None:
    kind = kind_of("go")
    runtime = RuntimeTable(discover()).resolve(kind)
    builder = platform.builder
    assert builder is not None
    bad = make_target(kind, "package main\n\nfunc Main(args map[string]interface{}) map[string]interface{} {\n\treturn nope\n}\n")
    with pytest.raises(BuildFailed) as caught:
        builder.build(bad.action.exec, runtime)
    assert "undefined: nope" in caught.value.message
