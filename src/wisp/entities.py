"""Packages and actions: validation, create-vs-update, versions, and invoke targets.

The domain rules behind the OpenWhisk entity API, independent of HTTP. Documents
come in OpenWhisk's JSON shape (what real clients send); domain objects go out.

- A PUT of an existing entity needs ``overwrite``; it then changes only what it
  sends (``nim action update --web raw`` sends no ``exec``).
- Every real change bumps the version (0.0.1, 0.0.2, ...); a PUT that changes
  nothing keeps it, which is what makes a second identical deploy a no-op.
- ``exec`` is a server-owned annotation: clients echo it back, so it is dropped on
  the way in (and added on the way out, in ``api/shapes.py``).
- A rollback makes a new version with an old one's code and settings, annotated
  ``rollback: {from, to}``; the last ``VERSIONS_KEPT`` versions are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wisp.builds import Builder
from wisp.config import Limits
from wisp.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedFields,
    VersionTaken,
)
from wisp.invoker.base import Target
from wisp.invoker.retries import DEFAULT as DEFAULT_INVOKE_CONFIG
from wisp.invoker.retries import InvokeConfig, parse_invoke_config
from wisp.models import DEFAULT_PACKAGE, Action, ActionLimits, Alias, Exec, KeyValues, Package
from wisp.runtimes import RuntimeTable
from wisp.secrets import references, secret_reference
from wisp.store.base import Store

# OpenWhisk's entity name rule: word characters, then also '@', ' ', '.', '-'.
_NAME = re.compile(r"\w|\w[\w@ .-]*[\w@.-]", re.ASCII)
_NAME_MAX = 256
ROLLBACK = "rollback"  # annotation of a version made by a rollback: {"from", "to"}
SERVER_ANNOTATIONS = frozenset({"exec", "runtime", ROLLBACK})
EXEC_FIELDS = frozenset({"kind", "code", "binary", "main"})
# Fields of a PUT body: those Wisp acts on, and those a GET returns that clients send back
# (read-only: ignored). Anything else is a 400 naming it, never dropped silently.
ACTION_FIELDS = frozenset(
    {"exec", "limits", "parameters", "annotations", "publish"}
    | {"name", "namespace", "version", "updated", "build"}
)
PACKAGE_FIELDS = frozenset(
    {"parameters", "annotations", "publish", "binding"}
    | {"name", "namespace", "version", "updated", "actions", "feeds"}
)
_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_MAGIC_B64 = "UEsDB"  # base64 of the zip magic's first bytes

TargetKey = tuple[str, str, str, str]  # (namespace, package, name, qualifier or "")
VERSION_ATTEMPTS = 10  # concurrent PUTs of one action: each takes the next free version
VERSIONS_KEPT = 20  # per action, besides those an alias points at
_VERSION = re.compile(r"\d{1,9}\.\d{1,9}\.\d{1,9}", re.ASCII)
# An alias never looks like a version; these words are paths under a function's.
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", re.ASCII)
RESERVED_ALIASES = frozenset({"latest", "versions", "rollback", "aliases", "invokeConfig"})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def next_version(version: str) -> str:
    """0.0.1 -> 0.0.2; anything unparseable restarts the sequence."""
    try:
        major, minor, patch = (int(part) for part in version.split("."))
    except ValueError:
        return "0.0.1"
    return f"{major}.{minor}.{patch + 1}"


def check_name(what: str, name: str) -> str:
    if len(name) > _NAME_MAX or not _NAME.fullmatch(name):
        raise BadRequest(
            f"invalid {what} name {name!r}: use up to {_NAME_MAX} letters, digits, '_', '@', "
            "'.', '-' or spaces, starting with a letter, digit or '_'"
        )
    return name


def action_path(package: str, name: str) -> str:
    return name if package == DEFAULT_PACKAGE else f"{package}/{name}"


def split_qualifier(name: str) -> tuple[str, str]:
    """``fn:live`` -> ("fn", "live"); ``fn`` -> ("fn", ""). ``:`` is in no entity name."""
    bare, colon, qualifier = name.partition(":")
    if colon and not qualifier:
        raise BadRequest(f"{name!r} ends with ':': name a version (fn:0.0.2) or an alias")
    return bare, qualifier


def check_alias(alias: str) -> str:
    if not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise BadRequest(
            f"invalid alias name {alias!r}: use up to 64 letters, digits, '_' or '-', "
            "starting with a letter or '_' (not a version), and none of "
            + ", ".join(sorted(RESERVED_ALIASES))
        )
    return alias


class EntityService:
    """Create, read, update and delete packages and actions; resolve invoke targets."""

    def __init__(
        self,
        store: Store,
        runtimes: RuntimeTable,
        limits: Limits,
        builder: Builder | None = None,
    ) -> None:
        self.store = store
        self.runtimes = runtimes
        self.limits = limits
        self.builder = builder
        self._lock = threading.Lock()
        self._targets: dict[TargetKey, Target] = {}
        # Bumped by every invalidation, so a resolve that read the store before a
        # concurrent change cannot cache what it read.
        self._generation = 0

    # -- packages ----------------------------------------------------------
    def _check_secrets(self, namespace: str, parameters: KeyValues | None) -> None:
        """A reference to a secret that does not exist is refused now, not at the
        first invocation."""
        missing = sorted(
            {n for n in references(parameters or []) if self.store.get_secret(namespace, n) is None}
        )
        if missing:
            raise BadRequest(
                f"secret {', '.join(missing)} referenced by the parameters does not exist in "
                f"namespace {namespace}; set it first (wisp secret set NAME)"
            )

    def put_package(
        self, namespace: str, name: str, doc: Mapping[str, Any], *, overwrite: bool = False
    ) -> Package:
        check_name("package", name)
        _known_fields(doc, PACKAGE_FIELDS, "a package takes parameters, annotations and publish")
        if name == DEFAULT_PACKAGE:
            raise BadRequest(f"the package name {DEFAULT_PACKAGE!r} is reserved")
        binding = doc.get("binding")
        if binding is not None and not isinstance(binding, Mapping):
            raise BadRequest("binding must be an object")
        if binding:
            raise BadRequest("package bindings are not supported")
        parameters = _key_values("parameters", doc.get("parameters"))
        self._check_secrets(namespace, parameters)
        annotations = _key_values("annotations", doc.get("annotations"))
        publish = _optional_bool("publish", doc.get("publish"))

        existing = self.store.get_package(namespace, name)
        if existing is None:
            package = Package(
                namespace=namespace,
                name=name,
                parameters=parameters or [],
                annotations=annotations or [],
                publish=bool(publish),
                updated=now_ms(),
            )
        else:
            if not overwrite:
                raise Conflict(f"package {name!r} already exists; use overwrite=true to update it")
            package = replace(
                existing,
                parameters=existing.parameters if parameters is None else parameters,
                annotations=existing.annotations if annotations is None else annotations,
                publish=existing.publish if publish is None else publish,
            )
            if _package_content(package) == _package_content(existing):
                return existing
            package.version = next_version(existing.version)
            package.updated = now_ms()
        self.store.put_package(package)
        self._invalidate(namespace, name, None)
        return package

    def get_package(self, namespace: str, name: str) -> Package:
        package = self.store.get_package(namespace, name)
        if package is None:
            raise NotFound(f"package {name!r} does not exist")
        return package

    def delete_package(self, namespace: str, name: str) -> Package:
        package = self.get_package(namespace, name)
        count = self.store.count_actions(namespace, name)
        if count:
            raise Conflict(f"Package not empty (contains {count} actions)")
        self.store.delete_package(namespace, name)
        self._invalidate(namespace, name, None)
        return package

    def list_packages(self, namespace: str, limit: int, skip: int) -> list[Package]:
        return self.store.list_packages(namespace, limit, skip)

    # -- actions -----------------------------------------------------------
    def put_action(
        self,
        namespace: str,
        package: str,
        name: str,
        doc: Mapping[str, Any],
        *,
        overwrite: bool = False,
        subject: str = "",
    ) -> Action:
        """Create or update; ``subject`` (who puts it) is kept with a new version."""
        check_name("action", name)
        _known_fields(
            doc, ACTION_FIELDS, "an action takes exec, limits, parameters, annotations and publish"
        )
        if package != DEFAULT_PACKAGE:
            check_name("package", package)
            if self.store.get_package(namespace, package) is None:
                raise NotFound(f"package {package!r} does not exist")
        built: dict[str, Exec] = {}  # by digest: a retry does not build again
        for _ in range(VERSION_ATTEMPTS - 1):
            try:
                return self._put_action(namespace, package, name, doc, overwrite, built, subject)
            except VersionTaken:
                # A concurrent PUT stored the version this one computed: apply this
                # one's changes on top of that version, as the next version.
                continue
        return self._put_action(namespace, package, name, doc, overwrite, built, subject)

    def _put_action(
        self,
        namespace: str,
        package: str,
        name: str,
        doc: Mapping[str, Any],
        overwrite: bool,
        built: dict[str, Exec],
        subject: str,
    ) -> Action:
        existing = self.store.get_action(namespace, package, name)
        if existing is not None and not overwrite:
            path = action_path(package, name)
            raise Conflict(f"action {path!r} already exists; use overwrite=true to update it")
        previous_exec = existing.exec if existing else None
        exec_ = self._exec(doc.get("exec"), previous_exec)
        if exec_ is not previous_exec:
            if exec_.digest in built:
                exec_ = built[exec_.digest]
            else:
                exec_ = self._build(exec_, previous_exec)  # a failed build stores nothing
                built[exec_.digest] = exec_
        limits = self._limits(doc.get("limits"), existing.limits if existing else None)
        parameters = _key_values("parameters", doc.get("parameters"))
        self._check_secrets(namespace, parameters)
        annotations = _key_values("annotations", doc.get("annotations"))
        publish = _optional_bool("publish", doc.get("publish"))

        if existing is None:
            action = Action(
                namespace=namespace,
                package=package,
                name=name,
                exec=exec_,
                limits=limits,
                parameters=parameters or [],
                annotations=annotations or [],
                publish=bool(publish),
                updated=now_ms(),
                subject=subject,
            )
        else:
            action = replace(
                existing,
                exec=exec_,
                limits=limits,
                parameters=existing.parameters if parameters is None else parameters,
                # A new version is no rollback: the server's annotations are its own.
                annotations=_own(existing.annotations) if annotations is None else annotations,
                publish=existing.publish if publish is None else publish,
            )
            if _action_content(action) == _action_content(existing):
                return existing
            action.version = next_version(existing.version)
            action.updated = now_ms()
            action.subject = subject
        self._store_version(action)
        return action

    def _store_version(self, action: Action) -> None:
        """Store a new version, run it from now on, and forget versions past retention."""
        namespace, package, name = action.namespace, action.package, action.name
        self.store.put_action(action)
        self._invalidate(namespace, package, name)
        pinned = self._pinned_versions(namespace, package, name)
        self.store.prune_action_versions(namespace, package, name, VERSIONS_KEPT, pinned)

    def _pinned_versions(self, namespace: str, package: str, name: str) -> set[str]:
        """Versions kept past retention: those an alias points at."""
        return {a.version for a in self.store.list_aliases(namespace, package, name)}

    # -- aliases -------------------------------------------------------------
    def put_alias(
        self,
        namespace: str,
        package: str,
        name: str,
        alias: str,
        doc: Mapping[str, Any],
        *,
        subject: str = "",
    ) -> Alias:
        """Point ``alias`` at a kept version (created or repointed)."""
        check_alias(alias)
        unknown = [key for key in doc if key != "version"]
        if unknown:
            raise UnsupportedFields(unknown, 'an alias takes {"version": "0.0.2"}')
        version = doc.get("version")
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise BadRequest(f'version must be a version such as "0.0.2" (got {_show(version)})')
        self._version(self.get_action(namespace, package, name), version)  # 404 if not kept
        made = Alias(namespace, package, name, alias, version, now_ms(), subject)
        self.store.put_alias(made)
        self._invalidate(namespace, package, name)
        return made

    def get_alias(self, namespace: str, package: str, name: str, alias: str) -> Alias:
        found = self.store.get_alias(namespace, package, name, alias)
        if found is None:
            self.get_action(namespace, package, name)  # 404 for a missing function first
            path = action_path(package, name)
            raise NotFound(f"alias {alias!r} of function {path!r} does not exist")
        return found

    def list_aliases(self, namespace: str, package: str, name: str) -> list[Alias]:
        self.get_action(namespace, package, name)
        return self.store.list_aliases(namespace, package, name)

    def delete_alias(self, namespace: str, package: str, name: str, alias: str) -> Alias:
        found = self.get_alias(namespace, package, name, alias)
        self.store.delete_alias(namespace, package, name, alias)
        self._invalidate(namespace, package, name)
        return found

    def get_qualified(
        self, namespace: str, package: str, name: str, qualifier: str
    ) -> tuple[Action, str]:
        """The version ``qualifier`` names (a version, an alias; "": the current one),
        and the alias it was named by ("" if none)."""
        action = self.get_action(namespace, package, name)
        if not qualifier:
            return action, ""
        if _VERSION.fullmatch(qualifier):
            return self._version(action, qualifier), ""
        if not _ALIAS.fullmatch(qualifier):
            raise BadRequest(
                f"{qualifier!r} is neither a version (such as 0.0.2) nor an alias name"
            )
        version = self.get_alias(namespace, package, name, qualifier).version
        return self._version(action, version), qualifier

    def _version(self, current: Action, version: str) -> Action:
        """A kept version of the function ``current`` is the current version of."""
        if version == current.version:
            return current
        found = self.store.get_action_version(
            current.namespace, current.package, current.name, version
        )
        if found is None:
            kept = self.store.list_action_versions(current.namespace, current.package, current.name)
            raise NotFound(
                f"version {version} of function {current.path!r} does not exist "
                f"(kept: {', '.join(kept)})"
            )
        return found

    # -- versions and rollback -----------------------------------------------
    def list_versions(self, namespace: str, package: str, name: str) -> list[Action]:
        """The action's kept versions, newest first."""
        self.get_action(namespace, package, name)  # 404 for a missing function
        found = []
        for version in reversed(self.store.list_action_versions(namespace, package, name)):
            action = self.store.get_action_version(namespace, package, name, version)
            if action is not None:  # pruned meanwhile
                found.append(action)
        return found

    def rollback(
        self, namespace: str, package: str, name: str, to: str | None, *, subject: str = ""
    ) -> tuple[Action, bool]:
        """Run version ``to`` (default: the one before the current one) again, as a new
        version annotated with what it rolled back from; (that version, True). Rolling
        back to the code and settings that already run changes nothing: (current, False)."""
        if to is not None and not _VERSION.fullmatch(to):
            raise BadRequest(f"version must look like 0.0.2 (got {_show(to)})")
        for attempt in range(VERSION_ATTEMPTS):
            current = self.get_action(namespace, package, name)
            old = self._version(current, to if to is not None else self._previous(current))
            if _action_content(old) == _action_content(current):
                return current, False
            self._check_build(old)
            note = {"key": ROLLBACK, "value": {"from": current.version, "to": old.version}}
            action = replace(
                old,
                annotations=[*_own(old.annotations), note],
                version=next_version(current.version),
                updated=now_ms(),
                subject=subject,
            )
            try:
                self._store_version(action)
            except VersionTaken:
                if attempt == VERSION_ATTEMPTS - 1:
                    raise
                continue  # an update landed meanwhile: roll back from it instead
            return action, True
        raise AssertionError("unreachable")  # the loop returns or raises

    def _previous(self, current: Action) -> str:
        versions = self.store.list_action_versions(current.namespace, current.package, current.name)
        at = versions.index(current.version) if current.version in versions else len(versions)
        if at == 0:
            raise Conflict(
                f"function {current.path!r} has no version before {current.version} "
                "to roll back to"
            )
        return versions[at - 1]

    def _check_build(self, old: Action) -> None:
        build = old.exec.build
        if build and self.builder is not None and not self.builder.path(build).is_dir():
            raise Conflict(
                f"version {old.version} of function {old.path!r} ran the build {build}, "
                "which is no longer on this server: deploy that code again instead"
            )

    def get_action(self, namespace: str, package: str, name: str) -> Action:
        action = self.store.get_action(namespace, package, name)
        if action is None:
            raise NotFound(f"action {action_path(package, name)!r} does not exist")
        return action

    def delete_action(self, namespace: str, package: str, name: str) -> Action:
        action = self.get_action(namespace, package, name)
        self.store.delete_action(namespace, package, name)
        self._invalidate(namespace, package, name)
        return action

    def list_actions(
        self, namespace: str, package: str | None, limit: int, skip: int
    ) -> list[Action]:
        """``package=None`` lists every package's actions."""
        return self.store.list_actions(namespace, package, limit, skip)

    def count_actions(self, namespace: str, package: str | None) -> int:
        return self.store.count_actions(namespace, package)

    # -- invoke targets ----------------------------------------------------
    def cached_target(
        self, namespace: str, package: str, name: str, qualifier: str = ""
    ) -> Target | None:
        """The invoke hot path: a dict lookup, no I/O. None means 'call resolve_target'."""
        return self._targets.get((namespace, package, name, qualifier))

    def resolve_target(
        self, namespace: str, package: str, name: str, qualifier: str = ""
    ) -> Target:
        """The action (the version ``qualifier`` names: a version or an alias; else the
        current one) with its package's defaults resolved, cached until either changes.

        The returned Target is shared between invocations: treat it as read-only.
        """
        with self._lock:
            generation = self._generation
        action, alias = self.get_qualified(namespace, package, name, qualifier)
        bound = None
        if package != DEFAULT_PACKAGE:
            bound = self.store.get_package(namespace, package)
        target = bind_target(action, bound, self.runtimes)
        target.qualified, target.alias = bool(qualifier), alias
        stored = self.store.get_invoke_config(namespace, package, name)
        if stored is not None:
            target.invoke_config = parse_invoke_config(stored)
        with self._lock:
            if self._generation == generation:
                self._targets[(namespace, package, name, qualifier)] = target
        return target

    # -- invoke configs (retries of asynchronous invocations) ----------------
    def get_invoke_config(self, namespace: str, package: str, name: str) -> InvokeConfig:
        """The function's config; the defaults when none was put."""
        self.get_action(namespace, package, name)  # 404 for a missing function
        stored = self.store.get_invoke_config(namespace, package, name)
        return parse_invoke_config(stored) if stored is not None else DEFAULT_INVOKE_CONFIG

    def put_invoke_config(self, namespace: str, package: str, name: str, raw: Any) -> InvokeConfig:
        """Validate and replace the function's config (absent fields: the defaults)."""
        config = parse_invoke_config(raw)
        self.get_action(namespace, package, name)
        target = config.on_failure.function if config.on_failure else None
        if target is not None:
            where, _, fn = target.rpartition("/")
            if (where or DEFAULT_PACKAGE, fn) == (package, name):
                # Its own dead letters would invoke it again, failing again, forever.
                raise BadRequest("onFailure.function must be another function than this one")
        self.store.put_invoke_config(namespace, package, name, config.to_json(), now_ms())
        self._invalidate(namespace, package, name)
        return config

    def _invalidate(self, namespace: str, package: str, name: str | None) -> None:
        """Forget targets of one action, or of every action in a package (name=None)."""
        with self._lock:
            self._generation += 1
            # Every qualifier of the action (its aliases, its versions), or of the package's.
            for key in [
                k
                for k in self._targets
                if k[0] == namespace and k[1] == package and (name is None or k[2] == name)
            ]:
                del self._targets[key]

    # -- validation --------------------------------------------------------
    def _exec(self, raw: Any, previous: Exec | None) -> Exec:
        if raw is None:
            if previous is None:
                raise BadRequest("exec is required when creating an action")
            return previous
        if not isinstance(raw, Mapping):
            raise BadRequest("exec must be an object with kind and code")
        unknown = [f"exec.{key}" for key in raw if key not in EXEC_FIELDS]
        if unknown:
            # exec.image (blackbox), exec.components (sequence) and anything else would
            # otherwise be dropped, and the function run as something it did not ask for.
            raise UnsupportedFields(unknown, "exec takes kind, code, binary and main")
        kind = _optional_str("exec.kind", raw.get("kind"))
        if kind is None:
            if previous is None:
                raise BadRequest("exec.kind is required when creating an action")
            kind, requested = previous.kind, previous.requested
        else:
            substitute = self.runtimes.substitute(kind)
            requested = kind if substitute is not None else ""
            kind = self.runtimes.resolve(kind).kind
        code = _optional_str("exec.code", raw.get("code"))
        main = _optional_str("exec.main", raw.get("main"))
        binary = _optional_bool("exec.binary", raw.get("binary"))
        if code is None:
            # An exec without code (e.g. a kind change) keeps the previous code and,
            # unless sent, how it was packaged.
            if previous is None:
                raise BadRequest("exec.code is required when creating an action")
            code = previous.code
            main = main or previous.main
            binary = previous.binary if binary is None else binary
        main = main or "main"
        if binary is None:
            binary = _is_base64_zip(code)
        size = self._code_size(code, binary)
        if size > self.limits.code_max:
            raise PayloadTooLarge(
                f"exec.code is {size} bytes, over the limit of {self.limits.code_max} bytes"
            )
        digest = hashlib.sha256(f"{kind}\0{main}\0".encode() + code.encode()).hexdigest()
        return Exec(
            kind=kind, code=code, binary=binary, main=main, digest=digest, requested=requested
        )

    def _build(self, exec_: Exec, previous: Exec | None) -> Exec:
        """Run the server-side build the code needs (wisp.builds); raises when it fails."""
        if self.builder is None:
            return exec_
        if (
            previous is not None
            and previous.digest == exec_.digest
            and previous.build
            and self.builder.path(previous.build).is_dir()
        ):
            return replace(exec_, build=previous.build, build_log=previous.build_log)
        result = self.builder.build(exec_, self.runtimes.resolve(exec_.kind))
        if result is None:
            return exec_
        return replace(exec_, build=result.name, build_log=result.log)

    @staticmethod
    def _code_size(code: str, binary: bool) -> int:
        if not binary:
            return len(code.encode())
        data = _decode_base64(code)
        if data is None:
            raise BadRequest("exec.code is marked binary but is not valid base64")
        return len(data)

    def _limits(self, raw: Any, previous: ActionLimits | None) -> ActionLimits:
        lim = self.limits
        base = previous or ActionLimits(
            timeout=lim.timeout_default, memory=lim.memory_default, logs=lim.logs_default
        )
        if raw is None:
            return replace(base)
        if not isinstance(raw, Mapping):
            raise BadRequest("limits must be an object with timeout, memory and logs")
        unknown = sorted(set(raw) - {"timeout", "memory", "logs", "concurrency"})
        if unknown:
            raise BadRequest(
                f"unknown field limits.{unknown[0]}; allowed: timeout, memory, logs, concurrency"
            )
        concurrency = raw.get("concurrency")
        if concurrency is not None and _int("limits.concurrency", concurrency) != 1:
            # An instance runs one activation at a time.
            raise BadRequest(f"limits.concurrency must be 1 (got {concurrency})")
        ranges = {
            "timeout": (lim.timeout_min, lim.timeout_max, "ms"),
            "memory": (lim.memory_min, lim.memory_max, "MB"),
            "logs": (lim.logs_min, lim.logs_max, "KB"),
        }
        values = {"timeout": base.timeout, "memory": base.memory, "logs": base.logs}
        for field, (low, high, unit) in ranges.items():
            if raw.get(field) is None:
                continue
            value = _int(f"limits.{field}", raw[field])
            if not low <= value <= high:
                raise BadRequest(
                    f"limits.{field} must be between {low} and {high} {unit} (got {value})"
                )
            values[field] = value
        return ActionLimits(**values)


