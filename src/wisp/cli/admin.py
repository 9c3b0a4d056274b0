"""``wisp admin``: operator commands that open the store directly (no API call)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wisp.cli.errors import CliError
from wisp.cli.output import print_json, stderr, stdout
from wisp.config import DEFAULT_DATA_DIR, load_settings

if TYPE_CHECKING:
    from wisp.store import Store

T = TypeVar("T")


@click.group()
def admin() -> None:
    """Operator commands; they use the store of --data-dir (or WISP_DATABASE_URL)."""


@admin.group()
def namespace() -> None:
    """Manage namespaces."""


DATA_DIR = click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data directory.",
)


def _with_store(data_dir: Path, work: Callable[[Store], T]) -> T:
    """Run ``work`` against the store of ``data_dir`` (or WISP_DATABASE_URL)."""
    # Lazy imports: the store and its drivers are only needed here.
    from wisp.errors import WispError
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
            return work(store)
        finally:
            store.close()
    except WispError as exc:
        raise CliError(exc.message) from exc


@namespace.command("create")
@click.argument("name")
@DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create(name: str, data_dir: Path, as_json: bool) -> None:
    """Create namespace NAME and print its key (UUID:KEY)."""
    from wisp.namespaces import create_namespace

    created, auth = _with_store(data_dir, lambda store: create_namespace(store, name))
    if as_json:
        print_json({"namespace": created.name, "uuid": created.uuid, "auth": auth})
        return
    # The key alone on stdout, so that `KEY=$(wisp admin namespace create x)` works.
    stderr.print(f"Created namespace [bold]{created.name}[/]; its key (shown only once):")
    stdout.print(auth)


@namespace.command("key")
@click.argument("name")
@DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def key(name: str, data_dir: Path, as_json: bool) -> None:
    """Issue a new key (UUID:KEY) for namespace NAME and print it.

    Only a hash of each key is stored, so a key cannot be read back: this replaces
    NAME's key, and the previous one stops working (on every server within 30 s).
    """
    from wisp.namespaces import issue_key

    auth = _with_store(data_dir, lambda store: issue_key(store, name))
    if as_json:
        print_json({"namespace": name, "auth": auth})
        return
    stderr.print(
        f"New key for namespace [bold]{name}[/] (shown only once; the previous key no "
        "longer works):"
    )
    stdout.print(auth)


@namespace.command("limits")
@click.argument("name")
@click.option("--concurrent", type=click.IntRange(min=1), help="Invocations in flight at once.")
@click.option("--per-minute", type=click.IntRange(min=1), help="Invocations started per minute.")
@click.option("--reset", is_flag=True, help="Drop the overrides: back to the platform defaults.")
@DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the overrides as JSON.")
def limits(
    name: str,
    concurrent: int | None,
    per_minute: int | None,
    reset: bool,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Show or set namespace NAME's quotas (running servers apply them within 3 s)."""

    def apply(store: Store) -> dict[str, Any]:
        current = store.get_namespace(name)
        if current is None:
            raise CliError(f"namespace {name!r} does not exist")
        overrides = {} if reset else dict(current.limits)
        if concurrent is not None:
            overrides["concurrentActions"] = concurrent
        if per_minute is not None:
            overrides["invocationsPerMinute"] = per_minute
        if reset or concurrent is not None or per_minute is not None:
            store.set_namespace_limits(name, overrides)
        return overrides

    overrides = _with_store(data_dir, apply)
    if as_json:
        print_json(overrides)
        return
    shown = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "platform defaults"
    stdout.print(f"{name}: {shown}")


@admin.command("rotate-master-key")
@DATA_DIR
@click.option(
    "--new-key",
    default="",
    help="The new key (base64 of 32 bytes) when the key comes from WISP_MASTER_KEY; "
    "default: a new random key written to the key file.",
)
def rotate_master_key(data_dir: Path, new_key: str) -> None:
    """Re-wrap every namespace's data key with a new master key (values are not
    re-encrypted). The new key is written to the key file (data dir's master.key or
    WISP_MASTER_KEY_FILE); with WISP_MASTER_KEY, give --new-key and set it after."""
    import base64

    from wisp import secrets

    try:
        settings = load_settings(data_dir=data_dir)
        master = secrets.load_master_key(
            settings.data_dir, settings.master_key_file, settings.master_key
        )
        fresh = secrets.parse_master_key(new_key, "--new-key") if new_key else None
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if settings.master_key and fresh is None:
        raise CliError("the master key comes from WISP_MASTER_KEY: give the new one as --new-key")
    fresh = fresh or base64.b64decode(secrets.new_key_text())
    path = None
    if not settings.master_key:
        path = Path(settings.master_key_file or settings.data_dir / secrets.MASTER_KEY_FILE)
        # The new key is on disk before any data key depends on it: a crash between
        # the two leaves it in master.key.pending, never lost.
        pending = path.with_name(path.name + ".pending")
        secrets.write_master_key(pending, fresh)
    count = _with_store(data_dir, lambda store: secrets.Vault(store, master).rotate(fresh))
    if path is not None:
        pending.replace(path)
        stderr.print(f"Re-wrapped {count} data key(s); the new master key is in {path}.")
    else:
        stderr.print(f"Re-wrapped {count} data key(s); set WISP_MASTER_KEY to the new key now.")
