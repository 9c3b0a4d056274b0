"""The invoker over real sandboxes and the Python launcher."""

from __future__ import annotations

import asyncio
import os

from tests.invoker.conftest import make_target, make_zip
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS


def annotation(record, key):
    return next((a["value"] for a in record.annotations if a["key"] == key), None)


async def test_openwhisk_handler_success_with_logs(invoke):
    target = make_target(
        "def main(args):\n    print('hello', args['name'])\n    return {'greeting': 'Hello ' + args['name']}\n"
    )
    record = await invoke(target, {"name": "Ada"})
    assert record.status_code == SUCCESS
    assert record.result == {"greeting": "Hello Ada"}
    assert len(record.logs) == 1
    assert record.logs[0].endswith("stdout: hello Ada")
    assert record.logs[0][:4].isdigit() and "Z stdout" in record.logs[0]
    assert annotation(record, "kind") == "python:3.11"
    assert annotation(record, "path") == "guest/fn"
    assert annotation(record, "initTime") is not None


async def test_warm_reuse_keeps_module_state_and_skips_init(invoke):
    target = make_target(
        "count = 0\ndef main(args):\n    global count\n    count += 1\n    return {'count': count}\n"
    )
    first = await invoke(target)
    second = await invoke(target)
    assert (first.result, second.result) == ({"count": 1}, {"count": 2})
    assert annotation(first, "initTime") is not None
    assert annotation(second, "initTime") is None


async def test_new_version_runs_on_a_fresh_instance(invoke):
    code = "count = 0\ndef main(args):\n    global count\n    count += 1\n    return {'count': count}\n"
    await invoke(make_target(code, version="0.0.1"))
    record = await invoke(make_target(code, version="0.0.2"))
    assert record.result == {"count": 1}


async def test_digitalocean_handler_gets_context(invoke):
    code = (
        "def main(event, context):\n"
        "    return {'id': context.activation_id, 'fn': context.function_name,\n"
        "            'version': context.function_version, 'ns': context.namespace,\n"
        "            'left': context.get_remaining_time_in_millis(), 'host': context.api_host,\n"
        "            'event': event}\n"
    )
    record = await invoke(make_target(code, name="ctx", package="pkg", version="0.0.3"), {"a": 1})
    result = record.result
    assert result["id"] == record.activation_id
    assert result["fn"] == "pkg/ctx" and result["version"] == "0.0.3" and result["ns"] == "guest"
    assert 0 < result["left"] <= 3000
    assert result["event"] == {"a": 1}
    assert result["host"].startswith("http://")


async def test_async_handler(invoke):
    code = "import asyncio\nasync def main(args):\n    await asyncio.sleep(0.01)\n    return {'ok': True}\n"
    record = await invoke(make_target(code))
    assert record.result == {"ok": True}


async def test_ow_environment_and_init_env(invoke):
    code = (
        "import os\n"
        "def main(args):\n"
        "    keys = ['__OW_ACTIVATION_ID', '__OW_ACTION_NAME', '__OW_NAMESPACE', '__OW_DEADLINE',\n"
        "            '__OW_API_HOST', 'SECRET', 'HOME', 'PATH']\n"
        "    return {k: os.environ.get(k) for k in keys}\n"
    )
    record = await invoke(make_target(code, env={"SECRET": "s3"}))
    env = record.result
    assert env["__OW_ACTIVATION_ID"] == record.activation_id
    assert env["__OW_ACTION_NAME"] == "/guest/fn"
    assert env["__OW_NAMESPACE"] == "guest"
    assert int(env["__OW_DEADLINE"]) > record.start
    assert env["SECRET"] == "s3"
    assert env["HOME"] is None and env["PATH"] is None  # the host's environment never leaks in


async def test_bound_parameters_are_overridden_by_request(invoke):
    code = "def main(args):\n    return args\n"
    record = await invoke(make_target(code, parameters={"a": 1, "b": 2}), {"b": 3})
    assert record.result == {"a": 1, "b": 3}


async def test_custom_entry_point(invoke):
    record = await invoke(make_target("def handler(args):\n    return {'h': 1}\n", main="handler"))
    assert record.result == {"h": 1}


async def test_error_result_is_application_error(invoke):
    record = await invoke(make_target("def main(args):\n    return {'error': 'nope'}\n"))
    assert record.status_code == APPLICATION_ERROR
    assert record.result == {"error": "nope"}


