"""``wisp triggers``: list, get, create, delete, enable, disable and fire triggers.

``create --function`` also creates the rule (named like the trigger) that connects
it to the function; ``delete`` removes the trigger's rules with it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.fn import parse_value
from wisp.cli.output import format_time, make_table, print_json, stderr, stdout
from wisp.deploy.remote import LIST_PAGE

JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
PARAM = click.option(
    "-p",
    "--param",
    "params",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A parameter; VALUE is parsed as JSON when it can be. Repeatable.",
)


def trigger_path(name: str) -> str:
    if not name or "/" in name.strip("/"):
        raise CliError(f"{name!r} is not a valid trigger name: triggers are not in packages")
    return "triggers/" + quote(name.strip("/"), safe="")


@click.group()
def triggers() -> None:
    """Scheduled and fired triggers, and the rules that run functions."""


@triggers.command("list")
@click.option("--limit", type=click.IntRange(0, LIST_PAGE), default=30, show_default=True)
@click.option("--skip", type=click.IntRange(0), default=0, show_default=True)
@JSON_FLAG
def list_(limit: int, skip: int, as_json: bool) -> None:
    """List triggers with their schedule and last and next runs."""
    with WispClient.from_credentials() as client:
        items = client.get("triggers", {"limit": limit, "skip": skip})
    if not isinstance(items, list):
        raise CliError("the server's trigger list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No triggers.")
        return
    table = make_table()
    for column in ("name", "schedule", "enabled", "last run", "next run"):
        table.add_column(column, no_wrap=column == "name")
    for item in items:
        table.add_row(
            str(item.get("name")),
            _schedule(item),
            "yes" if item.get("enabled", True) else "no",
            item.get("last_run_at") or "-",
            item.get("next_run_at") or "-",
        )
    stdout.print(table)


@triggers.command()
@click.argument("name")
@JSON_FLAG
def get(name: str, as_json: bool) -> None:
    """Show trigger NAME and its rules."""
    with WispClient.from_credentials() as client:
        doc = client.get(trigger_path(name))
    if not isinstance(doc, dict):
        raise CliError("the server's answer is not a trigger")
    if as_json:
        print_json(doc)
        return
    rows: list[tuple[str, str]] = [
        ("name", str(doc.get("name"))),
        ("version", str(doc.get("version", "-"))),
        ("schedule", _schedule(doc)),
        ("enabled", "yes" if doc.get("enabled", True) else "no"),
        ("last run", doc.get("last_run_at") or "-"),
        ("next run", doc.get("next_run_at") or "-"),
        ("updated", format_time(doc.get("updated"))),
    ]
    schedule = doc.get("schedule")
    if isinstance(schedule, dict):
        rows.append(("concurrency", str(schedule.get("concurrency"))))
        rows.append(("missed ticks", str(schedule.get("missed"))))
    for item in doc.get("parameters") or []:
        rows.append(("param", f"{item.get('key')} = {json.dumps(item.get('value'))}"))
    for rule, info in (doc.get("rules") or {}).items():
        action = info.get("action") or {}
        rows.append(
            ("rule", f"{rule} → {action.get('path')}/{action.get('name')} ({info.get('status')})")
        )
    table = make_table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    stdout.print(table)


@triggers.command()
@click.argument("name")
@click.option("--function", "function", metavar="PKG/FN", help="Run this function on each fire.")
@click.option("--cron", help="A 5-field cron expression or @hourly-style alias.")
@click.option("--timezone", help="IANA time zone of the schedule (default UTC).")
@click.option("--concurrency", type=click.Choice(["allow", "skip"]), help="Overlapping runs.")
@click.option("--missed", type=click.Choice(["latest", "skip"]), help="Ticks missed while down.")
@click.option("--disabled", is_flag=True, help="Create it with its schedule switched off.")
@click.option("--overwrite", is_flag=True, help="Update the trigger if it exists.")
@PARAM
@JSON_FLAG
def create(
    name: str,
    function: str | None,
    cron: str | None,
    timezone: str | None,
    concurrency: str | None,
    missed: str | None,
    disabled: bool,
    overwrite: bool,
    params: tuple[tuple[str, str], ...],
    as_json: bool,
) -> None:
    """Create trigger NAME; with --cron it runs on a schedule."""
    body: dict[str, Any] = {"parameters": {k: parse_value(v) for k, v in params}}
    if disabled:
        body["enabled"] = False
    schedule = {"cron": cron, "timezone": timezone, "concurrency": concurrency, "missed": missed}
    if cron is None and any(schedule.values()):
        raise CliError("--timezone, --concurrency and --missed need --cron")
    if cron is not None:
        body["schedule"] = {k: v for k, v in schedule.items() if v is not None}
    flags = {"overwrite": "true"} if overwrite else None
    with WispClient.from_credentials() as client:
        doc = client.put(trigger_path(name), body, flags)
        if function is not None:
            rule = {"trigger": name, "action": function.strip("/")}
            client.put("rules/" + quote(name, safe=""), rule, flags)
            doc = client.get(trigger_path(name))
    if as_json:
        print_json(doc)
        return
    next_run = doc.get("next_run_at") if isinstance(doc, dict) else None
    stderr.print(f"Trigger {name} created" + (f"; next run {next_run}" if next_run else ""))


@triggers.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete trigger NAME and its rules."""
    with WispClient.from_credentials() as client:
        doc = client.get(trigger_path(name))
        for rule in (doc.get("rules") or {}) if isinstance(doc, dict) else {}:
            client.delete("rules/" + quote(rule.rpartition("/")[2], safe=""))
        client.delete(trigger_path(name))
    stderr.print(f"Trigger {name} deleted")


def _set_enabled(name: str, enabled: bool) -> None:
    with WispClient.from_credentials() as client:
        client.get(trigger_path(name))  # a 404, rather than creating the trigger
        doc = client.put(trigger_path(name), {"enabled": enabled}, {"overwrite": "true"})
    next_run = doc.get("next_run_at") if isinstance(doc, dict) else None
    state = "enabled" + (f"; next run {next_run}" if next_run else "") if enabled else "disabled"
    stderr.print(f"Trigger {name} {state}")


@triggers.command()
@click.argument("name")
def enable(name: str) -> None:
    """Switch trigger NAME's schedule on (it resumes at its next tick)."""
    _set_enabled(name, True)


@triggers.command()
@click.argument("name")
def disable(name: str) -> None:
    """Switch trigger NAME's schedule off (firing it explicitly still works)."""
    _set_enabled(name, False)


@triggers.command()
@click.argument("name")
@PARAM
@JSON_FLAG
def fire(name: str, params: tuple[tuple[str, str], ...], as_json: bool) -> None:
    """Fire trigger NAME now: each active rule runs its function."""
    body = {k: parse_value(v) for k, v in params}
    with WispClient.from_credentials() as client:
        response = client.request("POST", trigger_path(name), json=body, expect=(202, 204))
    if response.status_code == 204:
        if as_json:
            print_json({"activationId": None})
        stderr.print(f"Trigger {name} has no active rule: nothing ran.")
        return
    print_json({"activationId": response.json().get("activationId")})


def _schedule(doc: dict[str, Any]) -> str:
    schedule = doc.get("schedule")
    if not isinstance(schedule, dict):
        return "-"
    zone = schedule.get("timezone") or "UTC"
    return f"{schedule.get('cron')}" + ("" if zone == "UTC" else f" ({zone})")
