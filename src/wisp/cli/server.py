"""``wisp server``: run the whole platform in this process."""

from __future__ import annotations

from pathlib import Path

import click

from wisp.cli.errors import CliError
from wisp.config import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, load_settings


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the SQLite store and guest.key live.",
)
@click.option(
    "--isolation",
    type=click.Choice(["minimal", "userns", "standard", "strict"]),
    default=None,
    help="Refuse to start unless sandboxes achieve at least this level "
    "(strict: root, cgroups, namespaces, seccomp, egress filter; userns: "
    "namespaces in a user namespace, without root; the default). 'minimal' "
    "(no namespaces: single-tenant only) runs only when asked for by this flag "
    "[env WISP_ISOLATION].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Platform logs on stderr: text (default) or JSON lines with request ids "
    "[env WISP_LOG_FORMAT].",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="A line per HTTP request (method, path, status, duration, request id) among "
    "the platform logs; on by default [env WISP_ACCESS_LOG=on|off].",
)
@click.option(
    "--otlp-endpoint",
    default=None,
    metavar="URL",
    help="Export a span per invocation to this OTLP/HTTP collector (needs wisp[otel]) "
    "[env WISP_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT].",
)
def server(
    host: str,
    port: int,
    data_dir: Path,
    isolation: str | None,
    log_format: str | None,
    access_log: bool | None,
    otlp_endpoint: str | None,
) -> None:
    """Run the platform (API, invoker, sandboxes) with embedded defaults.

    On first start it creates the namespace `guest`, writes its key to
    DATA_DIR/guest.key and saves CLI credentials. WISP_DATABASE_URL overrides
    the store.
    """
    try:
        settings = load_settings(
            host=host,
            port=port,
            data_dir=data_dir,
            isolation=isolation,
            log_format=log_format,
            access_log=None if access_log is None else "on" if access_log else "off",
            otlp_endpoint=otlp_endpoint,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    # Imported here so that every other command starts without loading the server.
    from wisp.errors import WispError
    from wisp.server import serve

    try:
        serve(settings)
    except WispError as exc:
        raise CliError(str(exc)) from exc  # the operator's view: StoreUnavailable's detail
