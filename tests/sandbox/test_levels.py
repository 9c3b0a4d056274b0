"""Isolation levels: what a host reaches is named, and --isolation refuses below it."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.runtimes import RuntimeTable, discover, python_runtime
from wisp.sandbox import local
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


def test_an_implicit_minimal_level_refuses_and_names_the_flag(tmp_path):
    sandbox = unprivileged(tmp_path, userns=False, isolation="")
    with pytest.raises(PlatformError) as refused:
        sandbox.prepare_isolation()
    message = str(refused.value)
    assert "reaches only isolation 'minimal'" in message and "\n" not in message
    assert "(unshare(CLONE_NEWUSER): Operation not permitted)" in message
    assert "single-tenant only: pass --isolation minimal" in message
    unprivileged(tmp_path, userns=False, isolation="minimal").prepare_isolation()
    unprivileged(tmp_path, userns=True, isolation="").prepare_isolation()  # userns: no flag


def test_without_a_filter_egress_is_loopback_only_unless_asked_for(tmp_path):
    sandbox = unprivileged(tmp_path, userns=True)
    assert sandbox.egress_mode == "none" and "egress-none(no root)" in sandbox.isolation
    assert "net" in sandbox.fork_spec(PYTHON, EGRESS, None, None)["namespaces"]
    settings = Settings(data_dir=tmp_path, cgroups="off", network="egress-unfiltered")
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
    sandbox.as_root, sandbox.userns = False, True
    assert sandbox.egress_mode == "unfiltered"
    assert "net" not in sandbox.fork_spec(PYTHON, EGRESS, None, None)["namespaces"]
    assert "net" in sandbox.fork_spec(PYTHON, NO_NETWORK, None, None)["namespaces"]


def test_at_minimal_seccomp_keeps_offline_instances_to_unix_sockets(tmp_path):
    sandbox = unprivileged(tmp_path, userns=False)
    sandbox.seccomp = True
    for network in (EGRESS, NO_NETWORK):
        spec = sandbox.fork_spec(PYTHON, network, None, None)
        assert spec["sockets"] == "unix" and "namespaces" not in spec
        assert spec["rlimits"]["RLIMIT_NPROC"] == sandbox.nproc_shared
    sandbox.seccomp = False  # nothing could keep them off the network: refuse to start
    with pytest.raises(PlatformError, match="WISP_NETWORK=egress-unfiltered"):
        sandbox.prepare_isolation()


def test_rlimit_nproc_is_set_at_every_level(tmp_path):
    root = LocalSandbox(Settings(data_dir=tmp_path, cgroups="off"), RuntimeTable(discover(None)))
    root.as_root = True
    assert root.fork_spec(PYTHON, NO_NETWORK, None, 200_000)["rlimits"]["RLIMIT_NPROC"] == 256
    userns = unprivileged(tmp_path, userns=True)
    assert userns.fork_spec(PYTHON, EGRESS, None, None)["rlimits"]["RLIMIT_NPROC"] == 1024
    minimal = unprivileged(tmp_path, userns=False)
    assert minimal.fork_spec(PYTHON, EGRESS, None, None)["rlimits"]["RLIMIT_NPROC"] > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="starts processes as another uid")
def test_the_shared_nproc_limit_counts_the_uids_tasks(monkeypatch):
    uid = 64_321  # no one else's: its tasks are these three
    sleepers = [
        subprocess.Popen(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "30"]
        )
        for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 10
        while local.shared_nproc_limit(uid) < 3 + local.RLIMIT_NPROC_SHARED:
            assert time.monotonic() < deadline, "the sleepers did not start as that uid"
            time.sleep(0.05)
        assert local.shared_nproc_limit(uid) == 3 + local.RLIMIT_NPROC_SHARED
        # Kept NPROC_MARGIN below the server's own limit, which it may not exceed.
        monkeypatch.setattr(local.resource, "getrlimit", lambda _: (500, 99_999))
        assert local.shared_nproc_limit(uid) == 500 - local.NPROC_MARGIN
        monkeypatch.setattr(local.resource, "getrlimit", lambda _: (-1, 800))  # soft unlimited
        assert local.shared_nproc_limit(uid) == 800 - local.NPROC_MARGIN
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
