"""``wisp route``: declare, list and delete gateway routes.

Modelled on ``wsk api``: ``wisp route create BASE_PATH PATH METHOD FUNCTION``.
"""

from __future__ import annotations

from typing import Any

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.output import make_table, print_json, stderr, stdout

ROUTES = "routes"


@click.group()
def route() -> None:
    """Expose functions as public gateway routes with an access policy."""


def _users(values: tuple[str, ...]) -> dict[str, str]:
    users: dict[str, str] = {}
    for value in values:
        name, sep, password = value.partition(":")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME:PASSWORD", param_hint="--user")
        users[name] = password
    return users


@route.command()
@click.argument("base_path")
@click.argument("path")
@click.argument("method")
@click.argument("function")
@click.option(
    "--policy",
    type=click.Choice(["none", "basic", "api-key", "jwt"]),
    default="none",
    show_default=True,
)
@click.option("--user", "users", multiple=True, metavar="NAME:PASSWORD", help="basic: a user.")
@click.option("--api-key", "api_keys", multiple=True, help="api-key: a key (default: generated).")
@click.option("--key-query", help="api-key: also accept the key in this query parameter.")
@click.option("--jwks", help="jwt: https:// URL of the JWKS.")
@click.option("--issuer", help="jwt: the required 'iss'.")
@click.option("--audience", help="jwt: the required 'aud'.")
@click.option("--scope", "scopes", multiple=True, help="jwt: a required scope.")
@click.option("--allow", multiple=True, metavar="CIDR", help="Allow only these addresses.")
@click.option("--deny", multiple=True, metavar="CIDR", help="Refuse these addresses.")
@click.option("--rate", type=click.IntRange(1), help="Requests allowed per --per seconds.")
@click.option("--per", type=click.FloatRange(0.001), default=1.0, show_default=True)
@click.option("--cors", "origins", multiple=True, metavar="ORIGIN", help="Allowed CORS origin.")
@click.option("--max-body", type=click.IntRange(1), help="Largest request body, bytes.")
@click.option("--host", help="Also serve the route at this host name's root.")
@click.option(
    "--response-type",
    type=click.Choice(["http", "json", "html", "text", "svg"]),
    default="http",
    show_default=True,
)
@click.option("--overwrite", is_flag=True, help="Replace an existing route.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(
    base_path: str,
    path: str,
    method: str,
    function: str,
    policy: str,
    users: tuple[str, ...],
    api_keys: tuple[str, ...],
    key_query: str | None,
    jwks: str | None,
    issuer: str | None,
    audience: str | None,
    scopes: tuple[str, ...],
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    rate: int | None,
    per: float,
    origins: tuple[str, ...],
    max_body: int | None,
    host: str | None,
    response_type: str,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Route METHOD BASE_PATH+PATH (e.g. /shop /items/{id} GET) to FUNCTION (PKG/FN)."""
    spec: dict[str, Any] = {"type": policy}
    if policy == "basic":
        spec["users"] = _users(users)
    elif policy == "api-key":
        spec.update({"keys": list(api_keys) or None, "query": key_query})
    elif policy == "jwt":
        spec.update({"jwks": jwks, "issuer": issuer, "audience": audience, "scopes": list(scopes)})
    doc: dict[str, Any] = {
        "basePath": base_path,
        "path": path,
        "method": method,
        "function": function,
        "responseType": response_type,
        "policy": {k: v for k, v in spec.items() if v is not None},
    }
    if allow or deny:
        doc["ip"] = {"allow": list(allow), "deny": list(deny)}
    if rate is not None:
        doc["rateLimit"] = {"requests": rate, "per": per}
    if origins:
        doc["cors"] = {"origins": list(origins)}
    if max_body is not None:
        doc["maxBody"] = max_body
    if host:
        doc["host"] = host
    with WispClient.from_credentials() as client:
        params = {"overwrite": "true"} if overwrite else None
        made = client.put(ROUTES, doc, params)
        namespace = made.get("namespace", "") if isinstance(made, dict) else ""
        url = f"{client.apihost}/gw/{namespace}{_full(made)}"
    if not isinstance(made, dict):
        raise CliError("the server's answer is not a route")
    if as_json:
        print_json(made)
        return
    stdout.print(f"{made['method']} {url}")
    for key in made.get("apiKeys") or []:
        stdout.print(f"API key (shown once): {key}")


def _full(doc: Any) -> str:
    if not isinstance(doc, dict):
        return ""
    base = str(doc.get("basePath", "")).rstrip("/")
    return base + str(doc.get("path", ""))


@route.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List the namespace's routes."""
    with WispClient.from_credentials() as client:
        items = client.get(ROUTES)
    if not isinstance(items, list):
        raise CliError("the server's route list is not a list")
    if as_json:
        print_json(items)
        return
    if not items:
        stderr.print("No routes.")
        return
    table = make_table()
    for column in ("method", "path", "function", "policy", "limits"):
        table.add_column(column)
    for item in items:
        rate = item.get("rateLimit") or {}
        limits = f"{rate['requests']}/{rate['per']}s" if rate else "-"
        table.add_row(
            item.get("method", "-"),
            _full(item),
            item.get("function", "-"),
            (item.get("policy") or {}).get("type", "none"),
            limits,
        )
    stdout.print(table)


@route.command()
@click.argument("base_path")
@click.argument("path", required=False)
@click.argument("method", required=False)
def delete(base_path: str, path: str | None, method: str | None) -> None:
    """Delete the routes of BASE_PATH (only PATH, only METHOD)."""
    params = {"basePath": base_path}
    if path:
        params["path"] = path
    if method:
        params["method"] = method
    with WispClient.from_credentials() as client:
        answer = client.request("DELETE", ROUTES, params=params).json()
    count = answer.get("deleted", 0) if isinstance(answer, dict) else 0
    stdout.print(f"Deleted {count} route{'s' * (count != 1)}")
