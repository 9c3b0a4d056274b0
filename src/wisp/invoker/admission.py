"""Admission: whether an invocation may start, and making an accepted one durable.

An invocation is accepted when the platform is not stopping, the activation writer
keeps up with the store, the namespace's quotas let it in and, unless its
caller is waiting for it (blocking), its request is in the journal. Nothing is
started before both: a refusal (429, or 503 while stopping) leaves no trace.
"""

from __future__ import annotations

import logging

from wisp.errors import Unavailable
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.quotas import Quotas
from wisp.invoker.request import InvocationRequest
from wisp.invoker.states import ActivationState
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

STOPPING = "The platform is stopping; try again shortly."


class Admission:
    def __init__(
        self,
        quotas: Quotas | None,
        journal: AcceptJournal | None,
        writer: ActivationWriter | None = None,
    ) -> None:
        self.quotas = quotas
        self.journal = journal
        self.writer = writer
        self.accepting = True
        self.retry_after = 5  # seconds a refused caller is told to wait while stopping

    def admit(self, request: InvocationRequest) -> None:
        """Count it in and journal it (non-blocking), or raise before anything happened."""
        if not self.accepting:
            raise Unavailable(STOPPING, self.retry_after)
        if self.writer is not None:
            self.writer.admit()  # 503 while the store cannot keep up
        if self.quotas is not None:
            self.quotas.admit(request.action.namespace)  # TooManyRequests
        request.state = ActivationState.ACCEPTED
        if not request.blocking:
            try:
                self.journal_it(request)
            except BaseException:
                self.release(request)  # it will not run: give its quota back
                raise

    def detach(self, request: InvocationRequest) -> None:
        """Its blocking caller stopped waiting (a 202): journal it from now on."""
        try:
            self.journal_it(request)
        except (OSError, Unavailable) as exc:  # it runs on; only a crash would lose it
            log.error("journal write failed for %s: %s", request.activation_id, exc)

    def journal_it(self, request: InvocationRequest) -> None:
        """Make it survive a stop or a crash (raises Unavailable when the write fails)."""
        journal = self.journal
        if journal is None or request.journaled is not None:
            return
        if request.state is ActivationState.FINISHED:
            return
        journal.accepted(request)
        if request.state is ActivationState.STARTED:
            journal.started(request)

    def release(self, request: InvocationRequest) -> None:
        """It no longer counts against its namespace (finished, or left for later)."""
        if self.quotas is not None:
            self.quotas.done(request.action.namespace)
