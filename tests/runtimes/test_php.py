"""The PHP runtime over real sandboxes: a confined stem cell that execs ``php -r``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.runtimes.conftest import Invoke, annotation, kind_of, make_target, make_zip
from wisp.invoker.retries import Backoff, InvokeConfig
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox.cgroups import CgroupPool


@pytest.fixture
def php() -> str:
    return kind_of("php")


def test_php_kind_is_listed_when_php_is_installed(php: str) -> None:
    table = RuntimeTable(discover())
    runtime = table.resolve("php:default")
    assert runtime.kind == php and php.startswith("php:8.")
    assert table.by_extension(".php") is runtime
    # The launcher travels on the command line: a confined instance may not see it.
    assert runtime.stem[-2] == "-r" and "namespace Wisp;" in runtime.stem[-1]
    assert not runtime.stem[-1].startswith("<?php")


async def test_openwhisk_style_main_with_logs(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\n"
        "declare(strict_types=1);\n\n"
        "function main(array $args): array\n{\n"
        "    echo 'hello ', $args['name'], \"\\n\";\n"
        '    fwrite(STDERR, "to stderr\\n");\n'
        "    return ['greeting' => 'Hello ' . $args['name']];\n"
        "}\n"
    )
    record = await invoke(make_target(php, code), {"name": "Ada"})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result == {"greeting": "Hello Ada"}
    assert [line.split(" ", 1)[1] for line in record.logs] == [
        "stdout: hello Ada",
        "stderr: to stderr",
    ]
    assert annotation(record, "kind") == php
    assert annotation(record, "initTime") is not None


async def test_digitalocean_handler_gets_context(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\n"
        "function main(array $event, object $context): array {\n"
        "    return ['id' => $context->activationId, 'snake' => $context->activation_id,\n"
        "            'fn' => $context->functionName, 'version' => $context->functionVersion,\n"
        "            'ns' => $context->namespace, 'host' => $context->apiHost,\n"
        "            'left' => $context->getRemainingTimeInMillis(),\n"
        "            'deadline' => $context->deadline, 'event' => $event];\n"
        "}\n"
    )
    target = make_target(php, code, name="ctx", package="pkg", version="0.0.3")
    record = await invoke(target, {"a": 1})
    result = record.result
    assert record.status_code == SUCCESS, (result, record.logs)
    assert result["id"] == result["snake"] == record.activation_id
    assert result["fn"] == "pkg/ctx" and result["version"] == "0.0.3" and result["ns"] == "guest"
    assert 0 < result["left"] <= 3000 and result["deadline"] > record.start
    assert result["host"].startswith("http://")
    assert result["event"] == {"a": 1}


async def test_user_code_may_define_any_global_name(php: str, invoke: Invoke) -> None:
    # The launcher keeps to its own namespace: these would otherwise clash with it.
    code = (
        "<?php\nclass Context {}\nclass Launcher {}\nfunction describe() { return 1; }\n"
        "function main(array $a): array { return ['ok' => describe()]; }\n"
    )
    record = await invoke(make_target(php, code))
    assert record.result == {"ok": 1}, record.logs


async def test_warm_reuse_keeps_state_and_env(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\n$n = 0;\n"
        "function main(array $a): array {\n"
        "    global $n; $n++;\n"
        "    return ['n' => $n, 'id' => getenv('__OW_ACTIVATION_ID'), 'secret' => getenv('SECRET'),\n"
        "            'name' => getenv('__OW_ACTION_NAME'), 'path' => getenv('PATH')];\n"
        "}\n"
    )
    target = make_target(php, code, env={"SECRET": "s3"})
    first, second = await invoke(target), await invoke(target)
    assert (first.result["n"], second.result["n"]) == (1, 2)
    assert first.result["id"] == first.activation_id
    assert second.result["id"] == second.activation_id
    assert first.result["secret"] == "s3" and first.result["name"] == "/guest/fn"
    assert first.result["path"] is False  # nothing of the host's environment
    assert annotation(first, "initTime") is not None
    assert annotation(second, "initTime") is None


async def test_custom_entry_point_and_empty_result(php: str, invoke: Invoke) -> None:
    code = "<?php\nfunction handler(array $a): array { return []; }\n"
    record = await invoke(make_target(php, code, main="handler"))
    assert (record.status_code, record.result) == (SUCCESS, {})


async def test_syntax_error_fails_init(php: str, invoke: Invoke) -> None:
    record = await invoke(make_target(php, "<?php\nfunction main( {\n  return [];\n}\n"))
    assert record.status_code == DEVELOPER_ERROR
    error = record.result["error"]
    assert error.startswith("Initialization has failed: syntax error in the code: syntax error")
    assert error.endswith("(line 2)")
    assert any("ParseError" in line for line in record.logs)


async def test_fatal_error_at_load_fails_init_with_its_message(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\nfunction strlen($s) { return 0; }\nfunction main(array $a): array { return []; }\n"
    )
    record = await invoke(make_target(php, code))
    assert record.status_code == DEVELOPER_ERROR
    assert "Cannot redeclare strlen()" in record.result["error"]


async def test_missing_entry_point_fails_init(php: str, invoke: Invoke) -> None:
    record = await invoke(make_target(php, "<?php\nfunction other() { return []; }\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "defines no function named 'main'" in record.result["error"]


async def test_exception_is_developer_error_and_instance_survives(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\n$n = 0;\n"
        "function main(array $a): array {\n"
        "    global $n; $n++;\n"
        "    if (!empty($a['boom'])) { throw new InvalidArgumentException('bad input'); }\n"
        "    return ['n' => $n];\n"
        "}\n"
    )
    target = make_target(php, code)
    record = await invoke(target, {"boom": True})
    assert record.status_code == DEVELOPER_ERROR
    assert record.result == {"error": "InvalidArgumentException: bad input"}
    joined = "\n".join(record.logs)
    assert "InvalidArgumentException: bad input" in joined and "index.php:5" in joined
    assert "Command line code" not in joined  # no launcher frames
    again = await invoke(target)
    assert again.result == {"n": 2}  # same warm instance


async def test_error_results_are_application_errors(php: str, invoke: Invoke) -> None:
    code = "<?php\nfunction main(array $a): array { return ['error' => 'nope']; }\n"
    record = await invoke(make_target(php, code))
    assert (record.status_code, record.result) == (APPLICATION_ERROR, {"error": "nope"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 'text';", "returned string, not an array"),
        ("return [1, 2];", "returned a list, not an associative array"),
        ("return null;", "returned null, not an array"),
        ("return ['bad' => \"\\xff\"];", "not JSON serializable"),
    ],
)
async def test_invalid_results(php: str, invoke: Invoke, body: str, message: str) -> None:
    record = await invoke(make_target(php, f"<?php\nfunction main($a) {{ {body} }}\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert message in record.result["error"]


async def test_timeout_kills_the_instance(php: str, invoke: Invoke) -> None:
    target = make_target(php, "<?php\nfunction main($a) { for (;;) {} }\n", timeout=300)
    record = await invoke(target)
    assert record.status_code == DEVELOPER_ERROR
    assert "exceeded its time limits of 300 milliseconds" in record.result["error"]
    assert annotation(record, "timeout") is True


async def test_exit_is_a_crash(php: str, invoke: Invoke) -> None:
    record = await invoke(make_target(php, "<?php\nfunction main($a) { exit(3); }\n"))
    assert record.status_code == DEVELOPER_ERROR
    assert "exited unexpectedly" in record.result["error"]


@pytest.mark.skipif(not CgroupPool(enabled=True).available, reason="needs cgroup memory limits")
async def test_memory_limit_is_the_cgroups(php: str, invoke: Invoke) -> None:
    code = "<?php\n$keep = [];\nfunction main($a) { global $keep; for (;;) { $keep[] = str_repeat('x', 1 << 20); } }\n"
    record = await invoke(make_target(php, code, memory=128, timeout=20000))
    assert record.status_code == DEVELOPER_ERROR
    assert "exceeded its memory limit of 128 MB" in record.result["error"]


async def test_zip_with_index_php_and_composer_autoload(php: str, invoke: Invoke) -> None:
    bundle = make_zip(
        {
            "index.php": "<?php\nfunction main(array $a): array {\n"
            "    return ['text' => Greeter::greet($a['name']), 'cwd' => basename(getcwd())];\n}\n",
            "vendor/autoload.php": "<?php\nspl_autoload_register(function ($c) {\n"
            "    require __DIR__ . '/' . $c . '.php';\n});\n",
            "vendor/Greeter.php": "<?php\nclass Greeter {\n"
            "    static function greet(string $n): string { return 'Hi ' . $n; }\n}\n",
        }
    )
    target = make_target(php, bundle)
    record = await invoke(target, {"name": "Ada"})
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result["text"] == "Hi Ada"
    assert record.result["cwd"] == target.action.exec.digest  # the unpacked bundle


async def test_zip_without_index_php_fails_init(php: str, invoke: Invoke) -> None:
    record = await invoke(make_target(php, make_zip({"main.php": "<?php\n"})))
    assert record.status_code == DEVELOPER_ERROR
    assert "the zip has no index.php" in record.result["error"]


async def test_a_retried_activation_sees_its_attempt(php: str, invoke: Invoke) -> None:
    code = (
        "<?php\n"
        "function main(array $event, object $context): array\n{\n"
        "    if (getenv('__OW_ATTEMPT') === '1') {\n"
        "        return ['error' => 'first run fails'];\n"
        "    }\n"
        "    return ['env' => getenv('__OW_ATTEMPT'), 'ctx' => $context->attempt];\n"
        "}\n"
    )
    config = InvokeConfig(
        maximum_retry_attempts=2,
        backoff=Backoff(initial=0.1, jitter=0.0),
        retry_on=frozenset({"internal", "application"}),
    )
    target = replace(make_target(php, code, name="retried"), invoke_config=config)
    record = await invoke(target)  # not blocking: retried by its config
    assert record.status_code == SUCCESS, (record.result, record.logs)
    assert record.result == {"env": "2", "ctx": 2}
    assert annotation(record, "attempt") == 2
