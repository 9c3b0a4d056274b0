"""``POST .../actions/[pkg/]name[:qualifier]``: the invoke hot path (a qualifier names a
version, ``fn:0.0.2``, or an alias, ``fn:live``; none: the current version).

After the first call for an action, a request costs: a cached auth lookup, a cached
target lookup, one JSON parse, ``invoker.submit``, and an await. No store I/O.
Blocking calls wait up to the sync limit, then answer 202 while the invocation
keeps running (its record lands later), as DigitalOcean Functions does.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wisp.api.actions import action_key
from wisp.api.context import ApiContext
from wisp.api.errors import error_response
from wisp.api.inputs import json_object, query_bool, query_int
from wisp.api.retention import IDEMPOTENCY_WINDOW_MS
from wisp.codec import canonical
from wisp.entities import split_qualifier
from wisp.errors import BadRequest, Unprocessable, WispError
from wisp.ids import activation_id
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS, Activation, IdempotencyClaim

ACTIVATION_HEADER = "x-openwhisk-activation-id"
IDEMPOTENCY_HEADER = "idempotency-key"
IDEMPOTENCY_KEY_MAX = 255
# 502 only for real function failures: nim retries a 502 twice, running the function again.
_HTTP_STATUS = {SUCCESS: 200, APPLICATION_ERROR: 502, DEVELOPER_ERROR: 502}


_FLAGS_MAX = 256  # distinct query strings remembered; past it the cache restarts


class InvokeApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        # Query string -> (blocking, result, timeout): clients repeat the same few.
        self._flags: dict[bytes, tuple[bool, bool, int | None]] = {}

    async def invoke(self, request: Request) -> Response:
        ctx = self.ctx
        namespace = await ctx.auth.namespace(request)
        blocking, result_only, timeout_ms = self.flags(request)
        package, name = action_key(request)
        name, qualifier = split_qualifier(name)  # fn:0.0.2, fn:live
        params = await json_object(request, ctx.platform.settings.limits.payload_max)
        target = ctx.entities.cached_target(namespace.name, package, name, qualifier)
        if target is None:
            target = await run_in_threadpool(
                ctx.entities.resolve_target, namespace.name, package, name, qualifier
            )
        chosen = None
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None:
            function = target.action.path
            chosen, first = await self.claim(namespace.name, key, function, params, blocking)
            if not first:  # the key's activation was started before: not again
                return _accepted(chosen, {ACTIVATION_HEADER: chosen})
        try:
            invocation = ctx.platform.invoker.submit(
                target, params, subject=namespace.name, blocking=blocking, activation_id=chosen
            )
        except WispError:
            if chosen is not None and key is not None:
                # Refused (429, 503): nothing runs under the key, so a retry may claim it.
                store = ctx.platform.store
                await run_in_threadpool(store.release_idempotency_key, namespace.name, key, chosen)
            raise
        headers = {ACTIVATION_HEADER: invocation.activation_id}
        if not blocking:
            return _accepted(invocation.activation_id, headers)
        wait = ctx.platform.settings.sync_limit
        if timeout_ms is not None:
            wait = min(wait, timeout_ms / 1000)
        if not await wait_done(invocation.done, wait, invocation.handoff):
            invocation.detach()
            return _accepted(invocation.activation_id, headers)
        try:
            record = invocation.done.result()
        except Exception as exc:
            response = error_response(exc)
            response.headers[ACTIVATION_HEADER] = invocation.activation_id
            return response
        return _finished(record, result_only, headers)

    async def claim(
        self, namespace: str, key: str, function: str, params: dict[str, object], blocking: bool
    ) -> tuple[str, bool]:
        """The activation id for an Idempotency-Key, and whether this request is the
        first with it (and so must start the activation)."""
        check_idempotency_key(key)
        if blocking:
            raise BadRequest(
                "the Idempotency-Key header applies to non-blocking invokes only "
                "(a blocking invoke is never repeated by Wisp: retry it yourself)"
            )
        now = time.time_ns() // 1_000_000
        # The function is part of what is asked: one key for two functions is a misuse.
        body_hash = hashlib.sha256(canonical([function, params])).hexdigest()
        mine = IdempotencyClaim(activation_id(), body_hash, now)
        held = await run_in_threadpool(
            self.ctx.platform.store.claim_idempotency_key,
            namespace,
            key,
            mine,
            now - IDEMPOTENCY_WINDOW_MS,
        )
        if held.body_hash != body_hash:
            raise Unprocessable(
                f"Idempotency-Key {key!r} was used in the last 24 hours for a different "
                f"function or request body (activation {held.activation_id}); use a new key"
            )
        return held.activation_id, held.activation_id == mine.activation_id

    def flags(self, request: Request) -> tuple[bool, bool, int | None]:
        query: bytes = request.scope["query_string"]
        flags = self._flags.get(query)
        if flags is None:  # parsed (and checked: bad values raise) once per shape
            flags = (
                query_bool(request, "blocking"),
                query_bool(request, "result"),
                query_int(request, "timeout", None, 0),
            )
            if len(self._flags) >= _FLAGS_MAX:
                self._flags.clear()
            self._flags[query] = flags
        return flags


def check_idempotency_key(key: str) -> None:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"the Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII "
            f"characters (got {len(key)} characters)"
        )


async def wait_done(
    future: asyncio.Future[Activation],
    seconds: float,
    handoff: asyncio.Future[None] | None = None,
) -> bool:
    """Wait for ``future`` up to ``seconds`` (or until ``handoff``, a stop handing the
    call back) without cancelling it; True when done.

    Cheaper than ``wait_for(shield(...))``, which makes two extra futures and a task
    per call on the hottest path.
    """
    if future.done():
        return True
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    future.add_done_callback(wake)
    if handoff is not None:
        if handoff.done():
            wake()
        handoff.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
        if handoff is not None:
            handoff.remove_done_callback(wake)
    return future.done()


def _accepted(activation_id: str, headers: dict[str, str]) -> Response:
    return JSONResponse({"activationId": activation_id}, status_code=202, headers=headers)


def _finished(record: Activation, result_only: bool, headers: dict[str, str]) -> Response:
    status = _HTTP_STATUS.get(record.status_code, 500)
    try:
        if not result_only:
            return Response(
                record.encoded(), status, headers=headers, media_type="application/json"
            )
        return JSONResponse(record.result, status_code=status, headers=headers)
    except (TypeError, ValueError):
        # A result the invoker let through but JSON cannot carry is a platform bug,
        # reported without losing the activation id.
        response = error_response(RuntimeError(f"{record.activation_id}: result is not JSON"))
        response.headers.update(headers)
        return response
