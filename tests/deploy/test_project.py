from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import MakeProject
from wisp.deploy.errors import ProjectError
from wisp.deploy.project import load_project

HELLO = {"packages/hello/hello.py": "def main(args):\n    return {}\n"}


def error_of(
    root: Path, environ: dict[str, str] | None = None, env_file: Path | None = None
) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(root, env_file, environ or {})
    return info.value.message


def test_reads_packages_functions_and_merges_parameters(make_project: MakeProject) -> None:
    root = make_project(
        """
        parameters: {region: eu, level: project}
        environment: {STAGE: prod}
        packages:
          - name: hello
            parameters: {level: package}
            environment: {DB: pg}
            annotations: {team: core}
            shared: true
            functions:
              - name: hello
                runtime: python:3.11
                main: handler
                web: raw
                webSecure: s3cret
                parameters: {level: function}
                environment: {TOKEN: abc}
                annotations: {owner: ada}
                limits: {timeout: 5000, memory: 512, logs: 16}
        """,
        HELLO,
    )
    project = load_project(root, environ={})
    [pkg] = project.packages
    assert pkg.parameters == {"region": "eu", "level": "package"}
    assert pkg.environment == {"STAGE": "prod", "DB": "pg"}
    assert pkg.shared is True and pkg.annotations == {"team": "core"}
    [fn] = pkg.functions
    assert (fn.path, fn.runtime, fn.main, fn.web, fn.web_secure) == (
        "hello/hello",
        "python:3.11",
        "handler",
        "raw",
        "s3cret",
    )
    assert fn.parameters == {"level": "function"}
    assert fn.environment == {"TOKEN": "abc"}
    assert fn.limits == {"timeout": 5000, "memory": 512, "logs": 16}


def test_functions_only_on_disk_are_deployed_with_defaults(make_project: MakeProject) -> None:
    root = make_project(
        None,
        {
            **HELLO,
            "packages/hello/tool/__main__.py": "def main(a): return a\n",
            "packages/default/top.py": "def main(a): return a\n",
            "packages/lib/shared.py": "x = 1\n",
        },
    )
    project = load_project(root, environ={})
    paths = sorted(fn.path for fn in project.functions)
    assert paths == ["hello/hello", "hello/tool", "top"]  # lib/ is not a package
    assert all(fn.web is True for fn in project.functions)  # DigitalOcean's default


def test_actions_is_an_alias_and_package_web_is_the_default(make_project: MakeProject) -> None:
    root = make_project(
        """
        packages:
          - name: hello
            web: false
            actions:
              - name: hello
        """,
        HELLO,
    )
    [fn] = load_project(root, environ={}).functions
    assert fn.web is False


def test_variables_from_environment_win_over_dotenv(make_project: MakeProject) -> None:
    root = make_project(
        """
        # ${NOT_SET_BUT_COMMENTED}
        packages:
          - name: hello
            environment: {A: "${A}", B: "${B}"}
        """,
        {**HELLO, ".env": "A=from-dotenv\nexport B='quoted value'\n"},
    )
    [pkg] = load_project(root, environ={"A": "from-env"}).packages
    assert pkg.environment == {"A": "from-env", "B": "quoted value"}


def test_env_file_option_replaces_dotenv(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project(
        'packages: [{name: hello, parameters: {x: "${X}"}}]\n',
        {**HELLO, ".env": "X=dotenv\n"},
    )
    other = tmp_path / "other.env"
    other.write_text("X=other\n")
    [pkg] = load_project(root, other, environ={}).packages
    assert pkg.parameters == {"x": "other"}


def test_unresolved_variable_names_it_and_the_line(make_project: MakeProject) -> None:
    root = make_project("packages:\n  - name: hello\n    parameters: {k: '${MISSING}'}\n", HELLO)
    assert error_of(root) == (
        "project.yml: line 3: ${MISSING} is not set (not in the environment or .env)"
    )


def test_missing_env_file_is_an_error(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project(None, HELLO)
    assert "env file not found" in error_of(root, env_file=tmp_path / "nope.env")


def test_bad_dotenv_line(make_project: MakeProject) -> None:
    root = make_project("packages: []\n", {".env": "GOOD=1\nthis is not an assignment\n"})
    assert error_of(root) == ".env: line 2: expected KEY=VALUE"


def test_tabs_are_an_error(make_project: MakeProject) -> None:
    root = make_project("packages:\n\t- name: hello\n", HELLO)
    assert error_of(root) == "project.yml: line 2: tabs are not allowed; indent with spaces"


def test_bad_yaml_names_the_line(make_project: MakeProject) -> None:
    root = make_project("packages:\n  - name: [hello\n", HELLO)
    message = error_of(root)
    assert message.startswith("project.yml: line ") and "invalid YAML" in message


def test_top_level_must_be_a_mapping(make_project: MakeProject) -> None:
    root = make_project("- just\n- a list\n", HELLO)
    assert error_of(root) == "project.yml: the top level must be a mapping"


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ("{memory: lots}", "packages[0].functions[0].limits.memory: must be an integer"),
        ("{memory: 1.5}", "packages[0].functions[0].limits.memory: must be an integer"),
        ("{timeout: true}", "packages[0].functions[0].limits.timeout: must be an integer"),
        ("{timeout: -1}", "packages[0].functions[0].limits.timeout: must be positive"),
        ("{cpu: 2}", "packages[0].functions[0].limits.cpu: unknown limit"),
        ("[256]", "packages[0].functions[0].limits: must be a mapping"),
    ],
)
def test_bad_limits(make_project: MakeProject, limits: str, expected: str) -> None:
    root = make_project(
        f"packages:\n  - name: hello\n    functions:\n      - name: hello\n"
        f"        limits: {limits}\n",
        HELLO,
    )
    assert error_of(root).startswith(f"project.yml: {expected}")


