"""``wisp fn``: invoke, list, get and delete functions.

A name is ``PKG/FN``, or just ``FN`` for a function in the default package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from wisp.cli.client import WispClient, entity_path
from wisp.cli.errors import CliError
from wisp.cli.output import annotation, format_time, make_table, print_json, stderr, stdout
from wisp.deploy.remote import LIST_PAGE, action_path

JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def fn() -> None:
    """Invoke and manage functions."""


def parse_value(text: str) -> Any:
    """A parameter value: JSON when it parses (42, true, {"a": 1}), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_param_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from exc
    except ValueError as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path}: must hold a JSON object of parameters")
    return data


@fn.command()
@click.argument("name")
@click.option(
    "-p",
    "--param",
    "params",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A parameter; VALUE is parsed as JSON when it can be. Repeatable.",
)
@click.option(
    "--param-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON object of parameters (-p values win).",
)
@click.option("--no-wait", is_flag=True, help="Do not wait: print the activation id.")
@click.option("--full", is_flag=True, help="Print the whole activation record.")
@JSON_FLAG
def invoke(
    name: str,
    params: tuple[tuple[str, str], ...],
    param_file: Path | None,
    no_wait: bool,
    full: bool,
    as_json: bool,
) -> None:
    """Invoke function NAME (PKG/FN) and print its result."""
    body = _read_param_file(param_file) if param_file else {}
    body.update({key: parse_value(value) for key, value in params})
    with WispClient.from_credentials() as client:
        status, record = client.invoke(name, body, blocking=not no_wait)
    if status == 202:
        activation_id = record.get("activationId") if isinstance(record, dict) else None
        print_json({"activationId": activation_id})
        if not no_wait:
            stderr.print(
                f"Still running; see `wisp activations get {activation_id}` once it finishes."
            )
        return
    if not isinstance(record, dict):
        raise CliError("the server answered the invoke with something that is not a record")
    response = record.get("response") or {}
    print_json(record if full else response.get("result"))
    if status == 502 or not response.get("success", True):
        raise CliError(
            f"activation {record.get('activationId', '?')} failed: "
            f"{response.get('status', 'error')}"
        )


def _list_all(client: WispClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.get("actions", {"limit": LIST_PAGE, "skip": len(items)})
        if not isinstance(page, list):
            break
        items.extend(page)
        if len(page) < LIST_PAGE:
            return items
    return items


@fn.command("list")
@click.argument("package", required=False)
@click.option("--limit", type=click.IntRange(0, LIST_PAGE), default=30, show_default=True)
@click.option("--skip", type=click.IntRange(0), default=0, show_default=True)
@JSON_FLAG
def list_(package: str | None, limit: int, skip: int, as_json: bool) -> None:
    """List functions, optionally only those of PACKAGE."""
    with WispClient.from_credentials() as client:
        if package is None:
            items = client.get("actions", {"limit": limit, "skip": skip})
        else:
            # Filtered here rather than by the server, so limit/skip apply to the package.
            wanted = "" if package == "default" else package
            everything = _list_all(client)
            matching = [i for i in everything if _package_of(i) == wanted]
            items = matching[skip : skip + limit] if limit else matching[skip:]
    if not isinstance(items, list):
        raise CliError("the server's action list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No functions.")
        return
    table = make_table()
    for column in ("name", "kind", "version", "web", "updated"):
        table.add_column(column, no_wrap=column == "name")
    for item in items:
        web = annotation(item, "web-export")
        raw = annotation(item, "raw-http")
        table.add_row(
            action_path(item),
            str(annotation(item, "exec") or (item.get("exec") or {}).get("kind", "-")),
            str(item.get("version", "-")),
            "raw" if web and raw else "yes" if web else "no",
            format_time(item.get("updated")),
        )
    stdout.print(table)


def _package_of(item: dict[str, Any]) -> str:
    path = action_path(item)
    return path.rpartition("/")[0]


@fn.command()
@click.argument("name")
@click.option("--code", is_flag=True, help="Include (and print) the code.")
@click.option("--url", is_flag=True, help="Print only the function's public web URL.")
@JSON_FLAG
def get(name: str, code: bool, url: bool, as_json: bool) -> None:
    """Show function NAME (PKG/FN)."""
    with WispClient.from_credentials() as client:
        doc = client.get(entity_path("actions", name), {"code": "true" if code else "false"})
    if not isinstance(doc, dict):
        raise CliError("the server's answer is not an action")
    if url:
        click.echo(web_url(client.apihost, doc))
        return
    if as_json:
        print_json(doc)
        return
    exec_ = doc.get("exec") or {}
    limits = doc.get("limits") or {}
    rows = [
        ("name", action_path(doc)),
        ("version", doc.get("version", "-")),
        ("kind", exec_.get("kind", "-")),
        ("main", exec_.get("main") or "main"),
        ("binary", exec_.get("binary", False)),
        ("limits", ", ".join(f"{k}={v}" for k, v in limits.items()) or "-"),
        ("web", annotation(doc, "web-export") or False),
        ("updated", format_time(doc.get("updated"))),
    ]
    for item in doc.get("parameters") or []:
        label = "env" if item.get("init") else "param"
        rows.append((label, f"{item.get('key')} = {json.dumps(item.get('value'))}"))
    table = make_table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, str(value))
    stdout.print(table)
    if code and "code" in exec_:
        if exec_.get("binary"):
            stderr.print("(the code is a base64 zip; use --json to get it)")
        else:
            stdout.print()
            stdout.out(exec_["code"], highlight=False)


def web_url(apihost: str, doc: dict[str, Any]) -> str:
    """``{apihost}/api/v1/web/{namespace}/{package|default}/{function}``."""
    if annotation(doc, "web-export") is not True:
        raise CliError(
            f"function {action_path(doc)} is not a web function (deploy it with web: true)"
        )
    namespace, _, package = str(doc.get("namespace", "")).partition("/")
    parts = [namespace, package or "default", str(doc.get("name", ""))]
    return f"{apihost}/api/v1/web/" + "/".join(quote(p, safe="") for p in parts)


@fn.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete function NAME (PKG/FN)."""
    with WispClient.from_credentials() as client:
        client.delete(entity_path("actions", name))
    stdout.print(f"Deleted function {name}")
