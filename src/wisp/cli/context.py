"""``wisp context list|use|remove``: the named servers and keys the CLI knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from wisp.cli.credentials import credentials_path, read_contexts, write_contexts
from wisp.cli.errors import CliError
from wisp.cli.output import make_table, print_json, stderr, stdout


@click.group("context")
def context() -> None:
    """Named contexts (API host and key), as `wisp login` and `wisp server` save them."""


@context.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def list_(as_json: bool) -> None:
    """List the contexts; the current one is marked (keys are never shown)."""
    contexts = read_contexts(credentials_path())
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "apihost": creds.apihost,
            "namespace": creds.namespace,
            "current": name == contexts.current,
        }
        for name, creds in sorted(contexts.contexts.items())
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        stderr.print("No contexts: `wisp login` adds one, and so does `wisp server`.")
        return
    table = make_table()
    for column in ("CURRENT", "NAME", "API HOST", "NAMESPACE"):
        table.add_column(column)
    for row in rows:
        table.add_row("*" if row["current"] else "", row["name"], row["apihost"], row["namespace"])
    stdout.print(table)


@context.command("use")
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the current context: later commands talk to its server."""
    path = credentials_path()
    contexts = read_contexts(path)
    if name not in contexts.contexts:
        raise CliError(f"no context named {name!r}; {_names(contexts.contexts)}")
    contexts.current = name
    write_contexts(contexts, path)
    stdout.print(f"Now using context [bold]{name}[/] ({contexts.contexts[name].apihost})")


@context.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget the context NAME and its key."""
    path = credentials_path()
    contexts = read_contexts(path)
    if contexts.contexts.pop(name, None) is None:
        raise CliError(f"no context named {name!r}; {_names(contexts.contexts)}")
    was_current = contexts.current == name
    if was_current:
        contexts.current = ""
    write_contexts(contexts, path)
    stdout.print(f"Removed context [bold]{name}[/]")
    if was_current:
        hint = "`wisp context use NAME` picks another" if contexts.contexts else "`wisp login`"
        stderr.print(f"No context is current now: {hint}.")


def _names(contexts: Mapping[str, object]) -> str:
    return f"contexts: {', '.join(sorted(contexts))}" if contexts else "there is no context"
