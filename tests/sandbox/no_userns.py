"""Run a command (as root) in a user namespace of its own that may create no others.

``python no_userns.py CMD ARGS...``: the namespace maps every uid and gid to itself,
so root stays root and ``setpriv`` to ``nobody`` works inside it, but its
``user.max_user_namespaces`` is 0: an unprivileged server started in it reaches only
the ``minimal`` level, as on a host that refuses user namespaces, without changing
the host's setting for anyone else.
"""

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
IDENTITY = "0 0 4294967295\n"


def main() -> None:
    ready, go = os.pipe()
    me = os.getpid()
    helper = os.fork()
    if helper == 0:  # still in the host's namespace: it may write our maps
        os.close(go)
        os.read(ready, 1)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{me}/{name}", "w") as mapping:
                mapping.write(IDENTITY)
        os._exit(0)
    os.close(ready)
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    os.write(go, b"x")
    os.waitpid(helper, 0)
    with open("/proc/sys/user/max_user_namespaces", "w") as limit:
        limit.write("0")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