def bind_target(
    action: Action, package: Package | None, runtimes: RuntimeTable | None = None
) -> Target:
    """The action with its package's defaults bound (init parameters become env), and
    what runs it when that is another version of its language than it asked for."""
    parameters: dict[str, Any] = {}
    env: dict[str, str] = {}
    env_secrets: dict[str, str] = {}
    for entries in (package.parameters if package else [], action.parameters):
        for entry in entries:
            if entry.get("init"):
                value = entry.get("value")
                secret = secret_reference(value)
                if secret is not None:
                    env_secrets[entry["key"]] = secret
                    env.pop(entry["key"], None)
                    continue
                env_secrets.pop(entry["key"], None)
                env[entry["key"]] = value if isinstance(value, str) else json.dumps(value)
            else:
                parameters[entry["key"]] = entry.get("value")
    target = Target(action=action, parameters=parameters, env=env, env_secrets=env_secrets)
    if action.exec.requested:
        target.runtime = {"requested": action.exec.requested, "kind": action.exec.kind}
        runtime = runtimes.runtimes.get(action.exec.kind) if runtimes else None
        if runtime is not None and runtime.version:
            target.runtime["version"] = runtime.version
    return target


def _package_content(p: Package) -> tuple[Any, ...]:
    return (p.parameters, p.annotations, p.publish)


