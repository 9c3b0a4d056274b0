"""The store seam. Methods are synchronous; async callers run them in a thread.

Entity methods take and return domain objects from ``wisp.models``. Listing is
newest-first for activations and by name for packages and actions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any, Literal

from wisp.models import (
    Action,
    Activation,
    Alias,
    DeadLetter,
    GatewayRoute,
    IdempotencyClaim,
    Namespace,
    Package,
    Rollup,
    Rule,
    StoredSecret,
    Trigger,
)

# What claiming a schedule tick did: fire it, skip it (a run still holds the
# trigger), or nothing because another replica (or an update) moved it first.
Claim = Literal["fired", "busy", "lost"]


class Store(ABC):
    # -- lifecycle ---------------------------------------------------------
    # Optional hooks, so not abstract: most stores have nothing to do here.
    def migrate(self) -> None:  # noqa: B027
        """Bring the schema to the newest version (no-op for stores without one)."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""

    # -- namespaces --------------------------------------------------------
    @abstractmethod
    def create_namespace(self, ns: Namespace) -> None:
        """Raises wisp.errors.Conflict when the name exists."""

    @abstractmethod
    def get_namespace(self, name: str) -> Namespace | None: ...

    @abstractmethod
    def namespace_by_uuid(self, uuid: str) -> Namespace | None: ...

    @abstractmethod
    def list_namespaces(self) -> list[Namespace]: ...

    @abstractmethod
    def set_namespace_limits(self, name: str, limits: dict[str, Any]) -> bool:
        """Replace a namespace's quota overrides; False when it does not exist."""

    @abstractmethod
    def set_namespace_key(self, name: str, key_hash: str) -> bool:
        """Replace a namespace's key hash (its uuid stays); False when it does not exist."""

    # -- packages ----------------------------------------------------------
    @abstractmethod
    def put_package(self, pkg: Package) -> None:
        """Insert or replace (namespace, name)."""

    @abstractmethod
    def get_package(self, namespace: str, name: str) -> Package | None: ...

    @abstractmethod
    def delete_package(self, namespace: str, name: str) -> bool: ...

    @abstractmethod
    def list_packages(self, namespace: str, limit: int, skip: int) -> list[Package]: ...

    # -- actions -----------------------------------------------------------
    @abstractmethod
    def put_action(self, action: Action) -> None:
        """Insert or replace the current action, and keep ``action.version`` as an
        immutable version row (namespace, package, name, version), in one transaction.

        A version that exists is never rewritten: putting it again with the same
        content (a rollback) only points the action at it; with other content (a
        concurrent update took that version first) raises ``VersionTaken`` and
        changes nothing."""

    @abstractmethod
    def get_action(self, namespace: str, package: str, name: str) -> Action | None: ...

    @abstractmethod
    def get_action_version(
        self, namespace: str, package: str, name: str, version: str
    ) -> Action | None: ...

    @abstractmethod
    def list_action_versions(self, namespace: str, package: str, name: str) -> list[str]:
        """Versions of one action, oldest (first put) first."""

    @abstractmethod
    def prune_action_versions(
        self, namespace: str, package: str, name: str, keep: int, pinned: Collection[str] = ()
    ) -> list[str]:
        """Delete the versions of one action but the ``keep`` newest (by creation), those
        in ``pinned`` and the one the action runs; return the deleted ones, oldest first."""

    @abstractmethod
    def delete_action(self, namespace: str, package: str, name: str) -> bool:
        """Delete the action, its versions and its aliases."""

    # -- aliases of action versions --------------------------------------------
    @abstractmethod
    def put_alias(self, alias: Alias) -> None:
        """Insert or replace (namespace, package, name, alias)."""

    @abstractmethod
    def get_alias(self, namespace: str, package: str, name: str, alias: str) -> Alias | None: ...

    @abstractmethod
    def list_aliases(self, namespace: str, package: str, name: str) -> list[Alias]:
        """By alias name."""

    @abstractmethod
    def delete_alias(self, namespace: str, package: str, name: str, alias: str) -> bool: ...

    @abstractmethod
    def list_actions(
        self, namespace: str, package: str | None, limit: int, skip: int
    ) -> list[Action]:
        """package=None lists every package's actions."""

    @abstractmethod
    def count_actions(self, namespace: str, package: str | None) -> int: ...

    # -- activations -------------------------------------------------------
    @abstractmethod
    def insert_activations(self, records: list[Activation]) -> None:
        """Write a batch in one transaction (group commit). Ids are unique; a record
        whose id is already stored is skipped, so a failed batch can be retried."""

    @abstractmethod
    def get_activation(self, namespace: str, activation_id: str) -> Activation | None: ...

    @abstractmethod
    def list_activations(
        self,
        namespace: str,
        name: str | None = None,
        since: int | None = None,
        upto: int | None = None,
        limit: int = 30,
        skip: int = 0,
    ) -> list[Activation]:
        """Newest first. ``name`` matches the action path ('pkg/fn') exactly, or
        every action of a package when it is 'pkg/'. since/upto bound ``start`` (ms)."""

    @abstractmethod
    def purge_activations(self, older_than: int) -> int:
        """Delete records whose start is before ``older_than`` (epoch ms); return count."""

    # -- triggers and rules --------------------------------------------------
    @abstractmethod
    def put_trigger(self, trigger: Trigger, *, reschedule: bool) -> None:
        """Insert or replace a trigger's definition. An existing trigger keeps its
        scheduler state (next/last run, hold) unless ``reschedule``, which writes
        ``next_run_at`` too: a definition update racing a claim must not undo it."""

    @abstractmethod
    def get_trigger(self, namespace: str, name: str) -> Trigger | None: ...

    @abstractmethod
    def list_triggers(self, namespace: str, limit: int, skip: int) -> list[Trigger]:
        """By name."""

    @abstractmethod
    def delete_trigger(self, namespace: str, name: str) -> bool: ...

    @abstractmethod
    def due_triggers(self, until: int, limit: int) -> list[Trigger]:
        """Enabled triggers of every namespace whose next run is at or before
        ``until`` (epoch ms), soonest first."""

    @abstractmethod
    def claim_tick(
        self,
        namespace: str,
        name: str,
        due: int,
        following: int | None,
        now: int,
        hold_until: int | None,
        *,
        run: bool = True,
    ) -> Claim:
        """Atomically take the tick ``due`` of a trigger whose ``next_run_at`` is
        still ``due``, moving it to ``following``: exactly one caller gets "fired"
        (or "busy"), every other one "lost". "fired" sets ``last_run_at = now`` and,
        with ``hold_until``, holds the trigger until then; "busy" is a tick that
        ``hold_until`` asked to skip because an earlier hold has not expired.
        ``run=False`` only moves the schedule on (a missed tick that is skipped):
        "busy" for the one caller that moved it."""

    @abstractmethod
    def release_trigger(self, namespace: str, name: str, hold_until: int) -> None:
        """End the hold ``hold_until`` (a later hold, from a later run, is kept)."""

    @abstractmethod
    def put_rule(self, rule: Rule) -> None:
        """Insert or replace (namespace, name)."""

    @abstractmethod
    def get_rule(self, namespace: str, name: str) -> Rule | None: ...

    @abstractmethod
    def list_rules(self, namespace: str, limit: int, skip: int) -> list[Rule]:
        """By name."""

    @abstractmethod
    def delete_rule(self, namespace: str, name: str) -> bool: ...

    @abstractmethod
    def rules_for_trigger(self, namespace: str, trigger: str) -> list[Rule]:
        """Every rule (active or not) naming ``trigger``, by name."""

    # -- rollups (observability) -------------------------------------------
    @abstractmethod
    def insert_rollups(self, rows: list[Rollup]) -> None:
        """Add partial sums; several rows of one (namespace, name, bucket) add up."""

    @abstractmethod
    def list_rollups(self, namespace: str, name: str | None, since: int, upto: int) -> list[Rollup]:
        """Rows of ``namespace`` (of one action path when ``name`` is given) whose
        bucket is in [since, upto], by bucket; not added up."""

    @abstractmethod
    def purge_rollups(self, older_than: int) -> int:
        """Delete rows whose bucket is before ``older_than`` (epoch ms); return count."""

    # -- gateway routes ----------------------------------------------------
    @abstractmethod
    def put_route(self, route: GatewayRoute) -> None:
        """Insert or replace (namespace, base_path, path, method)."""

    @abstractmethod
    def list_routes(
        self, namespace: str | None = None, host: str | None = None
    ) -> list[GatewayRoute]:
        """Routes of one namespace, or of every namespace when None; only those
        served on ``host`` when it is given. By base_path, path, method."""

    def route_owners(self) -> list[tuple[str, str]]:
        """Each (namespace, host) that has a route, once, sorted ('' for no host name):
        the gateway checks requests against it before it asks for a route table."""
        return sorted({(r.namespace, r.host) for r in self.list_routes()})

    @abstractmethod
    def delete_routes(
        self, namespace: str, base_path: str, path: str | None, method: str | None
    ) -> int:
        """Delete the routes of a base path (of one path, of one method); return count."""

    # -- asynchronous work: invoke configs, dead letters, idempotency keys ----
    @abstractmethod
    def put_invoke_config(
        self, namespace: str, package: str, name: str, config: dict[str, Any], updated: int
    ) -> None:
        """Insert or replace a function's invoke config (validated JSON).
        ``delete_action`` deletes it too."""

    @abstractmethod
    def get_invoke_config(
        self, namespace: str, package: str, name: str
    ) -> dict[str, Any] | None: ...

    @abstractmethod
    def put_dead_letter(self, letter: DeadLetter) -> None:
        """Insert or replace (by activation id)."""

    @abstractmethod
    def get_dead_letter(self, namespace: str, activation_id: str) -> DeadLetter | None: ...

    @abstractmethod
    def list_dead_letters(self, namespace: str, limit: int, skip: int) -> list[DeadLetter]:
        """Newest first."""

    @abstractmethod
    def delete_dead_letter(self, namespace: str, activation_id: str) -> bool: ...

    @abstractmethod
    def purge_dead_letters(self, namespace: str) -> int:
        """Delete every dead letter of ``namespace``; return count."""

    @abstractmethod
    def claim_idempotency_key(
        self, namespace: str, key: str, claim: IdempotencyClaim, expired_before: int
    ) -> IdempotencyClaim:
        """Atomically take ``key`` for ``claim`` unless a live claim holds it, and
        return the claim that holds it now: ``claim`` itself when it won. A claim
        created before ``expired_before`` (epoch ms) no longer counts and is replaced.
        Of any number of concurrent callers with one key, exactly one wins."""

    @abstractmethod
    def release_idempotency_key(self, namespace: str, key: str, activation_id: str) -> bool:
        """Drop ``key``'s claim if ``activation_id`` still holds it (its invocation was
        refused after the claim, so nothing runs under it); True when dropped."""

    @abstractmethod
    def purge_idempotency_keys(self, older_than: int) -> int:
        """Delete claims created before ``older_than`` (epoch ms); return count."""

    # -- secrets (wisp.secrets) --------------------------------------------
    @abstractmethod
    def ensure_data_key(self, namespace: str, wrapped: str) -> str:
        """Keep ``wrapped`` as ``namespace``'s data key unless it has one; return the
        one it has now (so concurrent first writers agree on one key)."""

    @abstractmethod
    def data_keys(self) -> dict[str, str]:
        """Every namespace's wrapped data key."""

    @abstractmethod
    def replace_data_keys(self, wrapped: dict[str, str]) -> None:
        """Replace the wrapped data keys given, all in one transaction (rotation)."""

    @abstractmethod
    def put_secret(self, secret: StoredSecret) -> None:
        """Insert or replace (namespace, name)."""

    @abstractmethod
    def get_secret(self, namespace: str, name: str) -> StoredSecret | None: ...

    @abstractmethod
    def list_secrets(self, namespace: str) -> list[StoredSecret]:
        """By name."""

    @abstractmethod
    def delete_secret(self, namespace: str, name: str) -> bool: ...
