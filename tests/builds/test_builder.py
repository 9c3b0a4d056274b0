"""Server-side builds: dependency installs (cached), build scripts, failures, size limit."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtimes.conftest import make_zip
from wisp.builds import Builder, BuildFailed
from wisp.builds import sandbox as sandbox_module
from wisp.builds.cache import BuildCache
from wisp.builds.sandbox import BuildSandbox, Mount, SetupFailed
from wisp.config import Settings
from wisp.errors import PayloadTooLarge
from wisp.models import Exec
from wisp.runtimes import Runtime, RuntimeTable, discover
from wisp.sandbox import cgroups
from wisp.sandbox.bundles import BundleCache
from wisp.sandbox.local import LocalSandbox

# A small pure-Python package from PyPI, and a small npm package without dependencies.
PYPI_PACKAGE = "six==1.16.0"
NPM_PACKAGE = '{"name": "fn", "main": "index.js", "dependencies": {"is-number": "7.0.0"}}'


def runtime(family: str) -> Runtime:
    return RuntimeTable(discover()).resolve(f"{family}:default")


def zipped(kind: str, files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> Exec:
    code = base64.b64encode(make_zip(files, executable)).decode()
    digest = hashlib.sha256(f"{kind}\0main\0{code}".encode()).hexdigest()
    return Exec(kind=kind, code=code, binary=True, digest=digest)


@pytest.fixture
def build_root(tmp_path: Path) -> Iterator[Path]:
    """As root, builds run as an unprivileged uid (as in the server), which must reach
    the build folders: pytest's own temporary folders are private."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="wisp-build-test-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_builder(root: Path, settings: Settings | None = None) -> Builder:
    settings = settings or Settings(data_dir=root)
    bundles = BundleCache(root / "bundles", 64 * 1024 * 1024)
    bundles.prepare()
    sandbox = LocalSandbox(settings, RuntimeTable(discover()), code_roots=[bundles.root])
    jail = BuildSandbox(sandbox, settings)
    return Builder(bundles, BuildCache(root / "cache"), 8 * 1024 * 1024, jail, timeout=300)


@pytest.fixture
def builder(build_root: Path) -> Builder:
    return make_builder(build_root)


def test_code_without_build_inputs_needs_no_build(builder: Builder) -> None:
    python = runtime("python")
    plain = Exec(kind=python.kind, code="def main(a): return a", digest="d")
    assert builder.build(plain, python) is None
    assert builder.build(zipped(python.kind, {"__main__.py": "x = 1"}), python) is None


def test_requirements_are_installed_once_and_cached(builder: Builder) -> None:
    python = runtime("python")
    first = zipped(python.kind, {"__main__.py": "import six", "requirements.txt": PYPI_PACKAGE})
    result = builder.build(first, python)
    assert result is not None and not result.cached
    site = (
        builder.path(result.name)
        / "virtualenv"
        / "lib"
        / f"python{python.kind[7:]}"
        / "site-packages"
    )
    assert (site / "six.py").is_file()
    assert "pip install" in result.log and "Successfully installed six" in result.log
    # The same code again: the build itself is reused.
    assert builder.build(first, python).cached  # type: ignore[union-attr]
    # New code, same requirements: no pip run (no network), the cached install is copied.
    second = zipped(
        python.kind, {"__main__.py": "import six  # v2", "requirements.txt": PYPI_PACKAGE}
    )
    again = builder.build(second, python)
    assert again is not None and not again.cached
    assert "pip install" not in again.log and "using the cached install" in again.log
    assert (
        builder.path(again.name) / site.relative_to(builder.path(result.name)) / "six.py"
    ).is_file()
    # Copied with their modification times: the .pyc pip compiled still match.
    first_six, again_six = (
        site / "six.py",
        builder.path(again.name) / site.relative_to(builder.path(result.name)) / "six.py",
    )
    assert first_six.stat().st_mtime_ns == again_six.stat().st_mtime_ns


def test_package_json_dependencies_are_installed(builder: Builder) -> None:
    node = runtime("nodejs")
    code = zipped(node.kind, {"package.json": NPM_PACKAGE, "index.js": "exports.main = () => ({})"})
    result = builder.build(code, node)
    assert result is not None
    assert (builder.path(result.name) / "node_modules" / "is-number" / "package.json").is_file()
    shipped = zipped(
        node.kind, {"package.json": NPM_PACKAGE, "node_modules/is-number/index.js": ""}
    )
    assert builder.build(shipped, node) is None  # dependencies already bundled


def test_build_script_runs_in_the_bundle(builder: Builder) -> None:
    python = runtime("python")
    script = "echo building as $(id -u); echo 'VALUE = 42' > generated.py\n"
    result = builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert result is not None and "building" in result.log
    if os.geteuid() == 0:
        uid = int(result.log.split("building as ")[1].split()[0])
        settings = Settings()
        assert settings.uid_base <= uid < settings.uid_base + 16 * settings.uid_count  # never root
    built = builder.path(result.name)
    assert (built / "generated.py").read_text().strip() == "VALUE = 42"
    # The script's python3 and pip are the function's runtime's.
    script = "python3 -c 'import sys; print(\"prefix\", sys.prefix)'\npip --version\n"
    again = builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert again is not None
    prefix = Path(python.interpreter).resolve().parent.parent
    assert (
        f"prefix {prefix}" in again.log
        or f"prefix {Path(python.interpreter).parent.parent}" in again.log
    ), again.log
    assert "pip " in again.log and " from " in again.log, again.log
    assert oct((built / "generated.py").stat().st_mode & 0o777) == "0o644"


