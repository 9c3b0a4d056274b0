"""Helpers to write small projects into a temporary directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

MakeProject = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """make_project(yml, {"packages/p/f.py": "..."}) → the project directory."""

    def make(yml: str | None = None, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        if yml is not None:
            (root / "project.yml").write_text(textwrap.dedent(yml).lstrip("\n"))
        for rel, content in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return root

    return make
