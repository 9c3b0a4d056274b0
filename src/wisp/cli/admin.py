"""``wisp admin``: operator commands that open the store directly (no API call)."""

from __future__ import annotations

from pathlib import Path

import click

from wisp.cli.errors import CliError
from wisp.cli.output import print_json, stderr, stdout
from wisp.config import DEFAULT_DATA_DIR, load_settings


@click.group()
def admin() -> None:
    """Operator commands; they use the store of --data-dir (or WISP_DATABASE_URL)."""


@admin.group()
def namespace() -> None:
    """Manage namespaces."""


@namespace.command("create")
@click.argument("name")
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create(name: str, data_dir: Path, as_json: bool) -> None:
    """Create namespace NAME and print its key (UUID:KEY)."""
    # Lazy imports: the store and its drivers are only needed here.
    from wisp.errors import WispError
    from wisp.namespaces import create_namespace
    from wisp.store import open_store

    try:
        settings = load_settings(data_dir=data_dir)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not settings.database_url and not data_dir.is_dir():
        raise CliError(f"{data_dir} is not a Wisp data directory (start `wisp server` first)")
    try:
        store = open_store(settings.store_url)
        try:
            created, auth = create_namespace(store, name)
        finally:
            store.close()
    except WispError as exc:
        raise CliError(exc.message) from exc
    if as_json:
        print_json({"namespace": created.name, "uuid": created.uuid, "auth": auth})
        return
    # The key alone on stdout, so that `KEY=$(wisp admin namespace create x)` works.
    stderr.print(f"Created namespace [bold]{created.name}[/]; its key (shown only once):")
    stdout.print(auth)
