"""Where the CLI finds its server and key: named contexts, ``wisp login`` and ``wisp context``.

The file (``$WISP_CONFIG`` or ``~/.config/wisp/credentials.json``, readable by its
owner only) holds named contexts, as ``doctl auth`` does::

    {"current": "127.0.0.1:3233",
     "contexts": {"127.0.0.1:3233": {"apihost": ..., "auth": ..., "namespace": ...}}}

A context is named after its API host unless ``wisp login --context`` names it.
``WISP_CONTEXT`` picks another context for one command; ``WISP_APIHOST`` and
``WISP_AUTH`` override the context. ``wisp server`` writes only the context of its own
API host (:func:`save_server_context`), and makes it current only when none is. A file
of the older single-context shape (``{"apihost", "auth", "namespace"}``) is read as one
context.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import click

from wisp.cli.errors import CliError

CONFIG_ENV = "WISP_CONFIG"
CONTEXT_ENV = "WISP_CONTEXT"
APIHOST_ENV = "WISP_APIHOST"
AUTH_ENV = "WISP_AUTH"
DEFAULT_PATH = Path("~/.config/wisp/credentials.json")


@dataclass(frozen=True)
class Credentials:
    apihost: str
    auth: str  # "uuid:key"
    namespace: str = ""


@dataclass
class Contexts:
    current: str = ""
    contexts: dict[str, Credentials] = field(default_factory=dict)


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get(CONFIG_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_PATH.expanduser()


def context_name(apihost: str) -> str:
    """The default name of a context: its API host's ``host:port``."""
    return urlsplit(apihost).netloc or apihost.rstrip("/")


def read_contexts(path: Path) -> Contexts:
    if not path.is_file():
        return Contexts()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read credentials from {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CliError(f"cannot read credentials from {path}: not a JSON object")
    if "contexts" not in raw:  # the single-context file written before contexts
        single = _credentials(raw)
        if single is None:
            return Contexts()
        name = context_name(single.apihost)
        return Contexts(name, {name: single})
    entries = raw.get("contexts")
    if not isinstance(entries, dict):
        raise CliError(f"cannot read credentials from {path}: 'contexts' is not an object")
    contexts = {
        str(name): creds
        for name, entry in entries.items()
        if (creds := _credentials(entry)) is not None
    }
    current = raw.get("current")
    return Contexts(current if isinstance(current, str) else "", contexts)


def _credentials(entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    apihost, auth, namespace = (entry.get(k) for k in ("apihost", "auth", "namespace"))
    if not isinstance(apihost, str) or not isinstance(auth, str) or not apihost or not auth:
        return None
    return Credentials(apihost, auth, namespace if isinstance(namespace, str) else "")


def write_contexts(contexts: Contexts, path: Path | None = None) -> Path:
    """Write the file (mode 0600, replaced atomically) and return its path."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "current": contexts.current,
        "contexts": {name: asdict(creds) for name, creds in sorted(contexts.contexts.items())},
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the key must never be readable by others, even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(doc, indent=2) + "\n")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def save_credentials(apihost: str, auth: str, namespace: str, name: str = "") -> Path:
    """Add or replace a context and make it current (what ``wisp login`` does)."""
    path = credentials_path()
    contexts = read_contexts(path)
    name = name or context_name(apihost)
    contexts.contexts[name] = Credentials(apihost.rstrip("/"), auth, namespace)
    contexts.current = name
    return write_contexts(contexts, path)


def save_server_context(apihost: str, auth: str, namespace: str) -> str:
    """Create or update the context of a server's own API host; make it current only
    when no other context is. Returns what was done, for the start-up banner."""
    path = credentials_path()
    contexts = read_contexts(path)
    name = context_name(apihost)
    existed = name in contexts.contexts
    contexts.contexts[name] = Credentials(apihost.rstrip("/"), auth, namespace)
    if contexts.current not in contexts.contexts or contexts.current == name:
        contexts.current = name
        now = "current"
    else:
        now = f"not current: {contexts.current} is (`wisp context use {name}` switches)"
    write_contexts(contexts, path)
    return f"{'updated' if existed else 'created'} context {name} in {path}, {now}"


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The current context (or ``WISP_CONTEXT``'s), overridden by ``WISP_APIHOST`` /
    ``WISP_AUTH``."""
    env = os.environ if env is None else env
    path = credentials_path(env)
    contexts = read_contexts(path)
    chosen = env.get(CONTEXT_ENV) or contexts.current
    if env.get(CONTEXT_ENV) and chosen not in contexts.contexts:
        raise CliError(f"{CONTEXT_ENV}={chosen}: no such context; {_known(contexts)}")
    stored = contexts.contexts.get(chosen)
    apihost = env.get(APIHOST_ENV) or (stored.apihost if stored else "")
    auth = env.get(AUTH_ENV) or (stored.auth if stored else "")
    if not apihost or not auth:
        raise CliError(
            "not logged in: run `wisp login --apihost URL --auth UUID:KEY`, start `wisp server`, "
            f"`wisp context use NAME`, or set {APIHOST_ENV} and {AUTH_ENV}"
        )
    # The stored namespace belongs to the stored key; an overriding key may be another's.
    namespace = stored.namespace if stored and auth == stored.auth else ""
    return Credentials(apihost.rstrip("/"), auth, namespace)


def _known(contexts: Contexts) -> str:
    names = ", ".join(sorted(contexts.contexts))
    return f"contexts: {names}" if names else "there is no context (`wisp login` adds one)"


def check_auth(auth: str) -> str:
    uuid, sep, key = auth.partition(":")
    if not sep or not uuid or not key:
        raise CliError("--auth must look like UUID:KEY")
    return auth


@click.command()
@click.option("--apihost", required=True, help="Wisp API URL, e.g. http://127.0.0.1:3233.")
@click.option("--auth", required=True, help="Namespace key, UUID:KEY.")
@click.option(
    "--context",
    "name",
    default="",
    help="Name of the context to add or replace (default: the API host's host:port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def login(apihost: str, auth: str, name: str, as_json: bool) -> None:
    """Check a key against the server and save it for later commands."""
    from wisp.cli.client import WispClient
    from wisp.cli.output import print_json, stdout

    if not apihost.startswith(("http://", "https://")):
        raise CliError(f"--apihost must be an http:// or https:// URL, not {apihost!r}")
    with WispClient(apihost, check_auth(auth)) as client:
        namespaces = client.get("/api/v1/namespaces")
    if not isinstance(namespaces, list) or not namespaces:
        raise CliError(f"{apihost} listed no namespace for this key")
    first = namespaces[0]
    namespace = str(first.get("name", "")) if isinstance(first, dict) else str(first)
    name = name or context_name(apihost)
    path = save_credentials(apihost, auth, namespace, name)
    if as_json:
        print_json(
            {
                "apihost": apihost.rstrip("/"),
                "namespace": namespace,
                "context": name,
                "path": str(path),
            }
        )
    else:
        stdout.print(
            f"Logged in to {apihost} as namespace [bold]{namespace}[/] "
            f"(context {name}, now current; saved to {path})"
        )
