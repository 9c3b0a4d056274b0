"""In-memory store for unit tests: the same contract as the SQL store, no persistence.

Every method takes the lock, reads included: the activation writer inserts from
its own thread while the API lists, and iterating a dict that another thread
changes raises.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from wisp.errors import Conflict, VersionTaken
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
from wisp.store.base import Claim, Store


class MemoryStore(Store):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._namespaces: dict[str, Namespace] = {}
        self._data_keys: dict[str, str] = {}
        self._secrets: dict[tuple[str, str], StoredSecret] = {}
        self._packages: dict[tuple[str, str], Package] = {}
        self._actions: dict[tuple[str, str, str], Action] = {}
        self._versions: dict[tuple[str, str, str, str], Action] = {}
        self._aliases: dict[tuple[str, str, str, str], Alias] = {}
        self._activations: dict[str, Activation] = {}
        self._triggers: dict[tuple[str, str], Trigger] = {}
        self._rules: dict[tuple[str, str], Rule] = {}
        self._rollups: list[Rollup] = []
        self._routes: dict[tuple[str, str, str, str], GatewayRoute] = {}
        self._invoke_configs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._dead_letters: dict[str, DeadLetter] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyClaim] = {}

    # namespaces
    def create_namespace(self, ns: Namespace) -> None:
        with self._lock:
            if ns.name in self._namespaces:
                raise Conflict(f"namespace {ns.name!r} already exists")
            if any(n.uuid == ns.uuid for n in self._namespaces.values()):
                raise Conflict(f"namespace uuid {ns.uuid!r} already exists")
            self._namespaces[ns.name] = copy.deepcopy(ns)

    def get_namespace(self, name: str) -> Namespace | None:
        with self._lock:
            ns = self._namespaces.get(name)
            return copy.deepcopy(ns) if ns else None

    def namespace_by_uuid(self, uuid: str) -> Namespace | None:
        with self._lock:
            for ns in self._namespaces.values():
                if ns.uuid == uuid:
                    return copy.deepcopy(ns)
            return None

    def list_namespaces(self) -> list[Namespace]:
        with self._lock:
            return [copy.deepcopy(n) for _, n in sorted(self._namespaces.items())]

    def set_namespace_limits(self, name: str, limits: dict[str, Any]) -> bool:
        with self._lock:
            ns = self._namespaces.get(name)
            if ns is None:
                return False
            ns.limits = copy.deepcopy(limits)
            return True

    def set_namespace_key(self, name: str, key_hash: str) -> bool:
        with self._lock:
            ns = self._namespaces.get(name)
            if ns is None:
                return False
            ns.key_hash = key_hash
            return True

    # packages
    def put_package(self, pkg: Package) -> None:
        with self._lock:
            self._packages[(pkg.namespace, pkg.name)] = copy.deepcopy(pkg)

    def get_package(self, namespace: str, name: str) -> Package | None:
        with self._lock:
            pkg = self._packages.get((namespace, name))
            return copy.deepcopy(pkg) if pkg else None

    def delete_package(self, namespace: str, name: str) -> bool:
        with self._lock:
            return self._packages.pop((namespace, name), None) is not None

    def list_packages(self, namespace: str, limit: int, skip: int) -> list[Package]:
        with self._lock:
            found = sorted(
                (p for (ns, _), p in self._packages.items() if ns == namespace),
                key=lambda p: p.name,
            )
            return [copy.deepcopy(p) for p in found[skip : skip + limit]]

    # actions
    def put_action(self, action: Action) -> None:
        with self._lock:
            key = (action.namespace, action.package, action.name)
            stored = self._versions.get((*key, action.version))
            if stored is None:
                self._versions[(*key, action.version)] = copy.deepcopy(action)
            elif replace(stored, updated=action.updated, subject=action.subject) != action:
                raise VersionTaken(
                    f"version {action.version} of action {action.path!r} was stored by "
                    "another update; versions are immutable"
                )
            self._actions[key] = copy.deepcopy(action)

    def get_action(self, namespace: str, package: str, name: str) -> Action | None:
        with self._lock:
            action = self._actions.get((namespace, package, name))
            return copy.deepcopy(action) if action else None

    def get_action_version(
        self, namespace: str, package: str, name: str, version: str
    ) -> Action | None:
        with self._lock:
            action = self._versions.get((namespace, package, name, version))
            return copy.deepcopy(action) if action else None

    def list_action_versions(self, namespace: str, package: str, name: str) -> list[str]:
        # Oldest first means first created: dicts keep insertion order, also when
        # a version is put again. (``updated`` can tie, or go back with the clock.)
        key = (namespace, package, name)
        with self._lock:
            return [v for (ns, p, n, v) in self._versions if (ns, p, n) == key]

    def prune_action_versions(
        self, namespace: str, package: str, name: str, keep: int, pinned: Collection[str] = ()
    ) -> list[str]:
        key = (namespace, package, name)
        with self._lock:
            versions = [v for (ns, p, n, v) in self._versions if (ns, p, n) == key]
            current = self._actions.get(key)
            kept = {*pinned, *versions[max(len(versions) - keep, 0) :]}
            if current is not None:
                kept.add(current.version)
            pruned = [v for v in versions if v not in kept]
            for version in pruned:
                del self._versions[(*key, version)]
            return pruned

    def delete_action(self, namespace: str, package: str, name: str) -> bool:
        with self._lock:
            key = (namespace, package, name)
            for vkey in [k for k in self._versions if k[:3] == key]:
                del self._versions[vkey]
            self._invoke_configs.pop(key, None)
            for akey in [k for k in self._aliases if k[:3] == key]:
                del self._aliases[akey]
            return self._actions.pop(key, None) is not None

    def put_alias(self, alias: Alias) -> None:
        with self._lock:
            key = (alias.namespace, alias.package, alias.name, alias.alias)
            self._aliases[key] = copy.deepcopy(alias)

    def get_alias(self, namespace: str, package: str, name: str, alias: str) -> Alias | None:
        with self._lock:
            found = self._aliases.get((namespace, package, name, alias))
            return copy.deepcopy(found) if found else None

    def list_aliases(self, namespace: str, package: str, name: str) -> list[Alias]:
        with self._lock:
            found = [a for k, a in self._aliases.items() if k[:3] == (namespace, package, name)]
            return [copy.deepcopy(a) for a in sorted(found, key=lambda a: a.alias)]

    def delete_alias(self, namespace: str, package: str, name: str, alias: str) -> bool:
        with self._lock:
            return self._aliases.pop((namespace, package, name, alias), None) is not None

    def _matching(self, namespace: str, package: str | None) -> list[Action]:
        return sorted(
            (
                a
                for (ns, p, _), a in self._actions.items()
                if ns == namespace and (package is None or p == package)
            ),
            key=lambda a: (a.package, a.name),
        )

    def list_actions(
        self, namespace: str, package: str | None, limit: int, skip: int
    ) -> list[Action]:
        with self._lock:
            found = self._matching(namespace, package)[skip : skip + limit]
            return [copy.deepcopy(a) for a in found]

    def count_actions(self, namespace: str, package: str | None) -> int:
        with self._lock:
            return len(self._matching(namespace, package))

    # activations
    def insert_activations(self, records: list[Activation]) -> None:
        with self._lock:
            for record in records:
                # Like the SQL store: an id already stored is skipped (retries).
                if record.activation_id not in self._activations:
                    self._activations[record.activation_id] = copy.deepcopy(record)

    def get_activation(self, namespace: str, activation_id: str) -> Activation | None:
        with self._lock:
            record = self._activations.get(activation_id)
            if record is None or record.namespace != namespace:
                return None
            return copy.deepcopy(record)

    def list_activations(
        self,
        namespace: str,
        name: str | None = None,
        since: int | None = None,
        upto: int | None = None,
        limit: int = 30,
        skip: int = 0,
    ) -> list[Activation]:
        def wanted(a: Activation) -> bool:
            if a.namespace != namespace:
                return False
            if name is not None:
                if name.endswith("/"):
                    if not a.name.startswith(name):
                        return False
                elif a.name != name:
                    return False
            if since is not None and a.start < since:
                return False
            return upto is None or a.start <= upto

        with self._lock:
            found = sorted(
                (a for a in self._activations.values() if wanted(a)),
                key=lambda a: (a.start, a.activation_id),
                reverse=True,
            )
            return [copy.deepcopy(a) for a in found[skip : skip + limit]]

    def purge_activations(self, older_than: int) -> int:
        with self._lock:
            old = [k for k, a in self._activations.items() if a.start < older_than]
            for k in old:
                del self._activations[k]
            return len(old)

    # rollups
    def insert_rollups(self, rows: list[Rollup]) -> None:
        with self._lock:
            self._rollups.extend(copy.deepcopy(rows))

    def list_rollups(self, namespace: str, name: str | None, since: int, upto: int) -> list[Rollup]:
        with self._lock:
            found = [
                copy.deepcopy(r)
                for r in self._rollups
                if r.namespace == namespace
                and (name is None or r.name == name)
                and since <= r.bucket <= upto
            ]
        return sorted(found, key=lambda r: r.bucket)

    def purge_rollups(self, older_than: int) -> int:
        with self._lock:
            kept = [r for r in self._rollups if r.bucket >= older_than]
            purged = len(self._rollups) - len(kept)
            self._rollups = kept
            return purged

    # triggers and rules
    def put_trigger(self, trigger: Trigger, *, reschedule: bool) -> None:
        with self._lock:
            key = (trigger.namespace, trigger.name)
            stored = copy.deepcopy(trigger)
            existing = self._triggers.get(key)
            if existing is not None:
                if not reschedule:
                    stored.next_run_at = existing.next_run_at
                stored.last_run_at = existing.last_run_at
                stored.running_until = existing.running_until
            self._triggers[key] = stored

    def get_trigger(self, namespace: str, name: str) -> Trigger | None:
        with self._lock:
            trigger = self._triggers.get((namespace, name))
            return copy.deepcopy(trigger) if trigger else None

    def list_triggers(self, namespace: str, limit: int, skip: int) -> list[Trigger]:
        with self._lock:
            found = sorted(
                (t for (ns, _), t in self._triggers.items() if ns == namespace),
                key=lambda t: t.name,
            )
            return [copy.deepcopy(t) for t in found[skip : skip + limit]]

    def delete_trigger(self, namespace: str, name: str) -> bool:
        with self._lock:
            return self._triggers.pop((namespace, name), None) is not None

    def due_triggers(self, until: int, limit: int) -> list[Trigger]:
        with self._lock:
            found = sorted(
                (
                    t
                    for t in self._triggers.values()
                    if t.enabled and t.next_run_at is not None and t.next_run_at <= until
                ),
                key=lambda t: (t.next_run_at or 0, t.namespace, t.name),
            )
            return [copy.deepcopy(t) for t in found[:limit]]

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
        with self._lock:
            trigger = self._triggers.get((namespace, name))
            if trigger is None or trigger.next_run_at != due:
                return "lost"
            trigger.next_run_at = following
            if not run:
                return "busy"
            if hold_until is not None:
                if trigger.running_until is not None and trigger.running_until > now:
                    return "busy"
                trigger.running_until = hold_until
            trigger.last_run_at = now
            return "fired"

    def release_trigger(self, namespace: str, name: str, hold_until: int) -> None:
        with self._lock:
            trigger = self._triggers.get((namespace, name))
            if trigger is not None and trigger.running_until == hold_until:
                trigger.running_until = None

    def put_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rules[(rule.namespace, rule.name)] = copy.deepcopy(rule)

    def get_rule(self, namespace: str, name: str) -> Rule | None:
        with self._lock:
            rule = self._rules.get((namespace, name))
            return copy.deepcopy(rule) if rule else None

    def list_rules(self, namespace: str, limit: int, skip: int) -> list[Rule]:
        with self._lock:
            found = sorted(
                (r for (ns, _), r in self._rules.items() if ns == namespace), key=lambda r: r.name
            )
            return [copy.deepcopy(r) for r in found[skip : skip + limit]]

    def delete_rule(self, namespace: str, name: str) -> bool:
        with self._lock:
            return self._rules.pop((namespace, name), None) is not None

    def rules_for_trigger(self, namespace: str, trigger: str) -> list[Rule]:
        with self._lock:
            found = sorted(
                (
                    r
                    for r in self._rules.values()
                    if r.namespace == namespace and r.trigger == trigger
                ),
                key=lambda r: r.name,
            )
            return [copy.deepcopy(r) for r in found]

    # gateway routes
    def put_route(self, route: GatewayRoute) -> None:
        key = (route.namespace, route.base_path, route.path, route.method)
        with self._lock:
            self._routes[key] = copy.deepcopy(route)

    def list_routes(
        self, namespace: str | None = None, host: str | None = None
    ) -> list[GatewayRoute]:
        with self._lock:
            found = [
                r
                for r in self._routes.values()
                if (namespace is None or r.namespace == namespace)
                and (host is None or r.host == host)
            ]
            found.sort(key=lambda r: (r.namespace, r.base_path, r.path, r.method))
            return [copy.deepcopy(r) for r in found]

    def delete_routes(
        self, namespace: str, base_path: str, path: str | None, method: str | None
    ) -> int:
        with self._lock:
            doomed = [
                key
                for key in self._routes
                if key[:2] == (namespace, base_path)
                and (path is None or key[2] == path)
                and (method is None or key[3] == method)
            ]
            for key in doomed:
                del self._routes[key]
            return len(doomed)

    # asynchronous work
    def put_invoke_config(
        self, namespace: str, package: str, name: str, config: dict[str, Any], updated: int
    ) -> None:
        with self._lock:
            self._invoke_configs[(namespace, package, name)] = copy.deepcopy(config)

    def get_invoke_config(self, namespace: str, package: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            config = self._invoke_configs.get((namespace, package, name))
            return copy.deepcopy(config) if config is not None else None

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self._lock:
            self._dead_letters[letter.activation_id] = copy.deepcopy(letter)

    def get_dead_letter(self, namespace: str, activation_id: str) -> DeadLetter | None:
        with self._lock:
            letter = self._dead_letters.get(activation_id)
            if letter is None or letter.namespace != namespace:
                return None
            return copy.deepcopy(letter)

    def list_dead_letters(self, namespace: str, limit: int, skip: int) -> list[DeadLetter]:
        with self._lock:
            found = sorted(
                (d for d in self._dead_letters.values() if d.namespace == namespace),
                key=lambda d: (d.created, d.activation_id),
                reverse=True,
            )
            return [copy.deepcopy(d) for d in found[skip : skip + limit]]

    def delete_dead_letter(self, namespace: str, activation_id: str) -> bool:
        with self._lock:
            letter = self._dead_letters.get(activation_id)
            if letter is None or letter.namespace != namespace:
                return False
            del self._dead_letters[activation_id]
            return True

    def purge_dead_letters(self, namespace: str) -> int:
        with self._lock:
            doomed = [k for k, d in self._dead_letters.items() if d.namespace == namespace]
            for k in doomed:
                del self._dead_letters[k]
            return len(doomed)

    def claim_idempotency_key(
        self, namespace: str, key: str, claim: IdempotencyClaim, expired_before: int
    ) -> IdempotencyClaim:
        with self._lock:
            held = self._idempotency.get((namespace, key))
            if held is not None and held.created >= expired_before:
                return copy.deepcopy(held)
            self._idempotency[(namespace, key)] = copy.deepcopy(claim)
            return copy.deepcopy(claim)

    def release_idempotency_key(self, namespace: str, key: str, activation_id: str) -> bool:
        with self._lock:
            held = self._idempotency.get((namespace, key))
            if held is None or held.activation_id != activation_id:
                return False
            del self._idempotency[(namespace, key)]
            return True

    def purge_idempotency_keys(self, older_than: int) -> int:
        with self._lock:
            old = [k for k, c in self._idempotency.items() if c.created < older_than]
            for k in old:
                del self._idempotency[k]
            return len(old)

    # secrets
    def ensure_data_key(self, namespace: str, wrapped: str) -> str:
        with self._lock:
            return self._data_keys.setdefault(namespace, wrapped)

    def data_keys(self) -> dict[str, str]:
        with self._lock:
            return dict(self._data_keys)

    def replace_data_keys(self, wrapped: dict[str, str]) -> None:
        with self._lock:
            self._data_keys.update(wrapped)

    def put_secret(self, secret: StoredSecret) -> None:
        with self._lock:
            self._secrets[(secret.namespace, secret.name)] = replace(secret)

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None:
        with self._lock:
            found = self._secrets.get((namespace, name))
            return replace(found) if found else None

    def list_secrets(self, namespace: str) -> list[StoredSecret]:
        with self._lock:
            found = [s for (ns, _), s in self._secrets.items() if ns == namespace]
            return [replace(s) for s in sorted(found, key=lambda s: s.name)]

    def delete_secret(self, namespace: str, name: str) -> bool:
        with self._lock:
            return self._secrets.pop((namespace, name), None) is not None
