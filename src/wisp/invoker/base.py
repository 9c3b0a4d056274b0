"""The invoker seam: submit an invocation, get its activation id at once and its
record when it finishes. Blocking vs. non-blocking is the caller's choice of how
long to await ``Invocation.done``; the invocation runs to the end either way."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wisp.invoker.retries import DEFAULT, InvokeConfig
from wisp.models import Action, Activation
from wisp.observability.tracing import Trace


@dataclass
class Target:
    """What to run: an action version with its bound defaults resolved."""

    action: Action
    parameters: dict[str, Any] = field(default_factory=dict)  # package params < action params
    env: dict[str, str] = field(default_factory=dict)  # "init": true parameters, as strings
    invoke_config: InvokeConfig = DEFAULT  # retries of asynchronous invocations


@dataclass
class Invocation:
    activation_id: str
    done: asyncio.Future[Activation]  # never raises: platform failures are records too
    on_detach: Callable[[], None] | None = None

    def detach(self) -> None:
        """A blocking caller stops waiting (it answers 202): from now on the
        invocation is asynchronous, and must survive a crash as such."""
        if self.on_detach is not None:
            self.on_detach()
            self.on_detach = None


class Invoker(ABC):
    @property
    def isolation(self) -> dict[str, str]:
        """How invocations are confined: ``{"level": ..., "layers": ...}``."""
        return {"level": "none", "layers": "none"}

    async def start(self) -> None:  # noqa: B027
        """Start background machinery (sandboxes, pools)."""

    async def stop(self) -> None:  # noqa: B027
        """Stop it, killing every instance."""

    @abstractmethod
    def submit(
        self,
        target: Target,
        params: dict[str, Any],
        *,
        subject: str,
        cause: str | None = None,
        trace: Trace | None = None,
        blocking: bool = False,
        activation_id: str | None = None,
    ) -> Invocation:
        """Start an invocation. ``params`` (the request body) overlay target.parameters.

        ``activation_id``: the id to use, when the caller chose it already (an
        Idempotency-Key claim names it before the invocation starts).

        ``blocking``: the caller waits for the record and calls ``detach()`` if it
        stops waiting first; until then, a crash drops its connection, which tells it.

        ``trace`` is the caller's trace context (the activation's span in it); without
        one, the invoker may start a trace.

        The finished record is handed to the activation writer before ``done`` resolves,
        so a GET of the activation id right after finds it.
        """
