"""The first process of a build sandbox: ``python -I -S build_launcher.py FD``.

Standard library only, and the instances' own confinement code beside it: the
server starts this by exec with an empty environment, sends the spec over the
socket ``FD`` and reads the build's output from stdout. This process makes a pid
namespace (entering a user namespace first when the server is not root); the child
is pid 1 there, confines itself exactly as an instance does (cgroup, namespaces,
private read-only root with the build's folders, uid, rlimits, no_new_privs,
Landlock, seccomp), reports "ready" (with a listening socket on its own loopback
when the build may reach the registries: the server proxies it), then runs the
build's command and reaps whatever it starts. When the command ends, pid 1 exits
and the kernel kills everything left in the namespace: a daemon a build script
started does not outlive it. Any failure before the command runs is reported on
the socket and nothing runs: confinement fails closed.
"""

import json
import os
import signal
import socket
import struct
import sys

# -I keeps the script's folder off sys.path: borrow it to import the module beside us.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confinement import (
    CLONE_NEWPID,
    _libc,
    check,
    clone_into_pid_namespace,
    confine,
    enter_user_namespace,
)

del sys.path[0]

PR_SET_PDEATHSIG = 1
PROXY_PORT = 3128  # on the sandbox's own loopback: nothing else listens there
HEADER = struct.Struct(">I")


def receive_spec(control):
    data = b""
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack_from(data)[0]:
        chunk = control.recv(1 << 16)
        if not chunk:
            os._exit(0)  # the server went away before sending anything
        data += chunk
    (size,) = HEADER.unpack_from(data)
    return json.loads(data[HEADER.size : HEADER.size + size])


def fail(control, what, exc):
    try:
        control.sendall(b"E" + f"{what}: {exc}".encode(errors="replace"))
    finally:
        os._exit(70)


def main(fd):
    control = socket.socket(fileno=fd)
    spec = receive_spec(control)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    spec["zygote"] = os.getpid()
    try:
        if spec.get("userns"):
            enter_user_namespace()
            pid = clone_into_pid_namespace()
        else:
            check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
            pid = os.fork()
    except OSError as exc:
        fail(control, "pid namespace", exc)
    if pid == 0:
        be_init(control, spec)
    control.close()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def be_init(control, spec):
    """pid 1 of the build's namespace."""
    try:
        confine(spec)
        listener = None
        if spec.get("proxy"):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", PROXY_PORT))
            listener.listen(64)
    except BaseException as exc:
        fail(control, "confinement", exc)
    if listener is not None:
        socket.send_fds(control, [b"R"], [listener.fileno()])
        listener.close()
    else:
        control.sendall(b"R")
    control.close()
    argv, env = spec["argv"], spec["env"]
    child = os.fork()
    if child == 0:
        for signum in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execve(argv[0], argv, env)
        except OSError as exc:
            os.write(2, f"wisp: cannot run {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)
    # Reap every orphan the command leaves (pid 1's duty) until the command itself ends.
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
        if done == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main(int(sys.argv[1]))