def _action_content(a: Action) -> tuple[Any, ...]:
    exec_ = a.exec
    return (exec_.digest, exec_.requested, exec_.binary, a.limits, a.parameters,
            _own(a.annotations), a.publish)


def _own(annotations: KeyValues) -> KeyValues:
    """The annotations the function's deployer gave (the server adds the others)."""
    return [a for a in annotations if a.get("key") not in SERVER_ANNOTATIONS]


def _key_values(field: str, raw: Any) -> KeyValues | None:
    """Validate OpenWhisk's ``[{key, value, init?}]``; None when the field was not sent."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest(f"{field} must be a list of {{key, value}} objects")
    out: KeyValues = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise BadRequest(f"{field}[{i}] must be an object with a string 'key'")
        if field == "annotations" and item["key"] in SERVER_ANNOTATIONS:
            continue
        entry: dict[str, Any] = {"key": item["key"], "value": item.get("value")}
        if _optional_bool(f"{field}[{i}].init", item.get("init")):
            entry["init"] = True
        out.append(entry)
    return out


def _known_fields(doc: Mapping[str, Any], known: frozenset[str], hint: str) -> None:
    unknown = [field for field in doc if field not in known]
    if unknown:
        raise UnsupportedFields(unknown, hint)


def _optional_bool(field: str, raw: Any) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    raise BadRequest(f"{field} must be true or false (got {_show(raw)})")


def _optional_str(field: str, raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise BadRequest(f"{field} must be a string (got {_show(raw)})")


def _int(field: str, raw: Any) -> int:
    # bool is an int in Python but never a meaningful limit.
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    raise BadRequest(f"{field} must be an integer (got {_show(raw)})")


def _show(raw: Any) -> str:
    text = json.dumps(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _decode_base64(code: str) -> bytes | None:
    try:
        return base64.b64decode(code, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # tools that wrap base64 at 76 columns
        return base64.b64decode("".join(code.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_base64_zip(code: str) -> bool:
    if not code.lstrip().startswith(_ZIP_MAGIC_B64):
        return False
    data = _decode_base64(code)
    return data is not None and data.startswith(_ZIP_MAGIC)
