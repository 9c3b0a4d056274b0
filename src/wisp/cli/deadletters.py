"""``wisp deadletters``: asynchronous activations that ran out of attempts or age."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.output import format_time, make_table, print_json, stderr, stdout
from wisp.deploy.remote import LIST_PAGE

JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
PATH = "deadletters"


@click.group()
def deadletters() -> None:
    """Dead letters: asynchronous activations out of retries or age; list, get, redrive, purge."""


def _one(activation_id: str) -> str:
    if not activation_id.strip():
        raise CliError("give the dead letter's activation ID")
    return f"{PATH}/{quote(activation_id.strip(), safe='')}"


@deadletters.command("list")
@click.option("--limit", type=click.IntRange(0, LIST_PAGE), default=30, show_default=True)
@click.option("--skip", type=click.IntRange(0), default=0, show_default=True)
@JSON_FLAG
def list_(limit: int, skip: int, as_json: bool) -> None:
    """List dead letters, newest first."""
    with WispClient.from_credentials() as client:
        items = client.get(PATH, {"limit": limit, "skip": skip})
    if not isinstance(items, list):
        raise CliError("the server's dead letter list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No dead letters.")
        return
    table = make_table()
    for column in ("datetime", "reason", "attempts", "id", "name", "status"):
        table.add_column(column, no_wrap=True)
    for item in items:
        response: dict[str, Any] = item.get("response") or {}
        table.add_row(
            format_time(item.get("created")),
            str(item.get("reason", "-")),
            str(item.get("attempts", "-")),
            str(item.get("activationId", "-")),
            str(item.get("name", "-")),
            str(response.get("status", "-")),
        )
    stdout.print(table)


@deadletters.command()
@click.argument("activation_id", metavar="ID")
@JSON_FLAG
def get(activation_id: str, as_json: bool) -> None:
    """Show dead letter ID: its input, reason and last response."""
    with WispClient.from_credentials() as client:
        doc = client.get(_one(activation_id))
    if not isinstance(doc, dict):
        raise CliError("the server's dead letter is not an object")
    if as_json:
        print_json(doc)
        return
    request: dict[str, Any] = doc.get("request") or {}
    response: dict[str, Any] = doc.get("response") or {}
    rows = [
        ("id", doc.get("activationId", "-")),
        ("function", f"{doc.get('name', '-')} ({doc.get('version', '-')})"),
        ("reason", doc.get("reason", "-")),
        ("attempts", doc.get("attempts", "-")),
        ("dead since", format_time(doc.get("created"))),
        ("input", json.dumps(request.get("params", {}), ensure_ascii=False)),
        ("status", response.get("status", "-")),
        ("result", json.dumps(response.get("result"), ensure_ascii=False)),
    ]
    table = make_table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, str(value))
    stdout.print(table)


@deadletters.command()
@click.argument("activation_id", metavar="ID")
def redrive(activation_id: str) -> None:
    """Invoke the function of dead letter ID again with the same input."""
    with WispClient.from_credentials() as client:
        answer = client.request("POST", _one(activation_id) + "/redrive", expect=(202,)).json()
    new_id = answer.get("activationId") if isinstance(answer, dict) else None
    stdout.print(f"Redriven {activation_id} as activation {new_id}")


@deadletters.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool) -> None:
    """Delete every dead letter of the namespace."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("purging every dead letter needs --yes when not run from a terminal")
        if not click.confirm("Delete every dead letter?", default=False):
            raise CliError("not purged")
    with WispClient.from_credentials() as client:
        answer = client.delete(PATH)
    count = answer.get("purged", 0) if isinstance(answer, dict) else 0
    stdout.print(f"Purged {count} dead letter{'s' if count != 1 else ''}")
