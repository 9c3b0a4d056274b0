"""Where the CLI finds its server and key, and ``wisp login``.

The file is JSON ``{"apihost", "auth", "namespace"}`` at ``$WISP_CONFIG`` or
``~/.config/wisp/credentials.json``, readable by its owner only. ``WISP_APIHOST``
and ``WISP_AUTH`` override it. ``wisp server`` calls :func:`save_credentials` on
first start so that the CLI works right away.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from wisp.cli.errors import CliError

CONFIG_ENV = "WISP_CONFIG"
APIHOST_ENV = "WISP_APIHOST"
AUTH_ENV = "WISP_AUTH"
DEFAULT_PATH = Path("~/.config/wisp/credentials.json")


@dataclass(frozen=True)
class Credentials:
    apihost: str
    auth: str  # "uuid:key"
    namespace: str = ""


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get(CONFIG_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_PATH.expanduser()


def save_credentials(apihost: str, auth: str, namespace: str) -> Path:
    """Write the credentials file (mode 0600) and return its path."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(asdict(Credentials(apihost.rstrip("/"), auth, namespace)), indent=2) + "\n"
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the key must never be readable by others, even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials file, overridden by ``WISP_APIHOST`` / ``WISP_AUTH``."""
    env = os.environ if env is None else env
    path = credentials_path(env)
    stored: dict[str, str] = {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read credentials from {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise CliError(f"cannot read credentials from {path}: not a JSON object")
        stored = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
    apihost = env.get(APIHOST_ENV) or stored.get("apihost", "")
    auth = env.get(AUTH_ENV) or stored.get("auth", "")
    if not apihost or not auth:
        raise CliError(
            "not logged in: run `wisp login --apihost URL --auth UUID:KEY`, start `wisp server`, "
            f"or set {APIHOST_ENV} and {AUTH_ENV}"
        )
    # The stored namespace belongs to the stored key; an overriding key may be another's.
    namespace = stored.get("namespace", "") if auth == stored.get("auth") else ""
    return Credentials(apihost.rstrip("/"), auth, namespace)


def check_auth(auth: str) -> str:
    uuid, sep, key = auth.partition(":")
    if not sep or not uuid or not key:
        raise CliError("--auth must look like UUID:KEY")
    return auth


@click.command()
@click.option("--apihost", required=True, help="Wisp API URL, e.g. http://127.0.0.1:3233.")
@click.option("--auth", required=True, help="Namespace key, UUID:KEY.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def login(apihost: str, auth: str, as_json: bool) -> None:
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
    path = save_credentials(apihost, auth, namespace)
    if as_json:
        print_json({"apihost": apihost.rstrip("/"), "namespace": namespace, "path": str(path)})
    else:
        stdout.print(f"Logged in to {apihost} as namespace [bold]{namespace}[/] (saved to {path})")
