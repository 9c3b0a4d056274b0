"""Domain objects: namespaces, packages, actions (functions) and activations.

These are plain dataclasses shared by the store, the invoker and the API.
JSON shapes on the wire are built from them in ``api/`` (OpenWhisk's shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wisp import codec

KeyValues = list[dict[str, Any]]  # OpenWhisk's [{"key": k, "value": v, "init"?: bool}]
DEFAULT_PACKAGE = "default"


@dataclass
class Namespace:
    name: str
    uuid: str
    key_hash: str  # sha256 of the key; the key itself is never stored
    created: int = 0  # epoch ms
    limits: dict[str, Any] = field(default_factory=dict)  # per-namespace quota overrides


@dataclass
class Package:
    namespace: str
    name: str
    parameters: KeyValues = field(default_factory=list)
    annotations: KeyValues = field(default_factory=list)
    publish: bool = False
    version: str = "0.0.1"
    updated: int = 0  # epoch ms


@dataclass
class Exec:
    kind: str  # resolved kind, e.g. "python:3.11" (never "python:default")
    code: str  # source text, or base64 of a zip when binary
    binary: bool = False
    main: str = "main"
    digest: str = ""  # sha256 of code + kind + main: identifies the code of a version
    build: str = ""  # the server-side build this version runs (a folder by the bundles)
    build_log: str = ""  # that build's output
    # The kind the deployer asked for when this host runs it on another version of its
    # language ("go:1.20" run as "go:1.19"); "" when ``kind`` is what was asked.
    requested: str = ""


@dataclass
class ActionLimits:
    timeout: int  # ms
    memory: int  # MB
    logs: int  # KB


@dataclass
class Action:
    namespace: str
    package: str  # DEFAULT_PACKAGE when the action is not in a package
    name: str
    exec: Exec
    limits: ActionLimits
    parameters: KeyValues = field(default_factory=list)  # "init": true entries are env vars
    annotations: KeyValues = field(default_factory=list)
    publish: bool = False
    version: str = "0.0.1"
    updated: int = 0  # epoch ms: when this version was made
    subject: str = ""  # who made this version (the namespace whose key put it)

    @property
    def path(self) -> str:
        """'pkg/name', or just 'name' for the default package."""
        return self.name if self.package == DEFAULT_PACKAGE else f"{self.package}/{self.name}"

    @property
    def fqn(self) -> str:
        return f"{self.namespace}/{self.path}"


@dataclass
class Alias:
    """A name for one version of a function (``PKG/FN:live``); repointed at will."""

    namespace: str
    package: str
    name: str  # the function's
    alias: str
    version: str
    updated: int = 0  # epoch ms
    subject: str = ""  # who pointed it last


# Activation status codes (OpenWhisk).
SUCCESS = 0
APPLICATION_ERROR = 1
DEVELOPER_ERROR = 2
INTERNAL_ERROR = 3
# Wisp's own: an asynchronous activation out of retries or age (its annotation
# ``reason`` says which); its result is the last attempt's.
DEAD = 4
STATUS_TEXT = {
    SUCCESS: "success",
    APPLICATION_ERROR: "application error",
    DEVELOPER_ERROR: "action developer error",
    INTERNAL_ERROR: "whisk internal error",
    DEAD: "dead",
}


@dataclass
class Activation:
    """One invocation's record. ``to_json`` gives OpenWhisk's wire shape."""

    activation_id: str
    namespace: str
    name: str  # action path, 'pkg/name'
    version: str
    subject: str
    start: int  # epoch ms
    end: int
    status_code: int
    result: Any
    logs: list[str] = field(default_factory=list)
    annotations: KeyValues = field(default_factory=list)
    cause: str | None = None
    publish: bool = False
    result_size: int = 0  # bytes of the serialized result

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def success(self) -> bool:
        return self.status_code == SUCCESS

    def response(self) -> dict[str, Any]:
        return {
            "status": STATUS_TEXT[self.status_code],
            "statusCode": self.status_code,
            "success": self.success,
            "result": self.result,
            "size": self.result_size,
        }

    def encoded(self) -> bytes:
        """The record as compact JSON, computed once: the invoke response and the
        store row share it. Records are immutable once the invoker finished them."""
        cached: bytes | None = self.__dict__.get("_encoded")
        if cached is None:
            cached = codec.dumps(self.to_json())
            self.__dict__["_encoded"] = cached
        return cached

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "activationId": self.activation_id,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "subject": self.subject,
            "publish": self.publish,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "statusCode": self.status_code,
            "response": self.response(),
            "logs": self.logs,
            "annotations": self.annotations,
        }
        if self.cause:
            doc["cause"] = self.cause
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Activation:
        return cls(
            activation_id=doc["activationId"],
            namespace=doc["namespace"],
            name=doc["name"],
            version=doc["version"],
            subject=doc.get("subject", doc["namespace"]),
            start=doc["start"],
            end=doc["end"],
            status_code=doc["statusCode"],
            result=doc["response"].get("result"),
            logs=list(doc.get("logs", [])),
            annotations=list(doc.get("annotations", [])),
            cause=doc.get("cause"),
            publish=doc.get("publish", False),
            result_size=doc["response"].get("size", 0),
        )


# Triggers and rules (OpenWhisk). A trigger with a ``cron`` is also a schedule.
RULE_ACTIVE = "active"
RULE_INACTIVE = "inactive"
CONCURRENCY_MODES = ("allow", "skip")  # overlapping scheduled runs: allowed, or skipped
MISSED_POLICIES = ("latest", "skip")  # ticks missed while down: fire the latest once, or none


@dataclass
class Trigger:
    namespace: str
    name: str
    parameters: KeyValues = field(default_factory=list)  # the body passed to the functions
    annotations: KeyValues = field(default_factory=list)
    publish: bool = False
    version: str = "0.0.1"
    updated: int = 0  # epoch ms
    enabled: bool = True  # a disabled trigger's schedule does not fire
    cron: str | None = None  # None: fired only through the API
    timezone: str = "UTC"
    concurrency: str = "allow"
    missed: str = "latest"
    # Scheduler state, epoch ms. Changed only by the store's claim/release (and by a
    # put that reschedules), never by a plain definition update.
    next_run_at: int | None = None
    last_run_at: int | None = None
    running_until: int | None = None  # concurrency=skip: a run holds the trigger until then


@dataclass
class Rule:
    namespace: str
    name: str
    trigger: str  # trigger name, same namespace
    action: str  # action path 'pkg/fn' (or 'fn'), same namespace
    status: str = RULE_ACTIVE
    annotations: KeyValues = field(default_factory=list)
    publish: bool = False
    version: str = "0.0.1"
    updated: int = 0  # epoch ms


@dataclass
class Rollup:
    """Activations of one function in one time bucket, summed (the console's charts).

    Rows are written as partial sums (one per flush) and added up when read, so
    several api replicas can write the same bucket without coordinating.
    ``histogram`` counts durations per bucket of ``wisp.observability.rollups.BOUNDS``.
    """

    namespace: str
    name: str  # action path, 'pkg/name'
    bucket: int  # epoch ms at the start of the bucket
    count: int = 0
    errors: int = 0  # status codes other than success
    cold: int = 0
    duration_sum: int = 0  # ms
    histogram: list[int] = field(default_factory=list)
    cpu_sum: int = 0  # microseconds
    memory_max: int = 0  # bytes, the highest peak seen


@dataclass
class GatewayRoute:
    """A public gateway route: ``method base_path+path`` runs ``action`` of ``namespace``.

    ``config`` holds the access policy (secrets already hashed), IP lists, rate limit,
    CORS, body limit and response type, as validated by ``wisp.gateway.routes``.
    """

    namespace: str
    base_path: str  # "/shop"
    path: str  # "/items/{id}"
    method: str  # "GET", or "ANY"
    action: str  # action path, 'pkg/name'
    host: str = ""  # also served at this host name's root; "" for /gw/{namespace}/ only
    config: dict[str, Any] = field(default_factory=dict)
    created: int = 0  # epoch ms
    updated: int = 0


@dataclass
class DeadLetter:
    """An asynchronous activation that ran out of attempts or of age.

    ``request`` is what was asked (``params``, the request body, to redrive with;
    ``subject``, ``cause``, ``firstStart``), ``response`` how the last attempt ended
    (the activation record's ``response``).
    """

    activation_id: str
    namespace: str
    name: str  # action path, 'pkg/name'
    version: str
    reason: str  # RetriesExhausted | EventAgeExceeded
    created: int  # epoch ms
    attempts: int
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "activationId": self.activation_id,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "reason": self.reason,
            "created": self.created,
            "attempts": self.attempts,
            "request": self.request,
            "response": self.response,
        }


@dataclass
class IdempotencyClaim:
    """Who holds an Idempotency-Key: the activation started for it, and its body."""

    activation_id: str
    body_hash: str  # sha256 hex of the request body
    created: int  # epoch ms


@dataclass
class StoredSecret:
    """A namespace's named secret as stored: never the plaintext (wisp.secrets)."""

    namespace: str
    name: str
    ciphertext: str
    size: int  # bytes of the plaintext
    updated: int  # epoch ms
