"""``wisp runtimes``: the kinds the server runs, and what runs each kind it maps."""

from __future__ import annotations

from typing import Any

import click

from wisp.cli.client import WispClient
from wisp.cli.output import make_table, print_json, stdout


def runtime_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per kind from ``GET /api/v1``'s ``runtimes``: installed kinds first."""
    rows: list[dict[str, Any]] = []
    for family, entries in sorted(table.items()):
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not entry.get("kind"):
                continue
            rows.append(
                {
                    "family": family,
                    "kind": str(entry["kind"]),
                    "default": bool(entry.get("default")),
                    "runs": str(entry.get("alias") or entry["kind"]),
                    "version": str(entry.get("version") or ""),
                }
            )
    return sorted(rows, key=lambda r: (r["family"], r["kind"] != r["runs"], r["kind"]))


@click.command("runtimes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def runtimes(as_json: bool) -> None:
    """The runtime kinds the server accepts, and the installed one that runs each."""
    with WispClient.from_credentials() as client:
        rows = runtime_rows(client.api_info().get("runtimes") or {})
    if as_json:
        print_json(rows)
        return
    table = make_table()
    for column in ("KIND", "RUNS ON", "VERSION", "DEFAULT"):
        table.add_column(column)
    for row in rows:
        runs = "itself" if row["runs"] == row["kind"] else row["runs"]
        table.add_row(row["kind"], runs, row["version"], "yes" if row["default"] else "")
    stdout.print(table)
