"""The desired state: exactly the bodies a deploy would PUT, one per package and function.

Planning compares these bodies with what the server returns, so what is sent and
what is compared can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from wisp.deploy.build import infer_family, read_code
from wisp.deploy.errors import ProjectError
from wisp.deploy.project import DEFAULT_PACKAGE, PROJECT_FILE, FunctionSpec, PackageSpec, Project
from wisp.deploy.routes import DesiredRoute
from wisp.deploy.triggers import DesiredRule, DesiredTrigger, desired_rule, desired_trigger

Body = dict[str, Any]
# OpenWhisk's wskdeploy marks what a project deploys with this annotation; Wisp does the
# same so that ``--prune`` deletes only what this project deployed.
MANAGED = "whisk-managed"


def managed_annotation(project: str) -> dict[str, Any]:
    return {"key": MANAGED, "value": {"projectName": project, "file": PROJECT_FILE}}


def managed_by(entity: dict[str, Any]) -> str | None:
    """The project that deployed ``entity`` (a server document), if a project did."""
    for item in entity.get("annotations") or []:
        if isinstance(item, dict) and item.get("key") == MANAGED:
            value = item.get("value")
            name = value.get("projectName") if isinstance(value, dict) else None
            return name if isinstance(name, str) else None
    return None


class Runtimes:
    """The kinds a server offers, from ``GET /api/v1``'s ``runtimes`` object."""

    def __init__(self, table: dict[str, list[dict[str, Any]]]) -> None:
        self.kinds: dict[str, str] = {}  # kind → family
        self.defaults: dict[str, str] = {}  # family → default kind
        self.aliases: dict[str, str] = {}  # kind → the kind the server runs it with
        self.versions: dict[str, str] = {}  # kind → its toolchain's full version
        self.warnings: list[str] = []  # aliases used, for the deploy output
        for family, entries in table.items():
            for entry in entries:
                kind = str(entry.get("kind", ""))
                if not kind:
                    continue
                if entry.get("alias"):
                    self.aliases[kind] = str(entry["alias"])
                    continue
                if entry.get("version"):
                    self.versions[kind] = str(entry["version"])
                self.kinds[kind] = family
                if entry.get("default"):
                    self.defaults[family] = kind

    def resolve(self, runtime: str) -> str | None:
        """A concrete kind for ``python:3.11``, ``python:default`` or ``python``."""
        if runtime in self.kinds:
            return runtime
        if self.aliases.get(runtime) in self.kinds:
            # Sent as asked: the server records what was asked and what runs it, and
            # annotates the function and its activations with it.
            kind = self.aliases[runtime]
            ran = f"{kind} ({self.versions[kind]})" if kind in self.versions else kind
            warning = f"{runtime} is not installed on the server; {ran} runs it instead"
            if warning not in self.warnings:
                self.warnings.append(warning)
            return runtime
        family, _, version = runtime.partition(":")
        if version in ("", "default"):
            return self.defaults.get(family)
        return None

    def describe(self) -> str:
        return ", ".join(sorted(self.kinds)) or "none"


@dataclass
class DesiredPackage:
    name: str
    body: Body

    @property
    def label(self) -> str:
        return f"package {self.name}"

    @property
    def api_path(self) -> str:
        return f"packages/{quote(self.name, safe='')}"


@dataclass
class DesiredFunction:
    package: str
    name: str
    body: Body

    @property
    def path(self) -> str:
        return self.name if self.package == DEFAULT_PACKAGE else f"{self.package}/{self.name}"

    @property
    def label(self) -> str:
        return f"function {self.path}"

    @property
    def api_path(self) -> str:
        return "actions/" + "/".join(quote(part, safe="") for part in self.path.split("/"))


@dataclass
class DesiredInvokeConfig:
    """A function's ``invokeConfig``, put after the function (it must exist first)."""

    function: DesiredFunction
    body: Body

    @property
    def label(self) -> str:
        return f"invokeConfig {self.function.path}"

    @property
    def api_path(self) -> str:
        return self.function.api_path + "/invokeConfig"


@dataclass
class DesiredState:
    packages: list[DesiredPackage]
    functions: list[DesiredFunction]
    triggers: list[DesiredTrigger] = field(default_factory=list)
    rules: list[DesiredRule] = field(default_factory=list)
    routes: list[DesiredRoute] = field(default_factory=list)
    invoke_configs: list[DesiredInvokeConfig] = field(default_factory=list)
    project: str = ""  # the name in the whisk-managed mark of its packages and functions


