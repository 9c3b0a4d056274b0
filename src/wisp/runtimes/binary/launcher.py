"""Wisp's binary-runtime adapter: runs any executable that speaks the line protocol.

A confined stem cell execs ``python3 -I -S -c <this file>`` with an empty
environment. It speaks Wisp's framed protocol on fd 3; at ``init`` it starts the
bundle's ``exec`` file with the function's environment, then for each ``run``
writes one JSON line to the executable's stdin and reads one JSON line back from
the executable's fd 3 (see docs/runtimes.md). The executable's stdout and stderr
are the instance's logs; this adapter writes the end-of-activation markers.
Standard library only.
"""

import json
import os
import socket
import struct
import subprocess

HEADER = struct.Struct(">I")
MARKER = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"


def read_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send(sock, message):
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(body)) + body)


def markers():
    for fd in (1, 2):
        try:
            os.write(fd, MARKER)
        except OSError:
            pass


class Adapter:
    def __init__(self, sock):
        self.sock = sock
        self.child = None
        self.replies = None

    def init(self, message):
        bundle = message.get("bundle") or ""
        program = os.path.join(bundle, "exec")
        if not bundle or not os.path.isfile(program):
            error = "the code must be a zip with an executable file named exec"
            return {"ok": False, "error": error}
        read_end, write_end = os.pipe()
        env = {str(k): str(v) for k, v in (message.get("env") or {}).items()}

        def replies_on_fd3():
            os.dup2(write_end, 3)

        try:
            self.child = subprocess.Popen(
                [program],
                cwd=bundle,
                env=env,
                stdin=subprocess.PIPE,
                preexec_fn=replies_on_fd3,
                close_fds=False,
            )
        except OSError as exc:
            os.close(read_end)
            return {"ok": False, "error": f"cannot start exec: {exc.strerror or exc}"}
        finally:
            os.close(write_end)
        self.replies = os.fdopen(read_end, "rb")
        return {"ok": True}

    def run(self, message):
        meta = message.get("meta") or {}
        request = {"value": message.get("args") or {}}
        for key in ("activation_id", "transaction_id", "namespace", "action_name",
                    "action_version", "api_host", "api_key", "deadline", "attempt",
                    "trace_parent", "trace_state"):
            if key in meta:
                request[key] = meta[key]
        try:
            self.child.stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            self.child.stdin.flush()
            line = self.replies.readline()
        except (OSError, ValueError):
            line = b""
        if not line:
            # The executable is gone: so is this instance (the server sees a crash).
            status = self.child.wait()
            os.write(2, f"wisp: the executable exited with status {status}\n".encode())
            markers()
            os._exit(1)
        try:
            value = json.loads(line)
        except ValueError:
            return {"invalid": "the executable replied with a line that is not JSON"}
        if not isinstance(value, dict):
            return {"invalid": f"the executable replied with {type(value).__name__}, not an object"}
        return {"result": value}

    def serve(self):
        # Our fd 3 is the control socket; the child gets its own fd 3 (its replies).
        sock = self.sock
        while True:
            try:
                (size,) = HEADER.unpack(read_exact(sock, HEADER.size))
                message = json.loads(read_exact(sock, size))
            except EOFError:
                return
            if message.get("op") == "init":
                reply = self.init(message)
            elif self.child is None:
                reply = {"exception": "the instance was not initialised"}
            else:
                reply = self.run(message)
            markers()
            send(sock, reply)


control = socket.socket(fileno=3)
os.set_inheritable(3, False)  # the executable must not inherit the control socket
Adapter(control).serve()
