"""A small typed client for Wisp's OpenWhisk REST API.

Transport failures and error statuses become :class:`CliError` /
:class:`ApiError` carrying the server's ``error`` text, so commands never show
a traceback. Requests go through :mod:`wisp.cli.transport`.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

from wisp.cli.credentials import Credentials, load_credentials
from wisp.cli.errors import ApiError, CliError
from wisp.cli.transport import (
    Closing,
    ConnectError,
    HTTPTransport,
    Request,
    Response,
    Stream,
    Timeout,
    TLSError,
    Transport,
    TransportError,
    basic_auth,
)

NAMESPACE_ROOT = "/api/v1/namespaces/_/"
DEFAULT_TIMEOUT = 60.0
INVOKE_TIMEOUT = 120.0  # a blocking invoke may wait for the server's sync limit first
Params = Mapping[str, str | int]


def entity_path(collection: str, name: str) -> str:
    """``actions/pkg/fn`` for ``pkg/fn``, each segment quoted."""
    parts = [p for p in name.strip("/").split("/") if p]
    if not parts or len(parts) > 2:
        raise CliError(f"{name!r} is not a valid name: use FN or PKG/FN")
    return collection + "/" + "/".join(quote(p, safe="") for p in parts)


class WispClient(Closing):
    def __init__(
        self,
        apihost: str,
        auth: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: Transport | None = None,
    ) -> None:
        self.apihost = apihost.rstrip("/")
        uuid, _, key = auth.partition(":")
        self.timeout = timeout
        self._headers = {
            "authorization": basic_auth(uuid, key),
            "user-agent": "wisp-cli",
            "accept": "application/json",
        }
        try:
            self._transport = transport or HTTPTransport(self.apihost)
        except ValueError as exc:
            raise CliError(f"the API host must be an http:// or https:// URL: {exc}") from exc

    @classmethod
    def from_credentials(cls, credentials: Credentials | None = None) -> WispClient:
        creds = credentials or load_credentials()
        return cls(creds.apihost, creds.auth)

    def close(self) -> None:
        self._transport.close()

    # -- the transport -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        expect: Collection[int] = (200,),
        timeout: float | None = None,
    ) -> Response:
        """Send one request; statuses outside ``expect`` raise :class:`ApiError`."""
        request = self._request(method, path, params, json)
        with self._failures(request):
            response = self._transport.handle(request, self.timeout if timeout is None else timeout)
        if response.status_code not in expect:
            raise _api_error(response)
        return response

    def stream(self, path: str, params: Params | None = None, *, timeout: float) -> Stream:
        """GET ``path`` and read its body as it arrives (Server-Sent Events); close the result.

        ``timeout`` bounds each wait for bytes. Failing to connect or an error status raise
        :class:`CliError` as :meth:`request` does; what breaks while the body is read raises
        :class:`~wisp.cli.transport.TransportError`, for the caller to word.
        """
        request = self._request("GET", path, params, None, accept="text/event-stream")
        with self._failures(request):
            response = self._transport.stream(request, timeout)
        if response.status_code != 200:
            with response, self._failures(request):
                raise _api_error(response.read())
        return response

    def _request(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        accept: str = "application/json",
    ) -> Request:
        url = path if path.startswith("/") else NAMESPACE_ROOT + path
        target = url + ("?" + urlencode(dict(params)) if params else "")
        headers = {**self._headers, "accept": accept}
        content = b""
        if json is not None:
            content = jsonlib.dumps(json, separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        return Request(method, target, headers, content)

    @contextmanager
    def _failures(self, request: Request) -> Iterator[None]:
        """Transport failures as one-line :class:`CliError` s."""
        method, url = request.method, request.path
        try:
            yield
        except TLSError as exc:
            raise CliError(f"TLS with {self.apihost} failed: {exc}") from exc
        except ConnectError as exc:
            raise CliError(
                f"cannot reach Wisp at {self.apihost} — is `wisp server` running?"
            ) from exc
        except Timeout as exc:
            raise CliError(
                f"Wisp at {self.apihost} did not answer in time ({method} {url})"
            ) from exc
        except TransportError as exc:
            raise CliError(f"{method} {self.apihost}{url} failed: {exc}") from exc

    # -- the calls deploying needs (see wisp.deploy.remote.Remote) -------------------------

    def api_info(self) -> dict[str, Any]:
        info = self.request("GET", "/api/v1").json()
        return info if isinstance(info, dict) else {}

    def get(self, path: str, params: Params | None = None) -> Any:
        return _json(self.request("GET", path, params=params))

    def find(self, path: str, params: Params | None = None) -> Any | None:
        response = self.request("GET", path, params=params, expect=(200, 404))
        return None if response.status_code == 404 else _json(response)

    def put(self, path: str, body: Any, params: Params | None = None) -> Any:
        return _json(self.request("PUT", path, params=params, json=body))

    def delete(self, path: str, params: Params | None = None) -> Any:
        return _json(self.request("DELETE", path, params=params))

    def post(self, path: str, body: Any, params: Params | None = None) -> Any:
        return _json(self.request("POST", path, params=params, json=body))

    # -- invoking ------------------------------------------------------------------------

    def invoke(self, name: str, params: dict[str, Any], *, blocking: bool) -> tuple[int, Any]:
        """(status, body): 200 record, 502 failed record, 202 ``{activationId}``."""
        response = self.request(
            "POST",
            entity_path("actions", name),
            params={"blocking": "true" if blocking else "false"},
            json=params,
            expect=(200, 202, 502),
            timeout=INVOKE_TIMEOUT,
        )
        return response.status_code, _json(response)

    def namespace(self) -> str:
        namespaces = self.get("/api/v1/namespaces")
        if not isinstance(namespaces, list) or not namespaces:
            raise CliError(f"{self.apihost} listed no namespace for this key")
        first = namespaces[0]
        return str(first.get("name", "")) if isinstance(first, dict) else str(first)


def _json(response: Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise CliError(
            f"{response.request.method} {response.request.path}: the server answered "
            f"{response.status_code} with a body that is not JSON"
        ) from exc


def _api_error(response: Response) -> ApiError:
    message, code = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or "")
        code = str(body.get("code") or "")
    if not message:
        message = response.text.strip()[:200] or response.reason_phrase
    status = response.status_code
    if status == 401:
        message = f"{message} (run `wisp login` with a valid key)"
    return ApiError(status, message, code)
