"""The lazy command group: what `wisp` imports before it knows the command, and its help."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import click
import pytest

from tests.cli.conftest import Wisp
from wisp.cli.main import SUBCOMMANDS, cli

# Each of these cost tens of milliseconds on every command before the group became lazy.
HEAVY = ("httpx", "httpcore", "rich", "yaml", "sqlalchemy", "starlette", "uvicorn", "anyio")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def packages(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_importing_the_cli_imports_no_heavy_package() -> None:
    loaded = modules_after("import wisp.cli.main")
    assert not packages(loaded) & set(HEAVY), sorted(packages(loaded) & set(HEAVY))
    ours = {name for name in loaded if name.startswith("wisp")}
    assert ours == {"wisp", "wisp.cli", "wisp.cli.main", "wisp.cli.errors"}


def test_help_and_version_import_no_subcommand() -> None:
    runs = (
        "from wisp.cli.main import run; run(['--help'])",
        "from wisp.cli.main import run; run(['--version'])",
    )
    for code in runs:
        probe = (
            f"{code}\nimport sys\nleaked = sorted(m for m in sys.modules if m.startswith("
            "('wisp.cli.deploy', 'wisp.cli.fn', 'wisp.cli.client', 'wisp.deploy', "
            "'wisp.config', 'rich', 'httpx', 'yaml')))\nassert not leaked, leaked"
        )
        subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, timeout=60)


def test_deploy_needs_neither_httpx_nor_the_server() -> None:
    loaded = packages(modules_after("import wisp.cli.deploy"))
    unwanted = {"httpx", "httpcore", "anyio", "trio", "sqlalchemy", "starlette", "uvicorn"}
    # Nor ssl and the email parser (http.client's): a plain-http API host needs neither.
    unwanted |= {"ssl", "email", "rich"}
    assert not loaded & unwanted, sorted(loaded & unwanted)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_summary_is_its_commands_own_help(name: str) -> None:
    entry = SUBCOMMANDS[name]
    command = getattr(importlib.import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command)
    assert command.name == name
    first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
    assert entry.summary == first_paragraph


def test_help_lists_every_command_with_its_summary(wisp: Wisp) -> None:
    result = wisp("--help", env={"COLUMNS": "200"})
    assert result.code == 0, result.err
    listed = result.out.split("Commands:")[1]
    for name, entry in SUBCOMMANDS.items():
        assert f"  {name} " in listed
        assert click.Command(name, help=entry.summary).get_short_help_str(100)[:30] in listed


def test_help_uses_no_deprecated_click_api() -> None:
    # click 8.5 deprecated click.utils.make_default_short_help; the help must not warn
    # (a fresh install got 8.5 and the suite, which turns warnings into errors, failed).
    ctx = click.Context(cli, info_name="wisp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = cli.get_help(ctx)
    assert "Commands:" in text and "activations" in text


def test_python_m_wisp_cli_is_the_wisp_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wisp.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wisp, version " + importlib.import_module("wisp").__version__


def test_an_unknown_command_is_a_usage_error(wisp: Wisp) -> None:
    result = wisp("deplo")
    assert result.code == 2
    assert "No such command 'deplo'" in result.err


def test_group_resolves_each_command_once() -> None:
    ctx = click.Context(cli)
    assert cli.get_command(ctx, "fn") is cli.get_command(ctx, "fn")
    assert cli.get_command(ctx, "nope") is None
