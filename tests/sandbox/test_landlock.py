"""Landlock: the ruleset an instance gets, and (where the kernel has Landlock) what it
denies to a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wisp.config import Settings
from wisp.runtimes import RuntimeTable, discover, python_runtime
from wisp.runtimes.python import landlock
from wisp.sandbox.layers import landlock_abi, landlock_paths
from wisp.sandbox.local import EGRESS, NO_NETWORK, LocalSandbox

ABI = landlock_abi()
needs_landlock = pytest.mark.skipif(ABI == 0, reason="this kernel has no Landlock")
HERE = Path(landlock.__file__).parent

PYTHON = python_runtime().kind


def test_handled_rights_grow_with_the_abi():
    assert landlock.handled_fs(0) == 0
    assert landlock.handled_fs(1) == 0x1FFF  # execute .. make_sym
    assert landlock.handled_fs(2) == 0x1FFF | landlock.REFER
    assert landlock.handled_fs(3) == 0x7FFF
    assert landlock.handled_fs(4) == 0x7FFF
    assert landlock.handled_fs(5) == 0xFFFF
    assert landlock.scopes(5) == 0
    assert landlock.scopes(6) == landlock.SCOPE_SIGNAL | landlock.SCOPE_ABSTRACT_UNIX_SOCKET


def test_ruleset_attr_has_the_abis_length_and_scopes():
    assert len(landlock.ruleset_attr(1)) == 8
    assert len(landlock.ruleset_attr(4)) == 16
    attr = landlock.ruleset_attr(6)
    assert len(attr) == 24
    assert int.from_bytes(attr[:8], "little") == landlock.handled_fs(6)
    assert int.from_bytes(attr[8:16], "little") == 0  # TCP left to the egress layer
    assert int.from_bytes(attr[16:], "little") == 3


def test_rules_are_trimmed_to_the_abi_and_to_file_rights_on_files():
    paths = {"rx": ["/usr"], "rw": ["/tmp"], "dev": ["/dev/null"], "ro": ["/etc/hosts"]}
    dirs = {"/usr", "/tmp"}
    found = dict(landlock.rules(paths, 1, isdir=dirs.__contains__))
    assert found["/usr"] == landlock.READ_FILE | landlock.READ_DIR | landlock.EXECUTE
    assert found["/tmp"] & landlock.REFER == 0  # ABI 1 does not know it
    assert found["/tmp"] & landlock.MAKE_REG and found["/tmp"] & landlock.REMOVE_FILE
    assert found["/dev/null"] == landlock.READ_FILE | landlock.WRITE_FILE
    assert found["/etc/hosts"] == landlock.READ_FILE  # READ_DIR is refused on a file
    found = dict(landlock.rules(paths, 5, isdir=dirs.__contains__))
    assert found["/tmp"] & landlock.REFER and found["/tmp"] & landlock.TRUNCATE
    assert found["/dev/null"] & landlock.IOCTL_DEV
    for rights in found.values():
        assert rights & ~landlock.handled_fs(5) == 0
    for kind in ("rx", "ro", "rw", "dev"):
        assert not landlock.ACCESS[kind] & (landlock.MAKE_CHAR | landlock.MAKE_BLOCK)
    with pytest.raises(ValueError, match="unknown Landlock access 'wx'"):
        landlock.rules({"wx": ["/tmp"]}, 5)


def test_instance_paths_grant_code_and_scratch_and_little_else():
    paths = landlock_paths(["/opt/py", "/srv/bundles"], private_proc=True, private_root=True)
    assert {"/usr", "/opt/py", "/srv/bundles"} <= set(paths["rx"])
    assert paths["rw"] == ["/tmp", "/var/tmp", "/dev/shm"]
    assert "/proc" in paths["ro"] and "/etc/hosts" in paths["ro"]
    everything = [p for listed in paths.values() for p in listed]
    assert "/etc" not in everything and "/etc/shadow" not in everything
    assert not any(p.startswith(("/root", "/home", "/var/lib")) for p in everything)
    assert paths["ls"] == ["/"]
    shared = landlock_paths([], private_proc=False, private_root=False)
    assert "/proc" not in shared["ro"] and "/proc/self" in shared["ro"]
    assert shared["ls"] == []


def test_fork_spec_carries_the_grants(tmp_path):
    settings = Settings(data_dir=tmp_path, sandbox_paths=("/opt/extra",))
    code_root = tmp_path / "bundles"
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)), code_roots=[code_root])
    sandbox.landlock = 6
    spec = sandbox.fork_spec(PYTHON, EGRESS, None, None)
    granted = spec["landlock"]["rx"]
    assert str(code_root.resolve()) in granted and "/opt/extra" in granted
    assert str(Path(sys.base_prefix).resolve()) in granted
    assert str(HERE.resolve()) in granted  # the launcher's folder
    sandbox.landlock = 0
    assert "landlock" not in sandbox.fork_spec(PYTHON, NO_NETWORK, None, None)


# A process that restricts itself to ``paths`` and then tries things.
PROBE = """
import ctypes, json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import landlock
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as confine() sets it
paths = json.loads(sys.argv[2])
out = {"abi": landlock.restrict(paths)}
def attempt(name, action):
    try:
        action()
        out[name] = 0
    except OSError as exc:
        out[name] = exc.errno
