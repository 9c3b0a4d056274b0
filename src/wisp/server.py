"""``wisp server``: the whole platform in one process tree, with embedded defaults.

api + invoker + pool in this asyncio process; sandboxes are forked from zygote
processes it starts; the store is SQLite in the data dir unless WISP_DATABASE_URL
says otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.platform import Platform
from wisp.secrets import Vault, load_master_key
from wisp.store import Store, open_store

if TYPE_CHECKING:
    from wisp.invoker.base import Target
    from wisp.invoker.request import ActionRef
    from wisp.runtimes import RuntimeTable

log = logging.getLogger("wisp.server")

GUEST = "guest"


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    """Assemble the core services for ``settings`` (nothing is started yet)."""
    from wisp.builds import Builder
    from wisp.builds.cache import BuildCache
    from wisp.builds.sandbox import BuildSandbox
    from wisp.invoker.deadletters import DeadLetters
    from wisp.invoker.journal import AcceptJournal
    from wisp.invoker.local import LocalInvoker
    from wisp.invoker.quotas import Quotas
    from wisp.pool import Pool
    from wisp.runtimes import RuntimeTable, discover
    from wisp.sandbox.bundles import BundleCache, bundle_root
    from wisp.sandbox.local import LocalSandbox
    from wisp.store.writer import ActivationWriter

    store = store or open_store(settings.store_url)
    extra_runtimes = Path(settings.runtimes_file) if settings.runtimes_file else None
    runtimes = RuntimeTable(discover(extra_runtimes))
    writer = ActivationWriter(
        store,
        batch=settings.writer_batch,
        interval=settings.writer_interval,
        backlog=settings.writer_backlog,
    )
    code_root = bundle_root(settings.data_dir)
    sandbox = LocalSandbox(settings, runtimes, code_roots=[code_root])
    pool = Pool(sandbox, settings.pool_memory_mb, settings.keepalive)
    bundles = BundleCache(code_root, settings.limits.code_max * 4)
    quotas = Quotas(settings, lambda name: _namespace_limits(store, name))
    journal = AcceptJournal(settings.data_dir / "journal", writer)
    dead_letters = DeadLetters(store)
    invoker = LocalInvoker(
        settings,
        sandbox,
        pool,
        writer,
        bundles,
        quotas,
        journal,
        _resolver(store, runtimes),
        dead_letters,
    )
    # Builds run in sandboxes like instances' (wisp.builds.sandbox), as uids no instance has.
    cache = BuildCache(bundles.root.parent / "build-cache")
    jail = BuildSandbox(sandbox, settings)
    builder = Builder(bundles, cache, settings.limits.code_max, jail, settings.build_timeout)
    master = load_master_key(settings.data_dir, settings.master_key_file, settings.master_key)
    vault = Vault(store, master)
    invoker.executor.vault = vault
    return Platform(settings, store, writer, runtimes, invoker, builder, vault)


def _resolver(store: Store, runtimes: RuntimeTable) -> Callable[[ActionRef], Target | None]:
    """An action version as the invoker runs it: for work journaled before a restart."""
    from wisp.entities import bind_target
    from wisp.invoker.retries import parse_invoke_config
    from wisp.models import DEFAULT_PACKAGE

    def resolve(ref: ActionRef) -> Target | None:
        action = store.get_action_version(*ref)
        if action is None:
            return None
        package = None
        if ref.package != DEFAULT_PACKAGE:
            package = store.get_package(ref.namespace, ref.package)
        target = bind_target(action, package, runtimes)
        config = store.get_invoke_config(ref.namespace, ref.package, ref.name)
        if config is not None:  # a retry waiting across the restart runs by its policy
            target.invoke_config = parse_invoke_config(config)
        return target

    return resolve


def _namespace_limits(store: Store, name: str) -> dict[str, object] | None:
    ns = store.get_namespace(name)
    return ns.limits if ns is not None else None


def prepare_data_dir(data_dir: Path) -> None:
    # Sandboxed uids must traverse it (to reach bundles/) but never list or read it:
    # the database and keys are created 0600 under a 077 umask.
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o711)


def ensure_guest(store: Store, settings: Settings) -> tuple[str | None, str]:
    """Create the ``guest`` namespace on first start. Returns its auth when this data
    dir holds a working key, and what the start-up banner should say about the key."""
    from wisp.namespaces import authenticate, create_namespace

    key_file = settings.data_dir / "guest.key"
    if store.get_namespace(GUEST) is None:
        _, auth = create_namespace(store, GUEST)
        key_file.write_text(auth + "\n")
        os.chmod(key_file, 0o600)
        return auth, str(key_file)
    fix = f"get one with `wisp admin namespace key {GUEST}` (it replaces the old key)"
    if not key_file.exists():
        # Another server (a replica on the same database) created it and holds the key.
        return None, f"none here: {GUEST} was created by another server; {fix}"
    auth = key_file.read_text().strip()
    if authenticate(store, auth) is None:
        return None, f"{key_file} no longer works (the key was replaced or another store); {fix}"
    return auth, str(key_file)


def save_cli_context(settings: Settings, auth: str) -> str:
    """Save the CLI context of this server's API host; what was done, for the banner."""
    from wisp.cli.credentials import save_server_context
    from wisp.cli.errors import CliError

    try:
        return save_server_context(settings.public_api_host, auth, GUEST)
    except (OSError, CliError) as exc:
        message = exc.message if isinstance(exc, CliError) else str(exc)
        log.warning("could not store the CLI context: %s", message)
        return f"not saved: {message}"


