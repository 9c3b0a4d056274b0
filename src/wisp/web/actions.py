"""``/api/v1/web/{namespace}/{package|default}/{function}[.ext][/rest]``: web functions.

A function is public here only when its ``web-export`` annotation is true; every
other function answers 404 exactly as a missing one does, so the web path does not
reveal which functions exist. ``require-whisk-auth`` is a shared secret (header
``X-Require-Whisk-Auth``) or ``true`` for the platform's Basic credentials.
Each call runs through the same invoker as the REST API and leaves an activation
record whose id the response carries.
"""

from __future__ import annotations

import contextlib
import hmac
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext
from wisp.api.errors import guarded
from wisp.api.inputs import read_body
from wisp.api.invoke import ACTIVATION_HEADER, wait_done
from wisp.entities import split_qualifier
from wisp.errors import NotFound, Unauthorized
from wisp.invoker.base import Target
from wisp.models import Action
from wisp.web.request import request_arguments
from wisp.web.response import EXTENSIONS, ExtraHeaders, web_response

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
NOT_FOUND = "The requested resource does not exist."
SECRET_HEADER = "x-require-whisk-auth"
CORS_METHODS = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
CORS_HEADERS = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"


@dataclass(frozen=True)
class WebSpec:
    """What a function's annotations say about serving it on the web."""

    exported: bool = False
    raw: bool = False
    custom_options: bool = False
    basic_auth: bool = False  # require-whisk-auth: true
    secret: str | None = None  # require-whisk-auth: "<secret>"

    @classmethod
    def of(cls, action: Action) -> WebSpec:
        notes = {a.get("key"): a.get("value") for a in action.annotations}
        auth = notes.get("require-whisk-auth")
        secret = None
        if auth is not None and not isinstance(auth, bool) and auth != "":
            secret = str(auth)  # OpenWhisk also allows a number
        return cls(
            exported=notes.get("web-export") is True,
            raw=notes.get("raw-http") is True,
            custom_options=notes.get("web-custom-options") is True,
            basic_auth=auth is True,
            secret=secret,
        )


@dataclass(frozen=True)
class WebPath:
    package: str
    name: str
    extension: str
    rest: list[str]

    @property
    def ow_path(self) -> str:
        return "/" + "/".join(self.rest) if self.rest else ""


def parse_web_path(path: str) -> WebPath:
    parts = path.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise NotFound(NOT_FOUND)
    name, dot, extension = parts[1].rpartition(".")
    if not dot or extension not in EXTENSIONS or not name:
        name, extension = parts[1], "http"
    return WebPath(parts[0], name, extension, [p for p in parts[2:] if p])


def default_cors(request: Request) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": request.headers.get(
            "access-control-request-headers", CORS_HEADERS
        ),
    }


async def run_and_respond(
    ctx: ApiContext,
    target: Target,
    args: dict[str, Any],
    subject: str,
    extension: str,
    projection: list[str],
    extra: ExtraHeaders | None = None,
) -> Response:
    """Invoke ``target`` through the platform's invoker and shape its result.

    Past the sync limit the caller gets 202 with the activation id, as for a
    blocking invoke; the invocation keeps running and is recorded. ``extra`` holds
    the headers the platform adds; the activation id is added to them here.
    """
    invocation = ctx.platform.invoker.submit(target, args, subject=subject)
    del args  # the invoker's now: a large body is freed when the run ends, not kept here
    extra = extra or ExtraHeaders()
    extra.fixed[ACTIVATION_HEADER] = invocation.activation_id
    if not await wait_done(invocation.done, ctx.platform.settings.sync_limit):
        body = {"activationId": invocation.activation_id}
        return JSONResponse(body, status_code=202, headers=extra.apply({}))
    return web_response(invocation.done.result(), extension, projection, extra)


class WebActionsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        # Annotations parsed once per cached target (targets are replaced on change).
        self._specs: dict[int, tuple[Target, WebSpec]] = {}
        # One endpoint for the router and for the fast path (wisp.web.fastpath).
        self.endpoint = guarded(self.serve)

    def routes(self) -> list[Route]:
        return [Route("/api/v1/web/{ns}/{path:path}", self.endpoint, methods=METHODS)]

    async def _no_default_namespace(self, request: Request, where: WebPath) -> str:
        """OpenWhisk's web URLs name their namespace: a web call is anonymous, so ``_``
        ("the caller's namespace") means nothing there (docs/web.md). Say so, and name
        the URL when the request carries valid credentials."""
        owner = "<namespace>"
        if "authorization" in request.headers:
            with contextlib.suppress(Unauthorized):
                owner = (await self.ctx.auth.caller(request)).name
        rest = where.ow_path
        url = f"/api/v1/web/{owner}/{where.package}/{where.name}.{where.extension}{rest}"
        return (
            f"{NOT_FOUND} A web URL names its namespace: '_' (the caller's namespace in the "
            f"REST API) is not accepted here, as in OpenWhisk; use {url}"
        )

    async def target(self, namespace: str, package: str, name: str) -> tuple[Target, WebSpec]:
        entities = self.ctx.entities
        name, qualifier = split_qualifier(name)  # fn:0.0.2, fn:live
        target = entities.cached_target(namespace, package, name, qualifier)
        if target is None:
            try:
                target = await run_in_threadpool(
                    entities.resolve_target, namespace, package, name, qualifier
                )
            except NotFound:
                raise NotFound(NOT_FOUND) from None
        known = self._specs.get(id(target))
        if known is not None and known[0] is target:
            return known
        if len(self._specs) > 10_000:
            self._specs.clear()
        entry = (target, WebSpec.of(target.action))
        self._specs[id(target)] = entry
        return entry

    async def serve(self, request: Request) -> Response:
        namespace = request.path_params["ns"]
        where = parse_web_path(request.path_params["path"])
        if namespace == "_":
            raise NotFound(await self._no_default_namespace(request, where))
        target, spec = await self.target(namespace, where.package, where.name)
        if not spec.exported:
            raise NotFound(NOT_FOUND)
        if request.method == "OPTIONS" and not spec.custom_options:
            return Response(status_code=200, headers=default_cors(request))
        extra: dict[str, Any] = {}
        if spec.secret is not None:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), spec.secret.encode()):
                raise Unauthorized("The supplied authentication is invalid")
        elif spec.basic_auth:
            caller = await self.ctx.auth.caller(request)
            extra["__ow_user"] = caller.name
        body = await read_body(request, self.ctx.platform.settings.limits.payload_max)
        cors = None if spec.custom_options else default_cors(request)
        return await run_and_respond(
            self.ctx,
            target,
            # Made in the call: only the invoker holds the arguments (and the body in
            # them) once it has them, not this frame as well.
            request_arguments(
                request,
                body,
                raw=spec.raw,
                path=where.ow_path,
                final=target.parameters,
                extra=extra,
            ),
            namespace,
            where.extension,
            where.rest,
            ExtraHeaders(defaults=cors),
        )
