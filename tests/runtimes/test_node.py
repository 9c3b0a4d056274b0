"""The Node.js runtime over real sandboxes: a confined stem cell that execs the launcher."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.runtimes.conftest import Invoke, annotation, kind_of, make_target, make_zip
from wisp.invoker.retries import Backoff, InvokeConfig
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS
from wisp.sandbox.cgroups import CgroupPool


@pytest.fixture
def node() -> str:
    return kind_of("nodejs")


async def test_openwhisk_style_unexported_main_with_logs(node: str, invoke: Invoke) -> None:
    code = "function main(params) {\n  console.log('hello', params.name);\n  console.error('to stderr');\n  return {greeting: 'Hello ' + params.name};\n}\n"
    record = await invoke(make_target(node, code), {"name": "Ada"})
    assert record.status_code == SUCCESS, record.result
    assert record.result == {"greeting": "Hello Ada"}
    assert [line.split(" ", 1)[1] for line in record.logs] == [
        "stdout: hello Ada",
        "stderr: to stderr",
    ]
    assert annotation(record, "kind") == node
    assert annotation(record, "initTime") is not None


@pytest.mark.parametrize(
    "code",
    [
        "exports.main = (args) => ({style: 'exports', n: args.n});\n",
        "module.exports = function (args) { return {style: 'module.exports', n: args.n}; };\n",
        "function main(args) { return {style: 'do', n: args.n}; }\nmodule.exports.main = main;\n",
        "export function main(args) { return {style: 'esm', n: args.n}; }\n",
        "import { EOL } from 'node:os';\nexport default function (args) { return {style: 'default', n: args.n, eol: EOL.length}; }\n",
    ],
    ids=["exports.main", "module.exports", "module.exports.main", "esm", "esm-default"],
)
async def test_handler_export_styles(node: str, invoke: Invoke, code: str) -> None:
    record = await invoke(make_target(node, code), {"n": 7})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result["n"] == 7


async def test_promise_and_async_handlers(node: str, invoke: Invoke) -> None:
    code = "exports.main = async (args) => { await new Promise(r => setTimeout(r, 5)); return {ok: true}; };\n"
    assert (await invoke(make_target(node, code))).result == {"ok": True}
    code = "function main() { return new Promise(resolve => setTimeout(() => resolve({later: 1}), 5)); }\n"
    assert (await invoke(make_target(node, code, name="later"))).result == {"later": 1}


async def test_digitalocean_handler_gets_context(node: str, invoke: Invoke) -> None:
    code = (
        "export function main(event, context) {\n"
        "  return {id: context.activationId, snake: context.activation_id, fn: context.functionName,\n"
        "          version: context.functionVersion, ns: context.namespace, host: context.apiHost,\n"
        "          left: context.getRemainingTimeInMillis(), deadline: context.deadline, event};\n"
        "}\n"
    )
    target = make_target(node, code, name="ctx", package="pkg", version="0.0.3")
    record = await invoke(target, {"a": 1})
    result = record.result
    assert result["id"] == result["snake"] == record.activation_id
    assert result["fn"] == "pkg/ctx" and result["version"] == "0.0.3" and result["ns"] == "guest"
    assert 0 < result["left"] <= 3000 and result["deadline"] > record.start
    assert result["host"].startswith("http://")
    assert result["event"] == {"a": 1}


async def test_warm_reuse_keeps_module_state(node: str, invoke: Invoke) -> None:
    target = make_target(node, "let n = 0;\nfunction main() { n += 1; return {n}; }\n")
    first, second = await invoke(target), await invoke(target)
    assert (first.result, second.result) == ({"n": 1}, {"n": 2})
    assert annotation(first, "initTime") is not None
    assert annotation(second, "initTime") is None


async def test_environment_is_clean_and_carries_ow_variables(node: str, invoke: Invoke) -> None:
    code = (
        "function main() {\n"
        "  const keys = ['__OW_ACTIVATION_ID', '__OW_ACTION_NAME', '__OW_NAMESPACE', '__OW_DEADLINE',\n"
        "                '__OW_API_HOST', 'SECRET', 'HOME', 'PATH', 'NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'];\n"
        "  const out = {};\n"
        "  for (const k of keys) out[k] = process.env[k] === undefined ? null : process.env[k];\n"
        "  return out;\n"
        "}\n"
    )
    record = await invoke(make_target(node, code, env={"SECRET": "s3"}))
    env = record.result
    assert env["__OW_ACTIVATION_ID"] == record.activation_id
    assert env["__OW_ACTION_NAME"] == "/guest/fn"
    assert env["__OW_NAMESPACE"] == "guest"
    assert int(env["__OW_DEADLINE"]) > record.start
    assert env["SECRET"] == "s3"
    assert env["HOME"] is env["PATH"] is env["NODE_EXTRA_CA_CERTS"] is env["NODE_OPTIONS"] is None


async def test_custom_entry_point(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, "exports.handler = () => ({h: 1});\n", main="handler"))
    assert record.result == {"h": 1}


async def test_syntax_error_fails_init(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, "function main( {\n  return {};\n}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert record.result["error"].startswith("Initialization has failed: syntax error")
    assert any("SyntaxError" in line for line in record.logs)


async def test_missing_entry_point_fails_init(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, "exports.other = () => ({});\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "exports no function named 'main'" in record.result["error"]


async def test_exception_is_developer_error_and_instance_survives(
    node: str, invoke: Invoke
) -> None:
    code = "let n = 0;\nfunction main(a) {\n  n += 1;\n  if (a.boom) throw new TypeError('bad input');\n  return {n};\n}\n"
    target = make_target(node, code)
    record = await invoke(target, {"boom": True})
    assert record.status_code == DEVELOPER_ERROR
    assert record.result == {"error": "TypeError: bad input"}
    joined = "\n".join(record.logs)
    assert "TypeError: bad input" in joined and "[eval]" not in joined  # no launcher frames
    again = await invoke(target)
    assert again.result == {"n": 2}  # same warm instance


async def test_error_results_are_application_errors(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, "function main() { return {error: 'nope'}; }\n"))
    assert (record.status_code, record.result) == (APPLICATION_ERROR, {"error": "nope"})
    code = "function main() { return Promise.reject({code: 42}); }\n"
    record = await invoke(make_target(node, code, name="rejects"))
    assert (record.status_code, record.result) == (APPLICATION_ERROR, {"error": {"code": 42}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 'text';", "returned string, not an object"),
        ("return [1];", "returned an array, not an object"),
        ("return undefined;", "returned undefined, not an object"),
        ("const o = {}; o.self = o; return o;", "not JSON serializable"),
    ],
)
async def test_invalid_results(node: str, invoke: Invoke, body: str, message: str) -> None:
    record = await invoke(make_target(node, f"function main() {{ {body} }}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert message in record.result["error"]


async def test_timeout_kills_the_instance(node: str, invoke: Invoke) -> None:
    target = make_target(node, "function main() { for (;;) {} }\n", timeout=300)
    record = await invoke(target)
    assert record.status_code == DEVELOPER_ERROR
    assert "exceeded its time limits of 300 milliseconds" in record.result["error"]
    assert annotation(record, "timeout") is True


async def test_stray_async_error_does_not_kill_the_instance(node: str, invoke: Invoke) -> None:
    code = "let n = 0;\nfunction main() { n += 1; setTimeout(() => { throw new Error('late'); }, 1); return {n}; }\n"
    target = make_target(node, code)
    await invoke(target)
    await invoke(target)
    record = await invoke(target)
    assert record.result == {"n": 3}


async def test_process_exit_is_a_crash(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, "function main() { process.exit(3); }\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "exited unexpectedly" in record.result["error"]


@pytest.mark.skipif(not CgroupPool(enabled=True).available, reason="needs cgroup memory limits")
async def test_memory_limit(node: str, invoke: Invoke) -> None:
    code = "const keep = [];\nfunction main() { for (;;) keep.push(Buffer.alloc(1 << 20, 1)); }\n"
    record = await invoke(make_target(node, code, memory=128, timeout=20000))
    assert record.status_code == DEVELOPER_ERROR
    assert "exceeded its memory limit of 128 MB" in record.result["error"]


async def test_zip_with_package_json_main_and_node_modules(node: str, invoke: Invoke) -> None:
    bundle = make_zip(
        {
            "package.json": '{"name": "fn", "main": "lib/handler.js"}',
            "lib/handler.js": "const greet = require('greet');\nexports.main = (a) => ({text: greet(a.name), cwd: process.cwd().length > 0});\n",
            "node_modules/greet/package.json": '{"name": "greet", "main": "index.js"}',
            "node_modules/greet/index.js": "module.exports = (n) => 'Hi ' + n;\n",
        }
    )
    record = await invoke(make_target(node, bundle), {"name": "Ada"})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result == {"text": "Hi Ada", "cwd": True}


async def test_esm_zip(node: str, invoke: Invoke) -> None:
    bundle = make_zip(
        {
            "package.json": '{"type": "module"}',
            "index.js": "import { shout } from './util.js';\nexport function main(a) { return {text: shout(a.name)}; }\n",
            "util.js": "export const shout = (s) => s.toUpperCase();\n",
        }
    )
    record = await invoke(make_target(node, bundle), {"name": "ada"})
    assert record.result == {"text": "ADA"}, record.logs


async def test_zip_without_entry_file_fails_init(node: str, invoke: Invoke) -> None:
    record = await invoke(make_target(node, make_zip({"package.json": '{"main": "gone.js"}'})))
    assert record.status_code == DEVELOPER_ERROR
    assert "failed to load" in record.result["error"]


async def test_a_retried_activation_sees_its_attempt(node: str, invoke: Invoke) -> None:
    code = (
        "export function main(event, context) {\n"
        "  if (process.env.__OW_ATTEMPT === '1') throw new Error('first run fails');\n"
        "  return {env: process.env.__OW_ATTEMPT, ctx: context.attempt};\n"
        "}\n"
    )
    config = InvokeConfig(
        maximum_retry_attempts=2,
        backoff=Backoff(initial=0.1, jitter=0.0),
        retry_on=frozenset({"internal", "developer"}),
    )
    target = replace(make_target(node, code, name="retried"), invoke_config=config)
    record = await invoke(target)  # not blocking: retried by its config
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result == {"env": "2", "ctx": 2}
    assert annotation(record, "attempt") == 2
    [first] = annotation(record, "attempts")
    assert first["status"] == "action developer error"