def serve(settings: Settings) -> None:
    import uvicorn

    from wisp.api.app import create_app
    from wisp.api.http import HttpProtocol
    from wisp.observability import logs

    logs.configure(settings.log_format)
    prepare_data_dir(settings.data_dir)
    # Bind before anything else: a taken port must not leave CLI credentials that
    # point at whichever server holds it.
    listener = bind(settings.host, settings.port)
    store = open_store(settings.store_url)
    auth, guest_key = ensure_guest(store, settings)
    cli_context = save_cli_context(settings, auth) if auth else ""
    platform = build_platform(settings, store)
    app = create_app(platform)
    invoker = platform.invoker
    invoker.prepare()  # refuse to start below --isolation, before serving
    banner = {
        "listening": settings.public_api_host,
        "store": redact(settings.store_url),
        **invoker.describe(),
        **platform.runtimes.banner(),
        "guest_key": guest_key,
    }
    if cli_context:
        banner["cli"] = cli_context
    if platform.builder is not None:
        banner["builds"] = platform.builder.sandbox.describe()
    if settings.otlp_endpoint:
        banner["otlp"] = settings.otlp_endpoint
    if settings.log_format == "json":  # stderr stays one JSON object per line
        log.info("Wisp listening on %s", settings.public_api_host, extra=banner)
    else:
        print(
            f"Wisp listening on {banner.pop('listening')}\n"
            + "\n".join(f"  {k.replace('_', ' ') + ':':<10} {v}" for k, v in banner.items()),
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HttpProtocol,  # httptools, each small response in one send
        log_level="warning",
        log_config=None,  # uvicorn's loggers go through ours (text or JSON)
        access_log=False,
        # The gateway reads X-Forwarded-For itself, from WISP_TRUSTED_PROXIES only;
        # uvicorn's rewriting trusted any client on 127.0.0.1 (and cost a middleware).
        proxy_headers=False,
        lifespan="on",
        # Connections get as long as running activations (a blocking call's answer).
        timeout_graceful_shutdown=max(1, round(settings.drain_seconds)),
    )
    events = app.state.observability.events

    def stopping() -> None:
        invoker.drain()  # new invokes 503, queued ones stay journaled
        events.close()

    try:
        _server_class(stopping)(config).run(sockets=[listener])
    finally:
        # Access lines still pending: a closing loop need not run the flush
        # scheduled in its last turn.
        access: logs.AccessLog | None = app.state.access_log
        if access is not None:
            access.flush()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise PlatformError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.set_inheritable(False)
    return listener


def _server_class(stopping: Callable[[], None]) -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown; for `wisp server`
        a requested stop that shut down cleanly is a clean exit (status 0). ``stopping``
        runs first: it ends the live streams, which would otherwise hold the stop for
        the whole graceful timeout and then be cancelled with a traceback."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stopping()
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server


def redact(url: str) -> str:
    """Hide a password in a database URL."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url
