"""The web console at ``/ui``: server-rendered pages over the same core as the API.

Every page but sign-in needs a session (see ``session.py``); every read is scoped
to the session's namespace, exactly as the REST API scopes a key, so one
namespace's console never shows another's data. Forms post a CSRF token and are
refused from another origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from wisp.api.activations import normalize_name
from wisp.api.shapes import is_secret
from wisp.console import charts
from wisp.console.session import (
    COOKIE,
    LOGIN_COOKIE,
    Session,
    Signer,
    clear_cookie,
    key_digest,
    new_session,
    same_token,
    set_cookie,
)
from wisp.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, WispError
from wisp.models import DEFAULT_PACKAGE, Action, Activation, Namespace
from wisp.namespaces import authenticate
from wisp.observability.rollups import WINDOWS

if TYPE_CHECKING:
    from wisp.api.context import ApiContext
    from wisp.observability import Observability

log = logging.getLogger("wisp.console")
HERE = Path(__file__).parent
FORM_MAX = 64 * 1024  # bytes of a form other than the invoke parameters
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Console:
    def __init__(self, ctx: ApiContext, obs: Observability, signer: Signer) -> None:
        self.ctx = ctx
        self.obs = obs
        self.signer = signer
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    def routes(self) -> list[BaseRoute]:
        page = self._page
        return [
            Mount(
                "/ui",
                routes=[
                    Route("/", page(self.home)),
                    Route("/login", page(self.login, public=True), methods=["GET", "POST"]),
                    Route("/logout", page(self.logout), methods=["POST"]),
                    Route("/functions", page(self.functions)),
                    Route("/new", page(self.edit), methods=["GET", "POST"]),
                    Route("/edit/{path:path}", page(self.edit), methods=["GET", "POST"]),
                    Route("/functions/{path:path}/invoke", page(self.invoke), methods=["POST"]),
                    Route("/functions/{path:path}", page(self.function)),
                    Route("/activations", page(self.activations)),
                    Route("/activations/{id}", page(self.activation)),
                    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
                ],
            )
        ]

    # -- plumbing ------------------------------------------------------------
    def _page(self, handler: Any, public: bool = False) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                if request.method == "POST":
                    _same_origin(request)
                session = None if public else await self._session(request)
                if not public and session is None:
                    return RedirectResponse("/ui/login", status_code=303)
                response: Response = await handler(request, session)
            except WispError as exc:
                response = self._render(request, "error.html", None, exc.status, error=exc.message)
            except Exception:
                log.exception("the console failed to serve %s", request.url.path)
                response = self._render(
                    request, "error.html", None, 500, error="Wisp failed; see the server log."
                )
            response.headers.update(HEADERS)
            return response

        return endpoint

    async def _session(self, request: Request) -> Session | None:
        session = self.signer.loads(request.cookies.get(COOKIE))
        if session is None:
            return None
        ns = await run_in_threadpool(self.ctx.platform.store.namespace_by_uuid, session.uuid)
        if ns is None or ns.name != session.namespace:
            return None
        if key_digest(ns.key_hash) != session.key_digest:
            return None  # the key was rotated or revoked
        return session

    def _render(
        self, request: Request, name: str, session: Session | None, status: int = 200, **values: Any
    ) -> Response:
        context = {"session": session, "csrf": session.csrf if session else "", **values}
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def _form(self, request: Request, session: Session | None, limit: int) -> dict[str, str]:
        body = await _body(request, limit)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if session is not None and not same_token(form.get("csrf"), session.csrf):
            raise Forbidden("The form's CSRF token is missing or stale: reload the page.")
        return form

    # -- sign in and out -----------------------------------------------------
    async def login(self, request: Request, session: Session | None) -> Response:
        if request.method == "GET":
            token = secrets.token_urlsafe(24)
            response = self._render(request, "login.html", None, login_csrf=token)
            set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
            return response
        form = await self._form(request, None, FORM_MAX)
        if not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            raise Forbidden("The sign-in form expired: reload the page.")
        key = form.get("key", "").strip()
        namespace: Namespace | None = None
        if key:
            namespace = await run_in_threadpool(authenticate, self.ctx.platform.store, key)
        if namespace is None:
            token = secrets.token_urlsafe(24)
            response = self._render(
                request,
                "login.html",
                None,
                401,
                login_csrf=token,
                error="That key was not accepted. Use the namespace's UUID:KEY.",
            )
            set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
            return response
        new = new_session(namespace.name, namespace.uuid, namespace.key_hash)
        response = RedirectResponse("/ui/functions", status_code=303)
        set_cookie(response, COOKIE, self.signer.dumps(new))
        clear_cookie(response, LOGIN_COOKIE)
        return response

    async def logout(self, request: Request, session: Session | None) -> Response:
        await self._form(request, session, FORM_MAX)
        response = RedirectResponse("/ui/login", status_code=303)
        clear_cookie(response, COOKIE)
        return response

    async def home(self, request: Request, session: Session | None) -> Response:
        return RedirectResponse("/ui/functions", status_code=303)

    # -- pages ---------------------------------------------------------------
    async def functions(self, request: Request, session: Session | None) -> Response:
        assert session is not None
        ns = session.namespace
        window = _window(request)
        actions = await run_in_threadpool(self.ctx.entities.list_actions, ns, None, 200, 0)
        rows = []
        for action in actions:
            last = await run_in_threadpool(self.ctx.platform.writer.list, ns, action.path, limit=1)
            rows.append({"action": action, "last": last[0] if last else None})
        points = await run_in_threadpool(self.obs.rollups.series, ns, None, window)
        return self._render(
            request,
            "functions.html",
            session,
            rows=rows,
            window=window,
            windows=list(WINDOWS),
            charts=charts.dashboard(points),
            total=sum(p.count for p in points),
        )

    async def function(self, request: Request, session: Session | None, **extra: Any) -> Response:
        assert session is not None
        action = await self._action(session, request.path_params["path"])
        window = _window(request)
        store = self.ctx.platform.store
        versions = await run_in_threadpool(
            store.list_action_versions, action.namespace, action.package, action.name
        )
        recent = await run_in_threadpool(
            self.ctx.platform.writer.list, session.namespace, action.path, limit=10
        )
        points = await run_in_threadpool(
            self.obs.rollups.series, session.namespace, action.path, window
        )
        return self._render(
            request,
            "function.html",
            session,
            extra.pop("status", 200),
            action=action,
            code=None if action.exec.binary else action.exec.code,
            parameters=redacted(action.parameters),
            versions=versions,
            web_url=self._web_url(action),
            recent=recent,
            window=window,
            windows=list(WINDOWS),
            charts=charts.dashboard(points),
            params_text=extra.pop("params_text", "{}"),
            **extra,
        )

    async def edit(self, request: Request, session: Session | None) -> Response:
        from wisp.console.editing import edit_page

        return await edit_page(self, request, session)

    async def invoke(self, request: Request, session: Session | None) -> Response:
        assert session is not None
        limits = self.ctx.platform.settings.limits
        form = await self._form(request, session, FORM_MAX + 3 * limits.payload_max)
        path = request.path_params["path"]
        action = await self._action(session, path)
        text = form.get("params", "").strip() or "{}"
        try:
            params = json.loads(text)
        except ValueError as exc:
            return await self._invalid(request, session, text, f"Parameters are not JSON: {exc}")
        if not isinstance(params, dict):
            return await self._invalid(request, session, text, "Parameters must be a JSON object.")
        if len(text.encode()) > limits.payload_max:
            return await self._invalid(
                request, session, text, f"Parameters exceed {limits.payload_max} bytes."
            )
        target = await run_in_threadpool(
            self.ctx.entities.resolve_target, session.namespace, action.package, action.name
        )
        invocation = self.ctx.platform.invoker.submit(target, params, subject=session.namespace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(invocation.done), self.ctx.platform.settings.sync_limit
            )
        return RedirectResponse(f"/ui/activations/{invocation.activation_id}", status_code=303)

    async def _invalid(self, request: Request, session: Session, text: str, error: str) -> Response:
        return await self.function(request, session, status=400, error=error, params_text=text)

    async def activations(self, request: Request, session: Session | None) -> Response:
        assert session is not None
        function = request.query_params.get("function", "").strip()
        status = request.query_params.get("status", "")
        if status not in ("", "success", "error"):
            raise BadRequest("status must be success or error")
        name = normalize_name(function) or None if function else None
        found = await run_in_threadpool(
            self.ctx.platform.writer.list, session.namespace, name, limit=200
        )
        if status:
            found = [r for r in found if (r.status_code == 0) == (status == "success")]
        return self._render(
            request,
            "activations.html",
            session,
            records=found[:100],
            function=function,
            wanted=status,
        )

    async def activation(self, request: Request, session: Session | None) -> Response:
        assert session is not None
        aid = request.path_params["id"]
        record = await run_in_threadpool(self.ctx.platform.writer.get, session.namespace, aid)
        if record is None:
            raise NotFound(
                "The requested activation record does not exist. It may still be running "
                "(reload in a moment), or its retention period has expired."
            )
        return self._render(
            request,
            "activation.html",
            session,
            record=record,
            notes=notes(record),
            result=json.dumps(record.result, indent=2, sort_keys=True),
        )

    # -- helpers -------------------------------------------------------------
    async def _action(self, session: Session, path: str) -> Action:
        parts = [p for p in path.split("/") if p]
        if len(parts) == 1:
            package, name = DEFAULT_PACKAGE, parts[0]
        elif len(parts) == 2:
            package, name = parts
        else:
            raise NotFound(f"No function {path!r}.")
        return await run_in_threadpool(
            self.ctx.entities.get_action, session.namespace, package, name
        )

    def _web_url(self, action: Action) -> str | None:
        exported = any(
            a.get("key") == "web-export" and a.get("value") is True for a in action.annotations
        )
        if not exported:
            return None
        host = self.ctx.platform.settings.public_api_host.rstrip("/")
        parts = [action.namespace, action.package, action.name]
        return f"{host}/api/v1/web/" + "/".join(quote(p, safe="") for p in parts)


def redacted(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parameters for display: environment entries and secret-looking keys hidden."""
    shown = []
    for item in parameters:
        key = str(item.get("key", ""))
        value = "••••••" if is_secret(item) else json.dumps(item.get("value"))
        shown.append({"key": key, "value": value, "env": item.get("init") is True})
    return shown


def notes(record: Activation) -> dict[str, Any]:
    found = {a.get("key"): a.get("value") for a in record.annotations}
    return {
        "cold": "initTime" in found,
        "init": found.get("initTime"),
        "wait": found.get("waitTime"),
        "cpu": found.get("cpuTime"),
        "memory": found.get("peakMemory"),
        "kind": found.get("kind"),
        "timeout": found.get("timeout") is True,
        "oom": found.get("oom") is True,
    }


def _window(request: Request) -> str:
    window = request.query_params.get("window", "1h")
    if window not in WINDOWS:
        raise BadRequest(f"window must be one of {', '.join(WINDOWS)} (got {window!r})")
    return window


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return  # not sent by every client; the CSRF token still guards the post
    expected = f"{request.url.scheme}://{request.url.netloc}"
    if origin != expected:
        raise Forbidden("Cross-origin form posts are refused.")


async def _body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The form is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
