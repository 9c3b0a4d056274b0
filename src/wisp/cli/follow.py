"""``wisp activations logs --follow`` and ``list --watch``: the server's live stream.

The server pushes Server-Sent Events as activations finish (``/activations/stream``),
so nothing here polls. Reading ends on Ctrl-C (exit 0: that is how one stops
following), or with a one-line error when the server goes away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from wisp.cli.client import WispClient
from wisp.cli.credentials import load_credentials
from wisp.cli.errors import CliError
from wisp.cli.transport import Timeout, TransportError

STREAM = "/api/v1/namespaces/_/activations/stream"
READ_TIMEOUT = 60.0  # seconds without a byte; the server sends a keep-alive every 15 s


def events(
    name: str | None, logs: bool, read_timeout: float = READ_TIMEOUT
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs from the server's stream, as they arrive."""
    creds = load_credentials()
    params = {"logs": "true" if logs else "false"}
    if name:
        params["name"] = name.strip("/") + ("/" if name.endswith("/") else "")
    with (
        WispClient(creds.apihost, creds.auth) as client,
        client.stream(STREAM, params, timeout=read_timeout) as response,
    ):
        try:
            yield from parse(response.iter_lines())
        except Timeout as exc:
            raise CliError(f"the live stream from {creds.apihost} went silent") from exc
        except TransportError as exc:
            raise CliError(f"the live stream from {creds.apihost} broke: {exc}") from exc
    raise CliError(f"{creds.apihost} closed the live stream")


def parse(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-Sent Events: ``event:``/``data:`` fields, a blank line ends each one."""
    event, data = "message", ""
    for line in lines:
        if not line:
            parsed = _object(data)
            if parsed is not None:
                yield event, parsed
            event, data = "message", ""
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


def _object(data: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        return None  # not ours to interpret; the stream goes on
    return parsed if isinstance(parsed, dict) else None


def follow(name: str | None, logs: bool, handle: Callable[[str, dict[str, Any]], None]) -> None:
    """Feed every event to ``handle`` until Ctrl-C."""
    try:
        for event, data in events(name, logs):
            handle(event, data)
    except KeyboardInterrupt:
        return


def follow_logs(function: str | None, as_json: bool, strip: Callable[[str], str] | None) -> None:
    def show(event: str, data: dict[str, Any]) -> None:
        if event != "log":
            return
        if as_json:
            click.echo(json.dumps(data, separators=(",", ":")))
            return
        line = str(data.get("line", ""))
        click.echo(strip(line) if strip else line)

    follow(function, True, show)


def watch_list(
    function: str | None,
    limit: int,
    as_json: bool,
    row: Callable[[dict[str, Any]], tuple[str, ...]],
) -> None:
    """The last ``limit`` activations, oldest first, then each new one as it ends."""
    params: dict[str, str | int] = {"limit": limit, "skip": 0}
    if function:
        params["name"] = function.strip("/")
    with WispClient.from_credentials() as client:
        items = client.get("activations", params)
    recent = list(reversed(items)) if isinstance(items, list) else []

    def show(event: str, data: dict[str, Any]) -> None:
        if event != "activation":
            return
        if as_json:
            click.echo(json.dumps(data, separators=(",", ":")))
        else:
            click.echo(_line(row(data)))

    if not as_json:
        click.echo(_line(HEADER))
    for item in recent:
        show("activation", item)
    follow(function, False, show)


HEADER = ("datetime", "status", "start", "duration", "id", "name")
WIDTHS = (19, 17, 5, 9, 32, 0)


def _line(cells: tuple[str, ...]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=False)).rstrip()
