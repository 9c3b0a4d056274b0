"""One attempt at an invocation: everything needed to run it, now or again later.

A request is what admission journals, what the executor runs, and what a retry
(or a restart) runs again: the action version it targets, the merged arguments,
who asked and why, the trace and request id it belongs to, and its attempt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from wisp.invoker.base import Target
from wisp.invoker.states import ActivationState
from wisp.models import Action, Activation
from wisp.observability.tracing import Trace


class ActionRef(NamedTuple):
    """An action version, the way a journal or a broker names it."""

    namespace: str
    package: str
    name: str
    version: str

    @classmethod
    def of(cls, action: Action) -> ActionRef:
        return cls(action.namespace, action.package, action.name, action.version)


@dataclass(eq=False, slots=True)
class InvocationRequest:
    activation_id: str
    target: Target
    args: dict[str, Any]  # what the function receives: target.parameters overlaid by the call's
    subject: str
    start: int  # epoch ms it was accepted: the record's start; age counts from it
    cause: str | None = None
    request_id: str | None = None  # the HTTP request's id (x-request-id), when it had one
    trace: Trace | None = None
    blocking: bool = False
    attempt: int = 1  # 1-based
    recovered: bool = False  # run again after a stop or crash left it unstarted
    state: ActivationState = ActivationState.ACCEPTED
    # Resolved with the final record (never with an exception): what callers await.
    done: asyncio.Future[Activation] | None = None
    # A blocking caller's early answer: set when a stop hands it back unstarted.
    handoff: asyncio.Future[None] | None = None
    journaled: int | None = None  # the journal file holding it, once written
    extra: dict[str, Any] = field(default_factory=dict)  # room for policies (retries)

    @property
    def action(self) -> Action:
        return self.target.action

    @property
    def ref(self) -> ActionRef:
        return ActionRef.of(self.target.action)

    def entry(self) -> dict[str, Any]:
        """The journal line: enough to run it again after a restart (the code and the
        package's init parameters are re-read from the store by ``ref``)."""
        action = self.target.action
        entry: dict[str, Any] = {
            "id": self.activation_id,
            "ns": action.namespace,
            "pkg": action.package,
            "fn": action.name,
            "name": action.path,
            "version": action.version,
            "kind": action.exec.kind,
            "start": self.start,
            "subject": self.subject,
            "args": self.args,
            "attempt": self.attempt,
        }
        if self.cause is not None:
            entry["cause"] = self.cause
        if self.request_id is not None:
            entry["rid"] = self.request_id
        if self.trace is not None:
            entry["trace"] = list(self.trace)
        if self.extra:
            entry["extra"] = self.extra
        return entry

    @classmethod
    def from_entry(cls, entry: dict[str, Any], target: Target) -> InvocationRequest:
        """A journaled request, to run after a restart (``recovered``)."""
        trace = entry.get("trace")
        return cls(
            activation_id=entry["id"],
            target=target,
            args=entry.get("args") or {},
            subject=entry.get("subject") or entry["ns"],
            start=int(entry.get("start", 0)),
            cause=entry.get("cause"),
            request_id=entry.get("rid"),
            trace=Trace(*trace) if isinstance(trace, list) and len(trace) == 5 else None,
            attempt=int(entry.get("attempt", 1)),
            recovered=True,
            extra=entry.get("extra") or {},
        )


def entry_ref(entry: dict[str, Any]) -> ActionRef | None:
    """The action version a journal line targets; None for a line from before the
    journal carried whole requests."""
    try:
        return ActionRef(entry["ns"], entry["pkg"], entry["fn"], entry["version"])
    except KeyError:
        return None