def key_values(values: dict[str, Any], init: bool = False) -> list[dict[str, Any]]:
    """OpenWhisk's ``[{key, value}]`` form; ``init`` marks environment variables."""
    out: list[dict[str, Any]] = []
    for key, value in values.items():
        item: dict[str, Any] = {"key": key, "value": value}
        if init:
            item["init"] = True
        out.append(item)
    return out


def desired_state(project: Project, runtimes: Runtimes) -> DesiredState:
    packages: list[DesiredPackage] = []
    functions: list[DesiredFunction] = []
    configs: list[DesiredInvokeConfig] = []
    mark = managed_annotation(project.name)
    for pkg in project.packages:
        if pkg.name != DEFAULT_PACKAGE:
            body = package_body(pkg)
            body["annotations"].append(mark)
            packages.append(DesiredPackage(pkg.name, body))
        for fn in pkg.functions:
            body = function_body(fn, pkg, runtimes)
            body["annotations"].append(mark)
            function = DesiredFunction(fn.package, fn.name, body)
            functions.append(function)
            if fn.invoke_config is not None:
                configs.append(DesiredInvokeConfig(function, fn.invoke_config))
    specs = [spec for fn in project.functions for spec in fn.triggers]
    triggers = [desired_trigger(spec) for spec in specs]
    rules = [desired_rule(spec) for spec in specs]
    routes = list(project.routes)
    return DesiredState(packages, functions, triggers, rules, routes, configs, project.name)


def package_body(pkg: PackageSpec) -> Body:
    return {
        "parameters": key_values(pkg.parameters) + key_values(pkg.environment, init=True),
        "annotations": key_values(pkg.annotations),
        "publish": pkg.shared,
    }


def function_body(fn: FunctionSpec, pkg: PackageSpec, runtimes: Runtimes) -> Body:
    code, binary = read_code(fn.source.path, fn.binary)
    parameters = dict(fn.parameters)
    environment = dict(fn.environment)
    if pkg.name == DEFAULT_PACKAGE:
        # There is no package entity to hold these, so they travel with each function.
        parameters = {**pkg.parameters, **parameters}
        environment = {**pkg.environment, **environment}
    body: Body = {
        "exec": {
            "kind": _kind(fn, runtimes),
            "code": code,
            "binary": binary,
            "main": fn.main or "main",
        },
        "parameters": key_values(parameters) + key_values(environment, init=True),
        "annotations": key_values(fn.annotations) + _web_annotations(fn),
    }
    if fn.limits:
        body["limits"] = dict(fn.limits)
    return body


def _kind(fn: FunctionSpec, runtimes: Runtimes) -> str:
    if fn.runtime is not None:
        asked = runtimes.resolve(fn.runtime)
        if asked is None:
            raise ProjectError(_unknown_runtime(fn, runtimes))
        return asked
    family = infer_family(fn.source.path)
    if family is None:
        raise ProjectError(
            f"{fn.source.label}: cannot tell the runtime of {fn.path} from its files; "
            "set runtime in project.yml"
        )
    kind = runtimes.resolve(family)
    if kind is None:
        raise ProjectError(
            f"{fn.source.label}: no {family} runtime on the server for {fn.path}; "
            f"available: {runtimes.describe()}"
        )
    return kind


def _unknown_runtime(fn: FunctionSpec, runtimes: Runtimes) -> str:
    # Imported here, on the error path only: wisp.runtimes imports importlib.metadata,
    # which a one-shot `wisp deploy` should not pay for (tests/cli/test_main.py).
    from wisp.runtimes import LANGUAGES, PROVIDERS

    assert fn.runtime is not None
    where = f"{PROJECT_FILE}: {fn.where}.runtime: {fn.runtime!r}"
    language = fn.runtime.partition(":")[0]
    if language in PROVIDERS and language not in runtimes.kinds.values():
        return (
            f"{where} needs {LANGUAGES[language]}, which is not installed on the server (the "
            f"Debian package {PROVIDERS[language]} provides it); available: {runtimes.describe()}"
        )
    return f"{where} is not offered by the server; available: {runtimes.describe()}"


def _web_annotations(fn: FunctionSpec) -> list[dict[str, Any]]:
    web = fn.web is not False
    out: list[dict[str, Any]] = [
        {"key": "web-export", "value": web},
        {"key": "raw-http", "value": fn.web == "raw"},
        {"key": "final", "value": web},
    ]
    if fn.web_secure is not False:
        out.append({"key": "require-whisk-auth", "value": fn.web_secure})
    return out
