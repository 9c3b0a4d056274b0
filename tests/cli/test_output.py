from __future__ import annotations

import pytest

from wisp.cli.output import Printer, make_table, strip_markup


def test_markup_is_stripped_off_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    Printer("stdout").print("  [1/3] [red]failed[/] pkg/[bold]fn[/]: [x] went wrong")
    assert capsys.readouterr().out == "  [1/3] failed pkg/fn: [x] went wrong\n"


def test_markup_is_coloured_when_colour_is_forced(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    Printer("stderr").print("[green]+[/] a [1/2]")
    Printer("stderr").print("[not markup]", markup=False, style="dim")
    assert capsys.readouterr().err == (
        "\033[32m+\033[0m a [1/2]\033[0m\n\033[2m[not markup]\033[0m\n"
    )


def test_no_color_wins(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    Printer("stdout").print("[yellow]Warning:[/] x", style="dim")
    assert capsys.readouterr().out == "Warning: x\n"


def test_status_prints_nothing_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Printer("stderr").status("Reading"):
        pass
    assert capsys.readouterr().err == ""


def test_tables_go_through_rich(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    table = make_table()
    table.add_column("name")
    table.add_row("hello/hello")
    Printer("stdout").print(table)
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert lines == ["name", "hello/hello"]


def test_strip_markup_keeps_unknown_brackets() -> None:
    assert strip_markup("[bold red]x[/] [link] [/x]") == "x [link] [/x]"
