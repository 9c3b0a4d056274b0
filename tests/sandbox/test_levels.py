"""Isolation levels: what a host reaches is named, and --isolation refuses below it."""

from __future__ import annotations

import pytest

from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.runtimes import RuntimeTable, discover, python_runtime
from wisp.sandbox.local import EGRESS, LEVELS, NO_NETWORK, LocalSandbox

PYTHON = python_runtime().kind


def unprivileged(tmp_path, userns: bool, isolation: str = "minimal") -> LocalSandbox:
    settings = Settings(data_dir=tmp_path, isolation=isolation, cgroups="off")
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
    sandbox.as_root, sandbox.userns = False, userns
    sandbox.userns_refused = "" if userns else "unshare(CLONE_NEWUSER): Operation not permitted"
    sandbox.isolation = sandbox._describe()
    return sandbox


def test_levels_are_ordered():
    assert LEVELS == ("minimal", "userns", "standard", "strict")


def test_user_namespaces_give_the_userns_level_and_its_spec(tmp_path):
    sandbox = unprivileged(tmp_path, userns=True)
    assert sandbox.level == "userns"
    assert sandbox.isolation.startswith("session+user-namespaces(pid,mount,ipc,uts,cgroup)")
    spec = sandbox.fork_spec(PYTHON, NO_NETWORK, None, None)
    assert spec["userns"] is True and "uid" not in spec
    assert spec["namespaces"] == ["pid", "mount", "ipc", "uts", "cgroup", "net"]
    assert spec["rlimits"]["RLIMIT_NPROC"] == 1024


def test_without_user_namespaces_the_level_is_minimal_and_says_why(tmp_path):
    sandbox = unprivileged(tmp_path, userns=False)
    assert sandbox.level == "minimal"
    assert "no-namespaces(unshare(CLONE_NEWUSER): Operation not permitted)" in sandbox.isolation
    spec = sandbox.fork_spec(PYTHON, EGRESS, None, None)
    assert "namespaces" not in spec and "userns" not in spec


def test_requiring_more_than_the_host_reaches_refuses(tmp_path):
    unprivileged(tmp_path, userns=True, isolation="userns").prepare_isolation()
    with pytest.raises(PlatformError, match=r"isolation 'standard' is required .* 'userns'"):
        unprivileged(tmp_path, userns=True, isolation="standard").prepare_isolation()
    with pytest.raises(PlatformError, match=r"isolation 'userns' is required .* 'minimal'"):
        unprivileged(tmp_path, userns=False, isolation="userns").prepare_isolation()


def test_an_unknown_level_is_named(tmp_path):
    with pytest.raises(PlatformError, match="unknown isolation level 'paranoid'"):
        unprivileged(tmp_path, userns=True, isolation="paranoid").prepare_isolation()
