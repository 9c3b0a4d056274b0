from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import pytest

from wisp.deploy.build import folder_files, infer_family, read_code, zip_folder
from wisp.deploy.errors import ProjectError


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_zip_is_deterministic(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "fn", {"__main__.py": "import b\n", "b.py": "x = 1\n", "d/c.txt": "c"}
    )
    first = zip_folder(folder)
    # Touch every file and add caches: neither may change the bytes.
    for path in folder.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    write(folder, {"__pycache__/b.cpython-311.pyc": "junk", "d/c.pyc": "junk"})
    assert zip_folder(folder) == first
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["__main__.py", "b.py", "d/c.txt"]


def test_zip_changes_when_content_changes(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn", {"__main__.py": "x = 1\n"})
    before = zip_folder(folder)
    write(folder, {"__main__.py": "x = 2\n"})
    assert zip_folder(folder) != before


def test_include_takes_only_listed_paths(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "fn",
        {
            ".include": "# comment\n__main__.py\nlib/\n*.json\n",
            "__main__.py": "",
            "lib/a.py": "",
            "lib/sub/b.py": "",
            "data.json": "{}",
            "notes.txt": "",
            "tests/test_x.py": "",
        },
    )
    assert folder_files(folder) == ["__main__.py", "data.json", "lib/a.py", "lib/sub/b.py"]


def test_include_of_a_missing_path_is_an_error(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn", {".include": "missing.py\n", "__main__.py": ""})
    with pytest.raises(ProjectError, match=r"'missing\.py' does not exist"):
        folder_files(folder)


def test_include_outside_the_folder_is_an_error(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn", {".include": "../lib/shared.py\n", "__main__.py": ""})
    write(tmp_path, {"lib/shared.py": ""})
    with pytest.raises(ProjectError, match="outside the function folder"):
        folder_files(folder)


def test_ignore_excludes_glob_patterns(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "fn",
        {
            ".ignore": "*.md\ntests\nbuild/*.tmp\n",
            "__main__.py": "",
            "README.md": "",
            "docs/guide.md": "",
            "tests/test_a.py": "",
            "build/x.tmp": "",
            "build/keep.py": "",
            ".hidden/secret": "",
            ".env": "A=1",
        },
    )
    assert folder_files(folder) == [".env", "__main__.py", "build/keep.py"]


def test_include_and_ignore_together(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "fn",
        {".include": "src\n", ".ignore": "*_test.py\n", "src/a.py": "", "src/a_test.py": ""},
    )
    assert folder_files(folder) == ["src/a.py"]


def test_read_code_of_file_folder_and_binary(tmp_path: Path) -> None:
    source = tmp_path / "hello.py"
    source.write_text("def main(a): return a\n")
    assert read_code(source, None) == ("def main(a): return a\n", False)
    code, binary = read_code(source, True)
    assert binary and base64.b64decode(code) == source.read_bytes()
    folder = write(tmp_path / "fn", {"__main__.py": "x = 1\n"})
    code, binary = read_code(folder, None)
    assert binary and base64.b64decode(code) == zip_folder(folder)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn", {".ignore": "*\n", "a.py": ""})
    with pytest.raises(ProjectError, match="no files to deploy"):
        read_code(folder, None)


def test_infer_family(tmp_path: Path) -> None:
    assert infer_family(write(tmp_path, {"f.py": ""}) / "f.py") == "python"
    assert infer_family(write(tmp_path / "a", {"__main__.py": ""})) == "python"
    assert infer_family(write(tmp_path / "b", {"package.json": "{}"})) == "nodejs"
    assert infer_family(write(tmp_path / "c", {"x.txt": ""})) is None
