"""``${VAR}`` substitution in project.yml, done on the text before YAML parsing.

Values come from the process environment first, then from the project's ``.env``
(or the file given with ``--env``), as DigitalOcean's deployer resolves them.
``${secret:NAME}`` is not substituted with a value: it becomes the flow mapping
``{"$secret": "NAME"}``, a reference the server resolves (wisp.secrets), so it must
stand as a whole YAML value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from wisp.deploy.errors import ProjectError

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_PREFIX = "secret:"
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}")


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, ``#`` comments, optional ``export``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _NAME.fullmatch(key):
            raise ProjectError(f"{path.name}: line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def substitute(text: str, sources: list[Mapping[str, str]], label: str) -> str:
    """Replace every ``${VAR}``; the first source holding VAR wins.

    Comment lines are left alone so that a commented-out reference to an unset
    variable is not an error.
    """
    out: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.lstrip().startswith("#"):
            out.append(line)
            continue
        out.append(_substitute_line(line, number, sources, label))
    return "".join(out)


def _substitute_line(line: str, number: int, sources: list[Mapping[str, str]], label: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith(SECRET_PREFIX):
            secret = name[len(SECRET_PREFIX) :]
            if not SECRET_NAME.fullmatch(secret):
                raise ProjectError(
                    f"{label}: line {number}: invalid secret reference {match[0]} (a name of "
                    "letters, digits, '_', '-' or '.')"
                )
            return '{"$secret": "' + secret + '"}'
        if not _NAME.fullmatch(name):
            raise ProjectError(f"{label}: line {number}: invalid variable reference {match[0]}")
        for source in sources:
            if name in source:
                return source[name]
        raise ProjectError(
            f"{label}: line {number}: ${{{name}}} is not set (not in the environment or .env)"
        )

    return _REFERENCE.sub(replace, line)
