"""``wisp secret``: a namespace's secrets, encrypted at rest; values are write-only."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.output import format_time, make_table, print_json, stderr, stdout

PATH = "secrets"


@click.group()
def secret() -> None:
    """Secrets (encrypted at rest): set, list, delete; functions reference {"$secret": NAME}."""


def _one(name: str) -> str:
    if not name.strip():
        raise CliError("give the secret's name")
    return f"{PATH}/{quote(name.strip(), safe='')}"


@secret.command("set")
@click.argument("name")
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the value from this file (default: standard input).",
)
def set_(name: str, from_file: Path | None) -> None:
    """Set secret NAME; the value comes from standard input (or --from-file), never an
    argument, so it stays out of shell history and process lists."""
    if from_file is not None:
        try:
            value = from_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{from_file}: cannot read the value ({exc})") from exc
    else:
        if sys.stdin.isatty():
            stderr.print(f"Value of {name} (end with Ctrl-D):")
        value = sys.stdin.read()
        # `echo value | wisp secret set` adds a newline the value does not have.
        if value.endswith("\n") and value.count("\n") == 1:
            value = value[:-1]
    if not value:
        raise CliError("the value is empty; pipe it in or use --from-file")
    with WispClient.from_credentials() as client:
        made = client.put(_one(name), {"value": value})
    stderr.print(f"Set secret [bold]{made.get('name', name)}[/] ({made.get('size', '?')} bytes).")


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List secrets: names, sizes and update times (values are never shown)."""
    with WispClient.from_credentials() as client:
        items = client.get(PATH)
    if not isinstance(items, list):
        raise CliError("the server's secret list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No secrets.")
        return
    table = make_table()
    for column in ("name", "bytes", "updated"):
        table.add_column(column, no_wrap=True)
    for item in items:
        table.add_row(
            str(item.get("name", "-")), str(item.get("size", "-")), format_time(item.get("updated"))
        )
    stdout.print(table)


@secret.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete secret NAME (functions that reference it then fail to start)."""
    with WispClient.from_credentials() as client:
        client.delete(_one(name))
    stderr.print(f"Deleted secret [bold]{name}[/].")
