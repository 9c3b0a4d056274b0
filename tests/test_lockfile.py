"""requirements.lock must agree with pyproject.toml (scripts/lock makes it, scripts/test uses it)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lockfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockfile", ROOT / "scripts" / "lockfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lockfile"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    pyproject, lock = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    shutil.copy(ROOT / "pyproject.toml", pyproject)
    shutil.copy(ROOT / "requirements.lock", lock)
    return pyproject, lock


def test_the_lock_agrees_with_pyproject(lockfile: ModuleType) -> None:
    assert lockfile.problems() == []


def test_the_lock_pins_every_package_exactly(lockfile: ModuleType) -> None:
    pins = lockfile.pins()
    assert {"click", "starlette", "pytest", "ruff", "opentelemetry-sdk"} <= set(pins)
    text = (ROOT / "requirements.lock").read_text()
    entries = [line for line in text.splitlines() if line[:1].isalnum()]
    assert len(entries) == len(pins)  # no `name>=x` or unpinned line slipped in
    assert text.count("--hash=sha256:") >= len(pins)  # pip installs it with --require-hashes


def test_a_new_dependency_is_reported(lockfile: ModuleType, copies: tuple[Path, Path]) -> None:
    pyproject, lock = copies
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"jinja2>=3.1",', '"jinja2>=3.1",\n    "left-pad>=1",'))
    found = lockfile.problems(pyproject, lock)
    assert any("dependencies changed" in p and "scripts/lock" in p for p in found), found
    assert any("left-pad>=1 is in pyproject.toml but not in" in p for p in found), found


def test_a_bound_the_pin_breaks_is_named(lockfile: ModuleType, copies: tuple[Path, Path]) -> None:
    pyproject, lock = copies
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1"', '"click>=99"'))
    found = lockfile.problems(pyproject, lock)
    assert any(p.startswith("requirements.lock pins click==") for p in found), found


def test_a_removed_dependency_is_reported(lockfile: ModuleType, copies: tuple[Path, Path]) -> None:
    pyproject, lock = copies
    pyproject.write_text(pyproject.read_text().replace('    "types-PyYAML",\n', ""))
    assert lockfile.problems(pyproject, lock) != []
    lockfile.stamp(pyproject, lock)  # what scripts/lock does after resolving again
    assert lockfile.problems(pyproject, lock) == []