def test_failing_build_raises_with_its_log_and_leaves_nothing(builder: Builder) -> None:
    python = runtime("python")
    code = zipped(
        python.kind, {"__main__.py": "", "build.sh": "echo step one; echo broken >&2; exit 3\n"}
    )
    with pytest.raises(BuildFailed) as caught:
        builder.build(code, python)
    assert "exited with status 3" in caught.value.message
    assert "step one" in caught.value.message and "broken" in caught.value.message
    assert not [p for p in builder.root.iterdir() if p.name.startswith("build-")]


def test_oversize_build_is_refused_with_its_size(builder: Builder) -> None:
    python = runtime("python")
    script = "head -c 9000000 /dev/zero > big.bin\n"
    with pytest.raises(PayloadTooLarge) as caught:
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert "the built bundle is 9000" in caught.value.message
    assert "over the code limit of 8388608 bytes (8 MB)" in caught.value.message


def test_bad_requirement_fails_the_build(builder: Builder) -> None:
    python = runtime("python")
    code = zipped(
        python.kind, {"__main__.py": "", "requirements.txt": "no_such_package_wisp_xyz==0.0.0\n"}
    )
    with pytest.raises(BuildFailed) as caught:
        builder.build(code, python)
    assert "pip install" in caught.value.message


def test_a_poisoned_cache_entry_is_detected_and_not_used(builder: Builder) -> None:
    python = runtime("python")
    files = {"__main__.py": "import six", "requirements.txt": PYPI_PACKAGE}
    first = builder.build(zipped(python.kind, files), python)
    assert first is not None
    site = Path("virtualenv") / "lib" / f"python{python.kind[7:]}" / "site-packages"
    genuine = (builder.path(first.name) / site / "six.py").read_bytes()
    # Someone writes into the cache directly (builds cannot: see test_hostile_builds).
    (entry,) = [p for p in (builder.cache.objects).iterdir() if not p.name.startswith(".")]
    (entry / "six.py").write_text("raise SystemExit('poisoned')\n")
    again = builder.build(zipped(python.kind, {**files, "__main__.py": "import six  # 2"}), python)
    assert again is not None
    assert "failed its check" in again.log and "using the cached install" not in again.log
    assert (builder.path(again.name) / site / "six.py").read_bytes() == genuine
    assert not entry.exists() or (entry / "six.py").read_bytes() == genuine
    # The fresh install is cached again, checked, and used.
    third = builder.build(zipped(python.kind, {**files, "__main__.py": "import six  # 3"}), python)
    assert third is not None and "using the cached install" in third.log


def test_a_build_that_overruns_is_killed_with_everything_it_started(build_root: Path) -> None:
    builder = make_builder(build_root)
    builder.timeout = 2
    python = runtime("python")
    script = "setsid nohup sleep 876.54321 >/dev/null 2>&1 &\necho started\nsleep 600\n"
    started = time.monotonic()
    with pytest.raises(BuildFailed) as caught:
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert time.monotonic() - started < 30
    assert "did not finish within 2 s" in caught.value.message
    assert "started" in caught.value.message
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _runs(p, "876.54321")]
    # Closing its output does not let a command outlive the limit either.
    quiet = "exec >/dev/null 2>&1\nsleep 600\n"
    started = time.monotonic()
    with pytest.raises(BuildFailed, match="did not finish within 2 s"):
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": quiet}), python)
    assert time.monotonic() - started < 30


def _runs(proc: Path, marker: str) -> bool:
    try:
        return marker in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0 or not cgroups.detect(), reason="cgroups need root")
def test_a_build_over_its_memory_is_stopped(build_root: Path) -> None:
    builder = make_builder(build_root, Settings(data_dir=build_root, build_memory_mb=128))
    python = runtime("python")
    script = "python3 -c 'b = bytearray(512 * 1024 * 1024); print(\"got\", len(b))'\n"
    with pytest.raises(BuildFailed) as caught:
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert "got 536870912" not in caught.value.message, caught.value.message
    assert "exited with status 137" in caught.value.message, caught.value.message  # OOM kill


