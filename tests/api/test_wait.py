"""wait_done: the bounded wait of blocking invokes and web functions."""

from __future__ import annotations

import asyncio

from wisp.api.invoke import wait_done
from wisp.models import Activation


async def test_true_once_done_false_on_timeout_and_the_future_survives() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Activation] = loop.create_future()
    assert await wait_done(future, 0.01) is False
    assert not future.cancelled()  # a timed-out wait must not cancel the invocation
    loop.call_later(0.01, future.set_result, object())  # type: ignore[arg-type]
    assert await wait_done(future, 5) is True
    assert await wait_done(future, 0) is True  # already done: no waiting at all