@pytest.mark.parametrize("key", ["web-export", "raw-http", "require-whisk-auth"])
def test_web_annotations_are_forbidden(make_project: MakeProject, key: str) -> None:
    root = make_project(
        f"packages:\n  - name: hello\n    functions:\n      - name: hello\n"
        f"        annotations: {{{key}: true}}\n",
        HELLO,
    )
    assert error_of(root) == (
        f"project.yml: packages[0].functions[0].annotations.{key}: "
        "is set by web/webSecure; use those instead"
    )


def test_function_without_code_is_an_error(make_project: MakeProject) -> None:
    root = make_project(
        "packages:\n  - name: hello\n    functions:\n      - name: hello\n      - name: ghost\n",
        HELLO,
    )
    assert error_of(root) == (
        "project.yml: packages[0].functions[1]: no code for hello/ghost: expected "
        "packages/hello/ghost.<ext> or the folder packages/hello/ghost/"
    )


@pytest.mark.parametrize(
    ("yml", "expected"),
    [
        ("packages: {name: x}\n", "project.yml: packages: must be a list"),
        ("packages: [{functions: []}]\n", "project.yml: packages[0].name: is required"),
        ("packages: [{name: 'a b'}]\n", "project.yml: packages[0].name: 'a b' is not a valid"),
        ("packages: [{name: a}, {name: a}]\n", "project.yml: packages[1].name: package 'a' is"),
        ("pakages: []\n", "project.yml: pakages: unknown key"),
        ("packages: [{name: a, binding: {}}]\n", "project.yml: packages[0].binding: is not sup"),
        (
            "packages: [{name: hello, functions: [{name: hello, web: maybe}]}]\n",
            "project.yml: packages[0].functions[0].web: must be true, false or 'raw'",
        ),
        (
            "packages: [{name: hello, functions: [{name: hello, webSecure: 3}]}]\n",
            "project.yml: packages[0].functions[0].webSecure: must be false, true or a secret",
        ),
        (
            "packages: [{name: hello, functions: [{name: hello, environment: {N: 1}}]}]\n",
            "project.yml: packages[0].functions[0].environment.N: must be a string",
        ),
        (
            "packages: [{name: hello, functions: [{name: hello, binary: yes please}]}]\n",
            "project.yml: packages[0].functions[0].binary: must be true or false",
        ),
        (
            "packages: [{name: hello, functions: [{name: hello}, {name: hello}]}]\n",
            "project.yml: packages[0].functions[1].name: function 'hello' is listed twice",
        ),
    ],
)
def test_errors_name_the_key_path(make_project: MakeProject, yml: str, expected: str) -> None:
    assert error_of(make_project(yml, HELLO)).startswith(expected)


def test_triggers_are_read_and_target_namespace_is_tolerated(make_project: MakeProject) -> None:
    root = make_project(
        """
        targetNamespace: fn-123
        packages:
          - name: hello
            functions:
              - name: hello
                triggers:
                  - name: nightly
                    sourceType: scheduler
                    sourceDetails: {cron: "0 0 * * *"}
        """,
        HELLO,
    )
    project = load_project(root, environ={})
    assert len(project.functions) == 1
    assert [t.name for t in project.functions[0].triggers] == ["nightly"]
    assert not any("triggers" in w for w in project.warnings)
    assert any("targetNamespace" in w for w in project.warnings)


def test_two_sources_for_one_function_is_an_error(make_project: MakeProject) -> None:
    root = make_project(None, {**HELLO, "packages/hello/hello/__main__.py": "x = 1\n"})
    assert "function hello/hello is also defined by" in error_of(root)


def test_invoke_config_is_validated_and_normalised(make_project: MakeProject) -> None:
    yml = """
        packages:
          - name: hello
            functions:
              - name: hello
                invokeConfig: {maximumRetryAttempts: 2, backoff: 1s}
        """
    project = load_project(make_project(yml, HELLO), None, {})
    config = project.functions[0].invoke_config
    assert config is not None
    assert config["maximumRetryAttempts"] == 2 and config["maximumEventAgeSeconds"] == 21600
    assert config["backoff"]["initial"] == 1.0 and config["retryOn"] == ["internal"]
    bad = yml.replace("maximumRetryAttempts: 2", "maximumRetryAttempts: 9")
    message = error_of(make_project(bad, HELLO))
    assert "packages[0].functions[0].invokeConfig" in message
    assert "maximumRetryAttempts must be an integer from 0 to 5" in message


def test_secret_reference_becomes_a_server_side_reference(make_project: MakeProject) -> None:
    root = make_project(
        "packages:\n  - name: hello\n    parameters: {db: ${secret:db-pass.1}, x: '${X}'}\n",
        {**HELLO, ".env": "X=1\n"},
    )
    [pkg] = load_project(root, environ={}).packages
    # Never a value on the client: the server resolves {"$secret": ...} at invoke time.
    assert pkg.parameters == {"db": {"$secret": "db-pass.1"}, "x": "1"}


def test_invalid_secret_reference_names_the_line(make_project: MakeProject) -> None:
    root = make_project("packages:\n  - name: hello\n    parameters: {k: ${secret:a b}}\n", HELLO)
    assert "line 3: invalid secret reference ${secret:a b}" in error_of(root)
