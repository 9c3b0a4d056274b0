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


def test_tables_in_a_pipe_print_whole_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "30")  # Rich would cut every value to fit this
    table = make_table()
    table.add_column("datetime")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("id")
    long_id = "0123456789abcdef0123456789abcdef"
    table.add_row("2026-12-03 06:00:01", "[green]success[/]", "5ms", long_id)
    table.add_row("2026-12-03 06:00:02", "application error", "1234ms", "x\ny")
    Printer("stdout").print(table)
    assert capsys.readouterr().out.splitlines() == [
        "datetime             status             duration  id",
        "2026-12-03 06:00:01  success                 5ms  " + long_id,
        "2026-12-03 06:00:02  application error    1234ms  x y",
    ]


def test_a_headless_table_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    table = make_table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("name", "hello/hello")
    table.add_row("runtime", "python:3.11")
    Printer("stdout").print(table)
    assert capsys.readouterr().out.splitlines() == ["name     hello/hello", "runtime  python:3.11"]
