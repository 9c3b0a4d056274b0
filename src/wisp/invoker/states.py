"""The states of an activation, each with the one component that moves it there.

    ACCEPTED ──▶ STARTED ──▶ FINISHED
        │           │
        │           └──▶ (retrying) ──▶ RETRIED ──▶ ACCEPTED (attempt + 1)
        │                                 └▶ DEAD
        └── a stop or crash before STARTED: stays ACCEPTED in the journal, runs after restart

| state    | set by                     | what it means / what makes it durable                   |
| -------- | -------------------------- | ------------------------------------------------------- |
| ACCEPTED | admission (``admission``)  | admitted by the quotas; journaled (non-blocking, or a   |
|          |                            | blocking call whose caller stopped waiting)             |
| STARTED  | executor (``executor``)    | holds an instance; journaled as a ``started`` mark      |
| FINISHED | executor's ``settle``      | its record went to the activation writer                |
| RETRIED  | ``retrying`` (executor)    | this attempt failed and another was scheduled: the      |
|          |                            | request journaled again with the next attempt           |
| DEAD     | ``retrying``, then settle  | attempts or maximum age exhausted: a dead letter        |

After a crash, the journal tells them apart: ACCEPTED without STARTED runs again
(``recovered``); STARTED without a record is recorded as interrupted.
"""

from __future__ import annotations

from enum import StrEnum


class ActivationState(StrEnum):
    ACCEPTED = "accepted"
    STARTED = "started"
    FINISHED = "finished"
    RETRIED = "retried"
    DEAD = "dead"
