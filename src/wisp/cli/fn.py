"""``wisp fn``: invoke, list, get and delete functions; their versions and rollback.

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
    """Invoke function NAME (PKG/FN, or PKG/FN:VERSION, PKG/FN:ALIAS); print its result."""
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


def release_path(name: str, what: str) -> str:
    """``actions/PKG/FN/{what}``; ``actions/default/FN/{what}`` outside a package (the
    shorter ``actions/FN/{what}`` means function ``{what}`` of package FN when that exists)."""
    path = entity_path("actions", name)
    if path.count("/") == 1:
        path = "actions/default/" + path.removeprefix("actions/")
    return f"{path}/{what}"


@fn.command()
@click.argument("name")
@JSON_FLAG
def versions(name: str, as_json: bool) -> None:
    """List the kept versions of function NAME (PKG/FN), newest first."""
    with WispClient.from_credentials() as client:
        items = client.get(release_path(name, "versions"))
    if not isinstance(items, list):
        raise CliError("the server's version list is not a list")
    if as_json:
        print_json(items)
        return
    table = make_table()
    for column in ("version", "created", "by", "kind", "digest", "aliases", "note"):
        table.add_column(column, no_wrap=True)
    for item in items:
        exec_ = item.get("exec") or {}
        version = str(item.get("version", "-"))
        table.add_row(
            f"{version} (current)" if item.get("current") else version,
            format_time(item.get("created")),
            str(item.get("subject") or "-"),
            str(exec_.get("kind", "-")),
            str(exec_.get("digest", ""))[:12] or "-",
            ", ".join(item.get("aliases") or []),
            _rollback_note(item),
        )
    stdout.print(table)


def _rollback_note(item: dict[str, Any]) -> str:
    rolled = annotation(item, "rollback")
    if not isinstance(rolled, dict):
        return ""
    return f"rollback from {rolled.get('from', '?')} to {rolled.get('to', '?')}"


@fn.command()
@click.argument("name")
@click.option("--to", "version", metavar="VERSION", help="The version to run again "
              "(default: the one before the current one).")  # fmt: skip
@JSON_FLAG
def rollback(name: str, version: str | None, as_json: bool) -> None:
    """Run an earlier version of function NAME (PKG/FN) again, as a new version."""
    body = {} if version is None else {"version": version}
    with WispClient.from_credentials() as client:
        doc = client.post(release_path(name, "rollback"), body)
    if not isinstance(doc, dict):
        raise CliError("the server's answer is not a version")
    if as_json:
        print_json(doc)
        return
    rolled = annotation(doc, "rollback")
    if doc.get("changed") and isinstance(rolled, dict):
        stdout.print(
            f"Rolled back {name} from {rolled.get('from')} to {rolled.get('to')}: "
            f"it now runs version {doc.get('version')}"
        )
    else:
        stdout.print(f"{name} already runs that code (version {doc.get('version')})")


@fn.group()
def alias() -> None:
    """Name versions of a function: invoke PKG/FN:ALIAS."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version")
@JSON_FLAG
def alias_set(name: str, alias_name: str, version: str, as_json: bool) -> None:
    """Point ALIAS of function NAME (PKG/FN) at VERSION."""
    with WispClient.from_credentials() as client:
        doc = client.put(release_path(name, "aliases/" + quote(alias_name, safe="")),
                         {"version": version})  # fmt: skip
    if as_json:
        print_json(doc)
        return
    stdout.print(f"{name}:{alias_name} now runs version {version}")


