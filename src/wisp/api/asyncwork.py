"""Asynchronous work: a function's ``invokeConfig`` (retries, maximum age, backoff,
onFailure) and the namespace's dead letters (list, get, redrive, purge).

``.../actions/{name}/invokeConfig`` shares its shape with ``.../actions/{pkg}/{name}``,
so these routes come before the action routes: a function named ``invokeConfig``
in a package cannot be read or written through the action API's GET/PUT.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.actions import action_key
from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object, paging
from wisp.errors import NotFound, WispError
from wisp.models import DeadLetter
from wisp.triggers.service import split_action

INVOKE_CONFIG_MAX = 16 * 1024  # bytes of a PUT body
DEAD_LETTER_NOT_FOUND = "The requested dead letter does not exist (redriven, purged, or never one)."


class AsyncWorkApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        actions = "/api/v1/namespaces/{ns}/actions"
        letters = "/api/v1/namespaces/{ns}/deadletters"
        config = {"GET": self.get_config, "PUT": self.put_config}
        return [
            route(actions + "/{name}/invokeConfig", **config),
            route(actions + "/{pkg}/{name}/invokeConfig", **config),
            route(letters, GET=self.list_letters, DELETE=self.purge),
            route(letters + "/", GET=self.list_letters, DELETE=self.purge),
            route(letters + "/{id}", GET=self.get_letter),
            route(letters + "/{id}/redrive", POST=self.redrive),
        ]

    async def get_config(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        config = await run_in_threadpool(
            self.ctx.entities.get_invoke_config, namespace.name, *action_key(request)
        )
        return JSONResponse(config.to_json())

    async def put_config(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        raw = await json_object(request, INVOKE_CONFIG_MAX)
        config = await run_in_threadpool(
            self.ctx.entities.put_invoke_config, namespace.name, *action_key(request), raw
        )
        return JSONResponse(config.to_json())

    async def list_letters(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        limit, skip = paging(request)
        found = await run_in_threadpool(
            self.ctx.platform.store.list_dead_letters, namespace.name, limit, skip
        )
        return JSONResponse([letter.to_json() for letter in found])

    async def _letter(self, request: Request) -> DeadLetter:
        namespace = await self.ctx.auth.namespace(request)
        letter = await run_in_threadpool(
            self.ctx.platform.store.get_dead_letter, namespace.name, request.path_params["id"]
        )
        if letter is None:
            raise NotFound(DEAD_LETTER_NOT_FOUND)
        return letter

    async def get_letter(self, request: Request) -> Response:
        return JSONResponse((await self._letter(request)).to_json())

    async def redrive(self, request: Request) -> Response:
        """Invoke the function again (latest version) with the same input, as a new
        asynchronous activation. The dead letter is taken first, so two redrives of one
        letter run it once; it is put back when the invoke is refused."""
        letter = await self._letter(request)
        package, name = split_action(letter.name)
        entities = self.ctx.entities
        target = entities.cached_target(letter.namespace, package, name)
        if target is None:
            target = await run_in_threadpool(
                entities.resolve_target, letter.namespace, package, name
            )
        store = self.ctx.platform.store
        taken = await run_in_threadpool(
            store.delete_dead_letter, letter.namespace, letter.activation_id
        )
        if not taken:
            raise NotFound(DEAD_LETTER_NOT_FOUND)
        params = letter.request.get("params")
        try:
            invocation = self.ctx.platform.invoker.submit(
                target,
                dict(params) if isinstance(params, dict) else {},
                subject=str(letter.request.get("subject") or letter.namespace),
                cause=letter.activation_id,
            )
        except WispError:
            await run_in_threadpool(store.put_dead_letter, letter)
            raise
        return JSONResponse(
            {"activationId": invocation.activation_id, "redriven": letter.activation_id},
            status_code=202,
        )

    async def purge(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        count = await run_in_threadpool(self.ctx.platform.store.purge_dead_letters, namespace.name)
        return JSONResponse({"purged": count})
