"""The console's create / edit page: a function's code in a code editor, deployed
through the same core call as ``PUT …/actions/{name}`` (``EntityService.put_action``).

The page is a plain form (it works without JavaScript: the code is a textarea); the
editor (Ace, served from ``static/editor``, see scripts/vendor-editor) takes the
textarea's place when its script loads. A failed deploy shows the form again with the
error and the code as it was typed: nothing is lost.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wisp.api.shapes import action_json
from wisp.errors import WispError
from wisp.models import DEFAULT_PACKAGE

if TYPE_CHECKING:
    from wisp.console.session import Session
    from wisp.console.views import Console

STARTER = (
    "def main(args):\n"
    "    name = args.get('name', 'stranger')\n"
    "    return {'body': f'Hello {name}!'}\n"
)
MODES = {"python": "python", "nodejs": "javascript", "php": "php", "go": "golang"}


async def edit_page(console: Console, request: Request, session: Session | None) -> Response:
    assert session is not None
    path = request.path_params.get("path", "")
    action = await console._action(session, path) if path else None
    if request.method == "GET":
        if action is None:
            return _form(console, request, session, None, "", "python:default", STARTER)
        code = action.exec.code if not action.exec.binary else None
        if code is None:
            return _form(
                console,
                request,
                session,
                action.path,
                action.path,
                action.exec.kind,
                "",
                error="This function is a zip bundle: redeploy it with `wisp deploy`.",
                status=409,
            )
        return _form(console, request, session, action.path, action.path, action.exec.kind, code)
    limit = console.ctx.entity_body_max + 4096
    form = await console._form(request, session, limit)
    name = (action.path if action else form.get("name", "")).strip().strip("/")
    kind = form.get("kind", "").strip() or "python:default"
    code = form.get("code", "").replace("\r\n", "\n")
    existing = action.path if action else None
    problem = _check(name, code)
    if problem:
        return _form(console, request, session, existing, name, kind, code, 400, problem)
    package, _, fn = name.rpartition("/")
    package = package or DEFAULT_PACKAGE
    doc: dict[str, Any] = action_json(action) if action else {}
    doc["exec"] = {"kind": kind, "code": code, "binary": False}
    if action and action.exec.main:
        doc["exec"]["main"] = action.exec.main
    put = functools.partial(
        console.ctx.entities.put_action,
        session.namespace,
        package,
        fn,
        doc,
        overwrite=action is not None,
        subject=session.namespace,
    )
    try:
        saved = await anyio.to_thread.run_sync(put)
    except WispError as exc:
        message = exc.message
        if action is None and "already exists" in message:
            message += f" (edit it at /ui/edit/{name})"
        return _form(console, request, session, existing, name, kind, code, exc.status, message)
    return RedirectResponse(f"/ui/functions/{saved.path}", status_code=303)


def _check(name: str, code: str) -> str:
    if not name:
        return "Name the function: NAME, or PACKAGE/NAME."
    if name.count("/") > 1:
        return f"{name!r}: a function is NAME or PACKAGE/NAME."
    if not code.strip():
        return "The code is empty."
    return ""


def _form(
    console: Console,
    request: Request,
    session: Session,
    existing: str | None,
    name: str,
    kind: str,
    code: str,
    status: int = 200,
    error: str = "",
) -> Response:
    runtimes = console.ctx.platform.runtimes
    kinds = sorted(
        {*runtimes.runtimes, *(f"{r.family}:default" for r in runtimes.runtimes.values())}
    )
    if kind not in kinds:
        kinds.append(kind)
    family = kind.partition(":")[0]
    return console._render(
        request,
        "edit.html",
        session,
        status,
        existing=existing,
        fn_name=name,
        kind=kind,
        kinds=kinds,
        code=code,
        mode=MODES.get(family, "text"),
        modes={k: MODES.get(k.partition(":")[0], "text") for k in kinds},
        error=error,
    )
