"""Read a DigitalOcean-style project (project.yml + ``packages/``) into a desired state.

Everything that can be checked without the server is checked here, and every
error names the file and the key path, e.g.
``project.yml: packages[0].functions[1].limits.memory: must be an integer``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wisp.deploy.build import Source, scan_packages
from wisp.deploy.errors import ProjectError
from wisp.deploy.routes import DesiredRoute, read_routes
from wisp.deploy.triggers import TriggerSpec, read_triggers
from wisp.deploy.variables import read_dotenv, substitute

PROJECT_FILE = "project.yml"
DEFAULT_PACKAGE = "default"
RESERVED_ANNOTATIONS = ("web-export", "raw-http", "require-whisk-auth")
LIMIT_KEYS = ("timeout", "memory", "logs")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_@.-]*")

_TOP_KEYS = {"packages", "parameters", "environment", "targetNamespace", "routes"}
_PACKAGE_KEYS = {
    "name",
    "functions",
    "actions",
    "parameters",
    "environment",
    "annotations",
    "shared",
    "web",
}
_FUNCTION_KEYS = {
    "name",
    "runtime",
    "main",
    "binary",
    "web",
    "webSecure",
    "annotations",
    "parameters",
    "environment",
    "limits",
    "invokeConfig",
    "triggers",
    "remoteBuild",
    "localBuild",
}
_UNSUPPORTED = {"binding", "docker", "sequence"}  # valid for DigitalOcean, not built yet

Web = bool | str  # True, False or "raw"


@dataclass
class FunctionSpec:
    package: str
    name: str
    source: Source
    where: str  # key path (or file) that errors about this function point at
    runtime: str | None = None
    main: str | None = None
    binary: bool | None = None
    web: Web = True  # DigitalOcean's deployer default
    web_secure: bool | str = False
    annotations: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    # Retries of asynchronous invocations, normalised (every field, defaults filled):
    # what the server answers on GET, so a second deploy compares equal.
    invoke_config: dict[str, Any] | None = None
    triggers: list[TriggerSpec] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.name if self.package == DEFAULT_PACKAGE else f"{self.package}/{self.name}"


@dataclass
class PackageSpec:
    name: str
    where: str
    shared: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)  # project params merged in
    environment: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    functions: list[FunctionSpec] = field(default_factory=list)


@dataclass
class Project:
    root: Path
    packages: list[PackageSpec]
    warnings: list[str] = field(default_factory=list)
    routes: list[DesiredRoute] = field(default_factory=list)

    @property
    def functions(self) -> list[FunctionSpec]:
        return [fn for pkg in self.packages for fn in pkg.functions]

    @property
    def name(self) -> str:
        """The project's name in the ``whisk-managed`` mark: its directory's name."""
        return self.root.resolve().name


def load_project(
    root: Path, env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Project:
    """Read ``root`` (project.yml is optional: ``packages/`` alone is a project)."""
    if not root.is_dir():
        raise ProjectError(f"{root}: not a directory")
    environ = os.environ if environ is None else environ
    if env_file is not None and not env_file.is_file():
        raise ProjectError(f"{env_file}: env file not found")
    dotenv_path = env_file or root / ".env"
    dotenv = read_dotenv(dotenv_path) if dotenv_path.is_file() else {}
    document = _read_document(root / PROJECT_FILE, [environ, dotenv])
    reader = _Reader(root, scan_packages(root))
    return reader.read(document)


def _read_document(path: Path, sources: list[Mapping[str, str]]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{label}: cannot read: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line:
            raise ProjectError(f"{label}: line {number}: tabs are not allowed; indent with spaces")
    text = substitute(text, sources, label)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProjectError(f"{label}: {where}invalid YAML: {problem}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProjectError(f"{label}: the top level must be a mapping")
    return document


class _Reader:
    def __init__(self, root: Path, on_disk: dict[str, dict[str, Source]]) -> None:
        self.root = root
        self.on_disk = on_disk
        self.warnings: list[str] = []

    def fail(self, where: str, message: str) -> ProjectError:
        return ProjectError(f"{PROJECT_FILE}: {where}: {message}" if where else message)

    def read(self, doc: dict[str, Any]) -> Project:
        self.keys(doc, _TOP_KEYS, "")
        if "targetNamespace" in doc:
            self.warnings.append(
                f"{PROJECT_FILE}: targetNamespace is ignored; Wisp deploys to the logged-in one"
            )
        params = self.mapping(doc.get("parameters"), "parameters")
        env = self.environment(doc.get("environment"), "environment")
        raw_packages = doc.get("packages")
        if raw_packages is None:
            raw_packages = []
        if not isinstance(raw_packages, list):
            raise self.fail("packages", "must be a list")
        packages: dict[str, PackageSpec] = {}
        for i, raw in enumerate(raw_packages):
            pkg = self.package(raw, f"packages[{i}]", params, env)
            if pkg.name in packages:
                raise self.fail(f"packages[{i}].name", f"package {pkg.name!r} is listed twice")
            packages[pkg.name] = pkg
        # Functions found on disk but not listed are deployed with defaults, like
        # DigitalOcean's deployer does.
        for pkg_name, sources in self.on_disk.items():
            if pkg_name not in packages:
                where = f"packages/{pkg_name}"
                packages[pkg_name] = PackageSpec(pkg_name, where, False, dict(params), dict(env))
            pkg = packages[pkg_name]
            listed = {fn.name for fn in pkg.functions}
            for name, source in sources.items():
                if name not in listed:
                    where = source.path.relative_to(self.root).as_posix()
                    pkg.functions.append(FunctionSpec(pkg_name, name, source, where))
        seen: dict[str, str] = {}
        for pkg in packages.values():
            for fn in pkg.functions:
                for trigger in fn.triggers:
                    if trigger.name in seen:
                        raise self.fail(
                            f"{trigger.where}.name",
                            f"trigger {trigger.name!r} is also declared at {seen[trigger.name]}",
                        )
                    seen[trigger.name] = trigger.where
        routes = read_routes(doc.get("routes"), self.fail)
        return Project(self.root, list(packages.values()), self.warnings, routes)

    def package(
        self, raw: Any, where: str, params: dict[str, Any], env: dict[str, str]
    ) -> PackageSpec:
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a mapping")
        self.keys(raw, _PACKAGE_KEYS, where)
        name = self.name(raw.get("name"), f"{where}.name")
        if "functions" in raw and "actions" in raw:
            raise self.fail(where, "use either functions or actions, not both")
        web = self.web(raw["web"], f"{where}.web") if "web" in raw else True
        pkg = PackageSpec(
            name=name,
            where=where,
            shared=self.boolean(raw.get("shared", False), f"{where}.shared"),
            parameters={**params, **self.mapping(raw.get("parameters"), f"{where}.parameters")},
            environment={**env, **self.environment(raw.get("environment"), f"{where}.environment")},
            annotations=self.mapping(raw.get("annotations"), f"{where}.annotations"),
        )
        key = "functions" if "functions" in raw else "actions"
        raw_functions = raw.get(key) or []
        if not isinstance(raw_functions, list):
            raise self.fail(f"{where}.{key}", "must be a list")
        for j, raw_fn in enumerate(raw_functions):
            fn = self.function(raw_fn, f"{where}.{key}[{j}]", name, web)
            if any(other.name == fn.name for other in pkg.functions):
                raise self.fail(f"{where}.{key}[{j}].name", f"function {fn.name!r} is listed twice")
            pkg.functions.append(fn)
        return pkg

    def function(self, raw: Any, where: str, package: str, web_default: Web) -> FunctionSpec:
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a mapping")
        self.keys(raw, _FUNCTION_KEYS, where)
        name = self.name(raw.get("name"), f"{where}.name")
        source = self.on_disk.get(package, {}).get(name)
        if source is None:
            raise self.fail(
                where,
                f"no code for {package}/{name}: expected packages/{package}/{name}.<ext> "
                f"or the folder packages/{package}/{name}/",
            )
        for key in ("remoteBuild", "localBuild"):
            if key in raw:
                self.warnings.append(f"{PROJECT_FILE}: {where}.{key} is not supported yet; ignored")
        annotations = self.mapping(raw.get("annotations"), f"{where}.annotations")
        for key in RESERVED_ANNOTATIONS:
            if key in annotations:
                raise self.fail(
                    f"{where}.annotations.{key}", "is set by web/webSecure; use those instead"
                )
        web_secure: bool | str = False
        if "webSecure" in raw:
            value = raw["webSecure"]
            if not isinstance(value, bool | str) or value == "":
                raise self.fail(f"{where}.webSecure", "must be false, true or a secret string")
            web_secure = value
        binary = raw.get("binary")
        return FunctionSpec(
            package=package,
            name=name,
            source=source,
            where=where,
            runtime=self.optional_string(raw.get("runtime"), f"{where}.runtime"),
            main=self.optional_string(raw.get("main"), f"{where}.main"),
            binary=None if binary is None else self.boolean(binary, f"{where}.binary"),
            web=self.web(raw["web"], f"{where}.web") if "web" in raw else web_default,
            web_secure=web_secure,
            annotations=annotations,
            parameters=self.mapping(raw.get("parameters"), f"{where}.parameters"),
            environment=self.environment(raw.get("environment"), f"{where}.environment"),
            limits=self.limits(raw.get("limits"), f"{where}.limits"),
            invoke_config=self.invoke_config(raw.get("invokeConfig"), f"{where}.invokeConfig"),
            triggers=read_triggers(
                raw.get("triggers"),
                f"{where}.triggers",
                name if package == DEFAULT_PACKAGE else f"{package}/{name}",
                self.fail,
            ),
        )

    # -- typed field readers -------------------------------------------------------------

    def keys(self, raw: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in raw:
            path = f"{where}.{key}" if where else str(key)
            if key in _UNSUPPORTED:
                raise self.fail(path, "is not supported by Wisp yet")
            if key not in allowed:
                raise self.fail(path, f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "is required and must be a string")
        if not _NAME.fullmatch(value) or len(value) > 256:
            raise self.fail(where, f"{value!r} is not a valid name (letters, digits, _ @ . -)")
        return value

    def optional_string(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(where, "must be a non-empty string")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, "must be true or false")
        return value

    def web(self, value: Any, where: str) -> Web:
        if isinstance(value, bool) or value == "raw":
            return value  # type: ignore[no-any-return]
        raise self.fail(where, "must be true, false or 'raw'")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(f"{where}.{key}", "keys must be strings")
        return dict(value)

    def environment(self, value: Any, where: str) -> dict[str, str]:
        env = self.mapping(value, where)
        for key, item in env.items():
            if not isinstance(item, str):
                raise self.fail(f"{where}.{key}", "must be a string (quote it in YAML)")
        return env

    def invoke_config(self, value: Any, where: str) -> dict[str, Any] | None:
        if value is None:
            return None
        from wisp.errors import BadRequest
        from wisp.invoker.retries import parse_invoke_config

        try:
            return parse_invoke_config(self.mapping(value, where)).to_json()
        except BadRequest as exc:
            # The message starts with the field's own path: put it under the function's.
            raise self.fail(where, exc.message.removeprefix("invokeConfig.")) from exc

    def limits(self, value: Any, where: str) -> dict[str, int]:
        raw = self.mapping(value, where)
        limits: dict[str, int] = {}
        for key, item in raw.items():
            if key not in LIMIT_KEYS:
                raise self.fail(
                    f"{where}.{key}", f"unknown limit; expected {', '.join(LIMIT_KEYS)}"
                )
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.fail(f"{where}.{key}", "must be an integer")
            if item < 0 or (item == 0 and key != "logs"):
                raise self.fail(f"{where}.{key}", "must be positive")
            limits[key] = item
        return limits