scratch, outside, code = paths["rw"][0], sys.argv[3], paths["rx"][-1]
attempt("write_scratch", lambda: open(os.path.join(scratch, "f"), "w").close())
attempt("write_outside", lambda: open(os.path.join(outside, "f"), "w").close())
attempt("read_outside", lambda: open(os.path.join(outside, "secret")).read())
attempt("list_outside", lambda: os.listdir(outside))
attempt("read_code", lambda: open(os.path.join(code, "code.txt")).read())
attempt("write_code", lambda: open(os.path.join(code, "code.txt"), "a").close())
attempt("exec_code", lambda: subprocess.run([os.path.join(code, "tool")], check=True))
attempt("exec_outside", lambda: subprocess.run([os.path.join(outside, "tool")], check=True))
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
attempt("read_etc", lambda: open(sys.argv[4]).read())
print(json.dumps(out))
"""


@needs_landlock
def test_a_restricted_process_reaches_only_its_grants(tmp_path):
    scratch, outside, code = tmp_path / "scratch", tmp_path / "outside", tmp_path / "code"
    for d in (scratch, outside, code):
        d.mkdir()
        os.chmod(d, 0o777)  # only Landlock stands in the way
    (outside / "secret").write_text("s")
    (code / "code.txt").write_text("c")
    for d in (code, outside):
        (d / "tool").write_text("#!/bin/sh\nexit 0\n")
        os.chmod(d / "tool", 0o755)
    paths = {
        "rx": ["/usr", "/bin", "/lib", "/lib64", sys.base_prefix, str(code)],
        "ro": [],
        "rw": [str(scratch)],
        "dev": ["/dev/null"],
    }
    # A world-readable system file no grant covers.
    etc = next(
        p
        for p in ("/etc/fstab", "/etc/debian_version", "/etc/issue", "/etc/hostname")
        if os.path.isfile(p) and not os.path.islink(p)
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(HERE), json.dumps(paths), str(outside), etc],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["abi"] == ABI
    assert out["write_scratch"] == 0 and (scratch / "f").exists()
    assert out["read_code"] == 0 and out["exec_code"] == 0
    for denied in ("write_outside", "read_outside", "list_outside", "exec_outside"):
        assert out[denied] == 13, (denied, out)  # EACCES whatever the modes say
    assert out["write_code"] == 13 and out["read_etc"] == 13
    assert not (outside / "f").exists()
    if ABI >= 6:
        assert out["signal_parent"] == 1  # EPERM: outside the instance's domain


def test_restrict_reports_no_landlock_as_zero():
    assert landlock.restrict({"rw": ["/tmp"]}, abi=0) == 0