async def test_exception_is_developer_error_with_traceback_in_logs(invoke):
    record = await invoke(make_target("def main(args):\n    return 1 / 0\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "ZeroDivisionError" in record.result["error"]
    joined = "\n".join(record.logs)
    assert "Traceback" in joined and "ZeroDivisionError" in joined
    assert "launcher.py" not in joined  # the launcher's own frames are hidden


async def test_instance_survives_an_exception(invoke):
    code = "n = 0\ndef main(args):\n    global n\n    n += 1\n    if args.get('boom'):\n        raise ValueError('x')\n    return {'n': n}\n"
    target = make_target(code)
    await invoke(target, {"boom": True})
    record = await invoke(target)
    assert record.result == {"n": 2}


async def test_non_dict_result_is_reported(invoke):
    record = await invoke(make_target("def main(args):\n    return [1, 2]\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "not a dictionary" in record.result["error"]


async def test_unserializable_result_is_reported(invoke):
    record = await invoke(make_target("def main(args):\n    return {'x': object()}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "JSON" in record.result["error"]


async def test_syntax_error_is_reported_at_init(invoke):
    record = await invoke(make_target("def main(args)\n    return {}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "syntax error" in record.result["error"] and "line 1" in record.result["error"]
    assert any("SyntaxError" in line for line in record.logs)


async def test_missing_entry_point_is_reported_at_init(invoke):
    record = await invoke(make_target("def other(args):\n    return {}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "'main'" in record.result["error"]


async def test_timeout_kills_instance(invoke, platform):
    target = make_target("def main(args):\n    while True:\n        pass\n", timeout=300)
    record = await invoke(target)
    assert record.status_code == DEVELOPER_ERROR
    assert record.result == {"error": "The action exceeded its time limits of 300 milliseconds."}
    assert annotation(record, "timeout") is True
    assert 300 <= record.duration < 2000
    assert platform.invoker.pool.used_mb == 0


async def test_init_time_counts_against_timeout(invoke):
    target = make_target(
        "import time\ntime.sleep(5)\ndef main(args):\n    return {}\n", timeout=300
    )
    record = await invoke(target)
    assert "time limits" in record.result["error"]


async def test_memory_blowup_kills_only_that_instance(invoke):
    hog = make_target(
        "def main(args):\n    x = bytearray(600 * 1024 * 1024)\n    return {'n': len(x)}\n",
        name="hog",
        memory=128,
    )
    record = await invoke(hog)
    assert record.status_code == DEVELOPER_ERROR
    assert "memory limit of 128 MB" in record.result["error"]
    fine = await invoke(make_target("def main(args):\n    return {'ok': 1}\n", name="fine"))
    assert fine.result == {"ok": 1}


async def test_crash_is_reported(invoke):
    record = await invoke(make_target("import os\ndef main(args):\n    os._exit(3)\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "exited unexpectedly" in record.result["error"]


async def test_oversize_result(invoke):
    code = "def main(args):\n    return {'x': 'a' * (2 * 1024 * 1024)}\n"
    record = await invoke(make_target(code))
    assert record.status_code == DEVELOPER_ERROR
    assert "exceeded the allowed length" in record.result["error"]


async def test_logs_truncated_at_limit(invoke):
    code = "def main(args):\n    for i in range(5000):\n        print('x' * 100)\n    return {}\n"
    record = await invoke(make_target(code, logs=10))
    assert record.status_code == SUCCESS
    assert len(record.logs) < 200
    assert "truncated" in record.logs[-1] and "10240 bytes" in record.logs[-1]


async def test_stderr_is_captured(invoke):
    code = "import sys\ndef main(args):\n    print('oops', file=sys.stderr)\n    return {}\n"
    record = await invoke(make_target(code))
    assert record.logs[0].endswith("stderr: oops")


async def test_zip_bundle_with_vendored_package(invoke):
    bundle = make_zip(
        {
            "__main__.py": "import helper\nfrom vendored import shout\ndef main(args):\n    return {'v': shout(helper.NAME)}\n",
            "helper.py": "NAME = 'ada'\n",
            "virtualenv/lib/python3.11/site-packages/vendored/__init__.py": "def shout(s):\n    return s.upper()\n",
        }
    )
    record = await invoke(make_target(bundle))
    assert record.status_code == SUCCESS, record.result
    assert record.result == {"v": "ADA"}


async def test_bad_zip_is_developer_error(invoke):
    record = await invoke(make_target(b"PK\x03\x04 not really a zip"))
    assert record.status_code == DEVELOPER_ERROR
    assert "zip" in record.result["error"]


async def test_concurrent_invocations_use_separate_instances(invoke):
    # A token per process: pids are all 1, each instance having its own pid namespace.
    code = "import time, uuid\nTOKEN = uuid.uuid4().hex\ndef main(args):\n    time.sleep(0.2)\n    return {'pid': TOKEN}\n"
    target = make_target(code)
    records = await asyncio.gather(*(invoke(target) for _ in range(4)))
    assert len({r.result["pid"] for r in records}) == 4


async def test_sandbox_runs_as_unprivileged_uid(invoke):
    code = "import os\ndef main(args):\n    return {'uid': os.getuid(), 'sid': os.getsid(0) == os.getpid()}\n"
    record = await invoke(make_target(code))
    if os.geteuid() == 0:
        assert record.result["uid"] >= 200_000
    assert record.result["sid"] is True


async def test_record_is_readable_right_after(invoke, platform):
    record = await invoke(make_target("def main(args):\n    return {}\n"))
    assert platform.writer.get("guest", record.activation_id) is not None


async def test_max_instances_annotation_caps_instances(invoke, platform):
    code = "import time, uuid\nTOKEN = uuid.uuid4().hex\ndef main(args):\n    time.sleep(0.1)\n    return {'pid': TOKEN}\n"
    target = make_target(code)
    target.action.annotations.append({"key": "max-instances", "value": 1})
    records = await asyncio.gather(*(invoke(target) for _ in range(3)))
    assert all(r.status_code == 0 for r in records), [r.result for r in records]
    assert len({r.result["pid"] for r in records}) == 1
    assert max(annotation(r, "waitTime") for r in records) >= 100