@alias.command("list")
@click.argument("name")
@JSON_FLAG
def alias_list(name: str, as_json: bool) -> None:
    """List the aliases of function NAME (PKG/FN)."""
    with WispClient.from_credentials() as client:
        items = client.get(release_path(name, "aliases"))
    if not isinstance(items, list):
        raise CliError("the server's alias list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print(f"No aliases of {name}.")
        return
    table = make_table()
    for column in ("alias", "version", "updated", "by"):
        table.add_column(column, no_wrap=True)
    for item in items:
        table.add_row(
            str(item.get("name", "-")),
            str(item.get("version", "-")),
            format_time(item.get("updated")),
            str(item.get("subject") or "-"),
        )
    stdout.print(table)


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def alias_delete(name: str, alias_name: str) -> None:
    """Delete ALIAS of function NAME (PKG/FN)."""
    with WispClient.from_credentials() as client:
        client.delete(release_path(name, "aliases/" + quote(alias_name, safe="")))
    stdout.print(f"Deleted alias {name}:{alias_name}")


@fn.command("invoke-config")
@click.argument("name")
@click.option("--max-retries", type=int, metavar="N", help="Retries after a failure (0-5).")
@click.option("--max-age", metavar="S", help="Give up this long after the first try (60-21600 s).")
@click.option("--backoff", metavar="DURATION", help="Delay before the first retry (e.g. 1s).")
@click.option("--backoff-factor", type=float, help="Each further delay is this many times longer.")
@click.option("--backoff-max", metavar="DURATION", help="The longest delay.")
@click.option("--jitter", type=float, help="Random spread of each delay, a fraction (0-0.5).")
@click.option(
    "--retry-on",
    metavar="KINDS",
    help="Comma-separated outcomes to retry besides internal: developer, application "
    "('internal' alone: platform failures only).",
)
@click.option("--on-failure", metavar="PKG/FN", help="A function that receives each dead letter.")
@click.option("--on-failure-trigger", metavar="NAME", help="A trigger fired with each dead letter.")
@click.option("--no-on-failure", is_flag=True, help="Send dead letters nowhere.")
@JSON_FLAG
def invoke_config(
    name: str,
    max_retries: int | None,
    max_age: str | None,
    backoff: str | None,
    backoff_factor: float | None,
    backoff_max: str | None,
    jitter: float | None,
    retry_on: str | None,
    on_failure: str | None,
    on_failure_trigger: str | None,
    no_on_failure: bool,
    as_json: bool,
) -> None:
    """Show or change how asynchronous invocations of NAME (PKG/FN) are retried.

    With no option, prints the current config. Options change only what they name.
    """
    if sum(bool(x) for x in (on_failure, on_failure_trigger, no_on_failure)) > 1:
        raise CliError("give one of --on-failure, --on-failure-trigger, --no-on-failure")
    path = entity_path("actions", name) + "/invokeConfig"
    with WispClient.from_credentials() as client:
        config = client.get(path)
        if not isinstance(config, dict):
            raise CliError("the server's invoke config is not an object")
        changes: dict[str, Any] = {}
        if max_retries is not None:
            changes["maximumRetryAttempts"] = max_retries
        if max_age is not None:
            changes["maximumEventAgeSeconds"] = _seconds("--max-age", max_age)
        steps = {"initial": backoff, "factor": backoff_factor, "max": backoff_max}
        steps["jitter"] = jitter
        set_steps = {k: v for k, v in steps.items() if v is not None}
        if set_steps:
            changes["backoff"] = {**(config.get("backoff") or {}), **set_steps}
        if retry_on is not None:
            changes["retryOn"] = [k.strip() for k in retry_on.split(",") if k.strip()]
        if on_failure:
            changes["onFailure"] = {"function": on_failure}
        elif on_failure_trigger:
            changes["onFailure"] = {"trigger": on_failure_trigger}
        elif no_on_failure:
            changes["onFailure"] = None
        if changes:
            config = client.put(path, {**config, **changes})
    if as_json:
        print_json(config)
        return
    _show_config(name, config)


def _seconds(flag: str, text: str) -> int:
    """Whole seconds from ``600`` or a duration such as ``10m`` or ``6h``."""
    from wisp.errors import BadRequest
    from wisp.invoker.retries import parse_duration

    try:
        seconds = parse_duration(flag, text)
    except BadRequest as exc:
        raise CliError(exc.message) from exc
    if seconds != int(seconds):
        raise CliError(f"{flag} must be whole seconds (got {text!r})")
    return int(seconds)


def _show_config(name: str, config: dict[str, Any]) -> None:
    backoff = config.get("backoff") or {}
    target = config.get("onFailure") or {}
    destination = (
        f"function {target['function']}"
        if "function" in target
        else f"trigger {target['trigger']}"
        if "trigger" in target
        else "-"
    )
    rows = [
        ("function", name),
        ("max retries", config.get("maximumRetryAttempts")),
        ("max age", f"{config.get('maximumEventAgeSeconds')}s"),
        (
            "backoff",
            f"{backoff.get('initial')}s x{backoff.get('factor')} up to {backoff.get('max')}s, "
            f"jitter ±{round(float(backoff.get('jitter') or 0) * 100)}%",
        ),
        ("retry on", ", ".join(config.get("retryOn") or [])),
        ("on failure", destination),
    ]
    table = make_table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, str(value))
    stdout.print(table)
