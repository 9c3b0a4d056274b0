"""The invoker seam: submit an invocation, get its activation id at once and its
record when it finishes. Blocking vs. non-blocking is the caller's choice of how
long to await ``Invocation.done``; the invocation runs to the end either way.

An invoker offers, and callers use, only what this class declares:

| who           | uses                                                                  |
| ------------- | --------------------------------------------------------------------- |
| api, web, ... | ``submit`` (raises TooManyRequests / Unavailable before anything runs) |
| platform      | ``start``, ``stop`` (drains first)                                     |
| server        | ``prepare`` (refuse to start below the isolation asked for),           |
|               | ``describe``, ``drain`` (on SIGTERM/SIGINT, before connections close)  |
| api (app)     | ``deliver_dead_letters`` (onFailure destinations)                      |
| api (releases)| ``warm`` (the version an alias or a rollback now runs)                 |
| observability | ``add_observer``, ``pool_stats``, ``instance_counts``,                 |
|               | ``stem_cells``, ``throttled``                                          |

Implementations: ``local.LocalInvoker`` (sandboxes on this host) and
``memory.MemoryInvoker`` (fabricated records, for tests of everything above it).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wisp.invoker.retries import DEFAULT, InvokeConfig
from wisp.models import Action, Activation
from wisp.observability.tracing import Trace

Observer = Callable[[Activation], None]
if TYPE_CHECKING:
    from wisp.invoker.deadletters import Deliver


@dataclass
class Target:
    """What to run: an action version with its bound defaults resolved."""

    action: Action
    parameters: dict[str, Any] = field(default_factory=dict)  # package params < action params
    env: dict[str, str] = field(default_factory=dict)  # "init": true parameters, as strings
    # "init": true parameters that reference a secret: env key -> secret name, revealed
    # by the executor right before init (wisp.secrets).
    env_secrets: dict[str, str] = field(default_factory=dict)
    invoke_config: InvokeConfig = DEFAULT  # retries of asynchronous invocations
    # {"requested", "kind", "version"} when the function runs on another version of its
    # language than it asked for: every activation record carries it as ``runtime``.
    runtime: dict[str, str] | None = None
    # Named with a qualifier (``fn:0.0.2``, ``fn:live``): its records say which version
    # ran (``executedVersion``) and through which alias.
    qualified: bool = False
    alias: str = ""


@dataclass
class Invocation:
    activation_id: str
    done: asyncio.Future[Activation]  # never raises: platform failures are records too
    on_detach: Callable[[], None] | None = None
    # Resolved when a stop hands a waiting blocking call back to its caller before it
    # started: it is journaled (it runs after the restart) and the caller answers 202.
    handoff: asyncio.Future[None] | None = None

    def detach(self) -> None:
        """A blocking caller stops waiting (it answers 202): from now on the
        invocation is asynchronous, and must survive a crash as such."""
        if self.on_detach is not None:
            self.on_detach()
            self.on_detach = None


@dataclass(frozen=True)
class PoolStats:
    used_mb: int
    budget_mb: int
    busy: int  # instances running an activation
    idle: int  # warm instances waiting
    queued: int  # invocations waiting for room
    evictions: int  # idle instances evicted so far


class Invoker(ABC):
    def __init__(self) -> None:
        # Called with each finished record (metrics, live stream, rollups); each must
        # be cheap and never block: they run on the invocation's own path.
        self.observers: list[Observer] = []

    @property
    def isolation(self) -> dict[str, str]:
        """How invocations are confined: ``{"level": ..., "layers": ...}``."""
        return {"level": "none", "layers": "none"}

    def describe(self) -> dict[str, str]:
        """Lines for the start-up banner (isolation, egress)."""
        isolation = self.isolation
        return {"isolation": f"{isolation['level']}: {isolation['layers']}"}

    def prepare(self) -> None:  # noqa: B027
        """Host-wide set-up before serving; raises when the isolation asked for cannot
        be had."""

    async def start(self) -> None:  # noqa: B027
        """Start background machinery (sandboxes, pools); run what a stop or crash left."""

    def drain(self) -> None:  # noqa: B027
        """Stop accepting: ``submit`` raises Unavailable from now on; nothing queued
        starts; running invocations go on (``stop`` waits for them)."""

    async def stop(self) -> None:  # noqa: B027
        """Drain, wait for running invocations (up to the drain time), keep what did
        not start for the next start, then stop every instance."""

    def deliver_dead_letters(self, deliver: Deliver) -> None:  # noqa: B027
        """Where dead letters' onFailure destinations are reached (set by the API
        layer, which resolves functions and fires triggers); no-op without retries."""

    async def warm(self, target: Target) -> bool:
        """Have an idle, initialised instance of the target's version ready (an alias
        now points at it); False when none could be had, or this invoker keeps none."""
        return False

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    def pool_stats(self) -> PoolStats | None:
        """The instance pool's gauges; None for an invoker without one."""
        return None

    def instance_counts(self) -> Mapping[Hashable, tuple[int, int]]:
        """(instances, of which idle) per (namespace, package, name, version)."""
        return {}

    def stem_cells(self) -> Mapping[tuple[str, str], int]:
        """Ready stem cells per (runtime kind, network mode)."""
        return {}

    def learn_limits(self, namespace: str, overrides: dict[str, Any] | None) -> None:
        """``namespace``'s limit overrides as just read from the store: admission
        applies them now (an invoker without quotas ignores them)."""
        return None

    def throttled(self) -> Mapping[str, int]:
        """Invocations refused by the namespace quotas, per namespace."""
        return {}

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