def test_only_allowed_registries_are_reachable(build_root: Path) -> None:
    settings = Settings(data_dir=build_root, build_registries="pypi.org,localhost")
    builder = make_builder(build_root, settings)
    python = runtime("python")
    script = (
        "curl -sS -m 10 https://127.0.0.1:5432/ 2>&1 | head -c 300; echo\n"
        "curl -sS -m 10 https://localhost/ 2>&1 | head -c 300; echo\n"
        "curl -sS -m 10 -o /dev/null -w 'pypi %{http_code}\\n' https://pypi.org/simple/six/\n"
        "curl -sS -m 10 --noproxy '*' https://pypi.org/ 2>&1 | head -c 300; echo\n"
    )
    result = builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert result is not None
    assert "pypi 200" in result.log, result.log
    assert "the build proxy refused: 127.0.0.1:5432, localhost:443" in result.log, result.log
    assert result.log.count("403") >= 2
    assert "Could not resolve host" in result.log  # no DNS, no route, without the proxy


def test_below_user_namespaces_builds_are_refused(build_root: Path) -> None:
    settings = Settings(data_dir=build_root)
    sandbox = LocalSandbox(settings, RuntimeTable(discover()))
    sandbox.as_root, sandbox.userns, sandbox.userns_refused = False, False, "test: none"
    jail = BuildSandbox(sandbox, settings)
    with pytest.raises(
        SetupFailed, match=r"without root and without user namespaces \(test: none\)"
    ) as refused:
        jail.run(["/bin/true"], uid=None, cwd="/", env={}, mounts=[], network=False, timeout=5)
    # A setting of the server, not a platform failure: the deploy gets a 501, not a 500.
    assert (refused.value.status, refused.value.code) == (501, "builds_unavailable")


def test_a_sandbox_that_cannot_be_made_runs_nothing(build_root: Path) -> None:
    settings = Settings(data_dir=build_root)
    jail = BuildSandbox(LocalSandbox(settings, RuntimeTable(discover())), settings)
    out = build_root / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    missing = Mount(build_root / "no-such-folder", "/build/src", True)
    with pytest.raises(SetupFailed, match="could not be set up"):
        jail.run(
            ["/bin/sh", "-c", "touch /build/out/ran"],
            uid=None,
            cwd="/",
            env={},
            mounts=[missing, Mount(out, "/build/out", True)],
            network=False,
            timeout=10,
        )
    assert not (out / "ran").exists()


def test_go_builds_start_from_a_checked_seed_cache(builder: Builder) -> None:
    go = runtime("go")
    source = "package main\n\nfunc Main(args map[string]interface{}) map[string]interface{} {\n\treturn args // %d\n}\n"

    def build(n: int) -> str:
        code = source % n
        exec_ = Exec(kind=go.kind, code=code, digest=hashlib.sha256(code.encode()).hexdigest())
        result = builder.build(exec_, go)
        assert result is not None and (builder.path(result.name) / "exec").is_file()
        return result.log

    assert "go build -trimpath" in build(1)
    (ref,) = (builder.cache.refs / "go").iterdir()
    seed = builder.cache.objects / ref.read_text()
    planted = next(p for p in seed.rglob("*") if p.is_file() and p.stat().st_size > 0)
    planted.write_bytes(b"planted")
    log = build(2)
    assert "failed its check" in log and "seeding afresh" in log, log
    assert not planted.exists() or planted.read_bytes() != b"planted"


def test_a_build_that_fills_the_disk_is_stopped(build_root: Path) -> None:
    builder = make_builder(build_root, Settings(data_dir=build_root, build_disk_mb=16))
    python = runtime("python")
    script = "for i in $(seq 1 200); do head -c 4000000 /dev/zero > fill$i; sleep 0.05; done\necho finished\n"
    with pytest.raises(BuildFailed) as caught:
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert "was stopped: it wrote more than 16 MB" in caught.value.message
    assert "finished" not in caught.value.message
    assert not [p for p in builder.root.iterdir() if p.name.startswith((".build-", "build-"))]


def test_a_build_that_makes_too_many_files_is_stopped(
    build_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_module, "FILES_MAX", 500)
    builder = make_builder(build_root)
    python = runtime("python")
    script = "mkdir many; cd many; for i in $(seq 1 100000); do : > f$i; done\necho finished\n"
    with pytest.raises(BuildFailed) as caught:
        builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert "was stopped: it made more than 500 files" in caught.value.message


@pytest.mark.skipif(os.geteuid() != 0 or not cgroups.detect(), reason="cgroups need root")
def test_build_cgroups_are_removed_and_a_dead_servers_are_swept(builder: Builder) -> None:
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not Path(f"/proc/{pid}").exists())
    roots = (
        [cgroups.ROOT / "wisp"]
        if cgroups.detect() == 2
        else [cgroups.ROOT / c / "wisp" for c in cgroups.V1_CONTROLLERS]
    )
    left = [root / f"build-{dead}-0" for root in roots]
    for group in left:
        group.mkdir(parents=True, exist_ok=True)
    python = runtime("python")
    script = "cat /proc/self/cgroup | head -3\n"
    result = builder.build(zipped(python.kind, {"__main__.py": "", "build.sh": script}), python)
    assert result is not None
    lines = [line for line in result.log.splitlines() if line[:1].isdigit()]
    assert lines and all(line.endswith(":/") for line in lines), result.log  # its own root
    assert not any(group.exists() for group in left)
    assert not [g for root in roots for g in root.glob(f"build-{os.getpid()}-*")]
