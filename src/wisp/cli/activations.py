"""``wisp activations``: the records of past invocations, their results and logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.output import annotation, format_time, make_table, print_json, stderr, stdout
from wisp.deploy.remote import LIST_PAGE

F = TypeVar("F", bound=Callable[..., Any])
STATUS = {
    0: "success",
    1: "application error",
    2: "developer error",
    3: "internal error",
    4: "dead",
}
JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def activations() -> None:
    """Activation records: list, get, result, logs."""


def which(command: F) -> F:
    """ID | --last [--function FN]: how the record-reading commands pick one activation."""
    command = click.option(
        "--function", "function", metavar="FN", help="With --last: the last activation of FN."
    )(command)
    command = click.option("--last", is_flag=True, help="The most recent activation.")(command)
    return click.argument("activation_id", required=False, metavar="[ID]")(command)


def _resolve(
    client: WispClient, activation_id: str | None, last: bool, function: str | None
) -> str:
    if activation_id and (last or function):
        raise CliError("give either an activation ID or --last/--function, not both")
    if activation_id:
        return activation_id
    if not last and not function:
        raise CliError("give an activation ID, or --last")
    params: dict[str, str | int] = {"limit": 1, "skip": 0}
    if function:
        params["name"] = function.strip("/")
    items = client.get("activations", params)
    if not isinstance(items, list) or not items:
        raise CliError(f"no activations of {function} yet" if function else "no activations yet")
    return str(items[0].get("activationId"))


@activations.command("list")
@click.argument("function", required=False, metavar="[FN]")
@click.option("--limit", type=click.IntRange(0, LIST_PAGE), default=30, show_default=True)
@click.option("--skip", type=click.IntRange(0), default=0, show_default=True)
@click.option("--watch", is_flag=True, help="Then print each new activation as it finishes.")
@JSON_FLAG
def list_(function: str | None, limit: int, skip: int, watch: bool, as_json: bool) -> None:
    """List recent activations, newest first (only FN's when given)."""
    if watch:
        from wisp.cli.follow import watch_list

        watch_list(function, limit, as_json, _row)
        return
    params: dict[str, str | int] = {"limit": limit, "skip": skip}
    if function:
        params["name"] = function.strip("/")
    with WispClient.from_credentials() as client:
        items = client.get("activations", params)
    if not isinstance(items, list):
        raise CliError("the server's activation list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No activations.")
        return
    table = make_table()
    for column in ("datetime", "status", "start", "duration", "id", "name"):
        table.add_column(column, no_wrap=True, justify="right" if column == "duration" else "left")
    for item in items:
        table.add_row(*_row(item))
    stdout.print(table)


def _row(item: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    status = item.get("statusCode")
    if status is None:
        status = (item.get("response") or {}).get("statusCode")
    cold = annotation(item, "initTime") is not None
    duration = item.get("duration")
    version = item.get("version")
    return (
        format_time(item.get("start")),
        STATUS.get(status, "-") if isinstance(status, int) else "-",
        "cold" if cold else "warm",
        f"{duration} ms" if isinstance(duration, int | float) else "-",
        str(item.get("activationId", "-")),
        f"{item.get('name', '-')}" + (f":{version}" if version else ""),
    )


@activations.command()
@which
@JSON_FLAG
def get(activation_id: str | None, last: bool, function: str | None, as_json: bool) -> None:
    """Show one activation record (it is JSON either way)."""
    with WispClient.from_credentials() as client:
        record = client.get(f"activations/{_resolve(client, activation_id, last, function)}")
    if not as_json and isinstance(record, dict):
        stderr.print(_header(record))
    print_json(record)


def _header(record: dict[str, Any]) -> str:
    response = record.get("response") or {}
    return (
        f"=== {record.get('activationId')} {response.get('status', '-')} "
        f"{format_time(record.get('start'))} {record.get('name')}:{record.get('version')}"
    )


@activations.command()
@which
@JSON_FLAG
def result(activation_id: str | None, last: bool, function: str | None, as_json: bool) -> None:
    """Print an activation's result (with --json: also its status)."""
    with WispClient.from_credentials() as client:
        chosen = _resolve(client, activation_id, last, function)
        answer = client.get(f"activations/{chosen}/result")
    if as_json or not isinstance(answer, dict):
        print_json(answer)
        return
    print_json(answer.get("result"))


@activations.command()
@which
@click.option("--strip", is_flag=True, help="Drop each line's timestamp and stream.")
@click.option(
    "--follow", is_flag=True, help="Print log lines as activations finish (of FN with --function)."
)
@JSON_FLAG
def logs(
    activation_id: str | None,
    last: bool,
    function: str | None,
    strip: bool,
    follow: bool,
    as_json: bool,
) -> None:
    """Print an activation's log lines."""
    if follow:
        if activation_id or last:
            raise CliError("--follow takes no activation ID or --last (only --function)")
        from wisp.cli.follow import follow_logs

        follow_logs(function, as_json, strip_line if strip else None)
        return
    with WispClient.from_credentials() as client:
        chosen = _resolve(client, activation_id, last, function)
        answer = client.get(f"activations/{chosen}/logs")
    lines = answer.get("logs") if isinstance(answer, dict) else None
    if not isinstance(lines, list):
        raise CliError("the server's answer has no logs")
    if as_json:
        print_json({"activationId": chosen, "logs": lines})
        return
    for line in lines:
        click.echo(strip_line(str(line)) if strip else str(line))


def strip_line(text: str) -> str:
    """ "2026-01-01T00:00:00.000000Z stdout: text" → "text"."""
    _, _, rest = text.partition(" ")
    stream, sep, message = rest.partition(": ")
    return message if sep and stream in ("stdout", "stderr") else text
