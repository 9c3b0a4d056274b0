"""Wisp's Python launcher: the zygote and, after a fork, the sandboxed instance.

Runs as ``python -I -S launcher.py`` with an empty environment: standard library
only, nothing from the host leaks in. The zygote talks to the server on fd 3
(length-prefixed JSON, file descriptors passed with SCM_RIGHTS). Each ``fork``
request brings three descriptors: the instance's control socket and the write ends
of its stdout and stderr pipes. The child confines itself (session, cgroups,
rlimits, uid), then serves ``init`` once and ``run`` any number of times.
"""

import asyncio
import ctypes
import fcntl
import gc
import importlib.machinery
import inspect
import io
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import termios
import time
import traceback
import zipfile

# -I keeps the script's folder off sys.path: borrow it to import the module beside us.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confinement import clone_into_pid_namespace, confine, enter_user_namespace

del sys.path[0]

HEADER = struct.Struct(">I")
# Set in a reply's length: no end-of-activation markers follow, as the server had
# already read everything this activation wrote to stdout and stderr.
QUIET = 1 << 31
MARKER = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
PR_SET_PDEATHSIG = 1
CLONE_NEWPID = 0x20000000
_libc = ctypes.CDLL(None, use_errno=True)
del io, zipfile  # imported so user code finds them warm in the zygote


# -- preloaded packages -------------------------------------------------------------


class Preloaded:
    """Finds the preloaded packages (``--preload``) and nothing else of the folder that
    holds them; last on ``sys.meta_path``, so a bundle's own copy on ``sys.path`` wins."""

    def __init__(self, paths):
        self.where = {}  # top-level name -> the folder holding it
        for path in paths:
            self.where[os.path.basename(path).split(".", 1)[0]] = os.path.dirname(path)

    def find_spec(self, name, path=None, target=None):
        folder = self.where.get(name) if path is None else None
        if folder is None:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [folder])

    def importable(self):
        # Not the helpers beside them (charset_normalizer's "81d2…__mypyc" extension).
        return [n for n in self.where if n.isidentifier() and not n.startswith("_")]

    def preload(self):
        """In the zygote: import them once, for every instance to inherit."""
        sys.meta_path.append(self)
        for name in self.importable():
            try:
                __import__(name)
            except Exception as exc:
                os.write(2, f"wisp: cannot preload {name}: {type(exc).__name__}: {exc}\n".encode())

    def shadowed_by(self, folders):
        """Drop every preloaded module when one of ``folders`` has its own copy of one.

        All of them, not just that one: the bundle's version may need its own versions
        of the others too. Imports then resolve as usual: the bundle first, then here.
        """
        names = self.importable()
        if not any(
            os.path.exists(os.path.join(folder, name))
            or os.path.exists(os.path.join(folder, name + ".py"))
            for folder in folders
            for name in names
        ):
            return False
        for module in list(sys.modules):
            if module.partition(".")[0] in self.where:
                del sys.modules[module]
        return True


PRELOADED = Preloaded(())


# -- framing ------------------------------------------------------------------------


def read_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Channel:
    """Messages from the server; one ``recv`` per message when it fits in 64 KiB."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def message(self):
        while len(self.buffer) < HEADER.size:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        (size,) = HEADER.unpack_from(self.buffer)
        end = HEADER.size + size
        if len(self.buffer) < end:
            self.buffer += read_exact(self.sock, end - len(self.buffer))
        body, self.buffer = self.buffer[HEADER.size : end], self.buffer[end:]
        return json.loads(body)


def send_raw(sock, body, flags=0):
    sock.sendall(HEADER.pack(len(body) | flags) + body)


def send_message(sock, message):
    send_raw(sock, json.dumps(message).encode())


# -- the instance (after fork) ------------------------------------------------------


class Context:
    """DigitalOcean's ``context`` argument for ``main(event, context)`` handlers."""

    def __init__(self, meta):
        self.activation_id = meta.get("activation_id", "")
        self.request_id = meta.get("transaction_id", self.activation_id)
        self.function_name = meta.get("action_name", "")
        self.function_version = meta.get("action_version", "")
        self.namespace = meta.get("namespace", "")
        self.api_host = meta.get("api_host", "")
        self.api_key = meta.get("api_key", "")
        self.deadline = meta.get("deadline", 0)
        # 1-based: an asynchronous activation retried by its invokeConfig runs again.
        self.attempt = int(meta.get("attempt", 1))
        # W3C trace context of this activation's span (empty when tracing is off).
        self.trace_parent = self.traceparent = meta.get("trace_parent", "")
        self.trace_state = self.tracestate = meta.get("trace_state", "")

    def get_remaining_time_in_millis(self):
        return max(0, int(self.deadline - time.time() * 1000))


class Instance:
    def __init__(self, sock):
        self.sock = sock
        self.main = None
        self.with_context = False
        self.is_async = False
        self.loop = None
        self.env = {}
        self.ow_env = {}  # the __OW_* values last set
        self.variables = {}  # name -> Variable

    def serve(self):
        channel = Channel(self.sock)
        while True:
            try:
                message = channel.message()
            except EOFError:
                return
            if message["op"] == "init":
                reply = self.init(message)
            else:
                reply = self.run(message)
            send_raw(self.sock, reply, self.end_of_activation())

    def end_of_activation(self):
        """Flush the logs; mark their end unless the server has read them all (QUIET)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if not (unread(1) or unread(2)):
            return QUIET  # two writes here and two reads in the server saved
        for fd in (1, 2):
            try:
                os.write(fd, MARKER)
            except OSError:
                pass
        return 0

    def init(self, message):
        memory = message.get("memory_mb")
        if memory:
            limit = int(memory) * 1024 * 1024 + 64 * 1024 * 1024  # headroom for the runtime
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        self.env = {str(k): str(v) for k, v in (message.get("env") or {}).items()}
        os.environ.clear()
        os.environ.update(self.env)
        entry = message.get("main") or "main"
        try:
            namespace = self.load(message)
        except SyntaxError as exc:
            print_user_traceback(exc)
            where = f" (line {exc.lineno})" if exc.lineno else ""
            return self.init_failed(f"syntax error in the code: {exc.msg}{where}")
        except BaseException as exc:
            print_user_traceback(exc)
            return self.init_failed(f"the code failed to load: {type(exc).__name__}: {exc}")
        main = namespace.get(entry)
        if not callable(main):
            return self.init_failed(f"the code defines no function named {entry!r}")
        self.main = main
        self.is_async = inspect.iscoroutinefunction(main)
        self.with_context = accepts_two_arguments(main)
        return b'{"ok":true}'

    def init_failed(self, error):
        return json.dumps({"ok": False, "error": error}).encode()

    def load(self, message):
        bundle = message.get("bundle")
        if bundle:
            sys.path.insert(0, bundle)
            site = os.path.join(
                bundle,
                "virtualenv",
                "lib",
                f"python{sys.version_info.major}.{sys.version_info.minor}",
                "site-packages",
            )
            if os.path.isdir(site):
                sys.path.insert(0, site)
            PRELOADED.shadowed_by([site, bundle])
            os.chdir(bundle)
            filename = os.path.join(bundle, "__main__.py")
            with open(filename, encoding="utf-8") as source:
                code = source.read()
        else:
            filename = "__main__.py"
            code = message.get("code", "")
        compiled = compile(code, filename, "exec")
        namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
        exec(compiled, namespace)
        return namespace

    def run(self, message):
        meta = message.get("meta") or {}
        args = message.get("args") or {}
        ow = {
            "__OW_ACTIVATION_ID": meta.get("activation_id", ""),
            "__OW_TRANSACTION_ID": meta.get("transaction_id", ""),
            "__OW_ACTION_NAME": "/" + meta.get("namespace", "") + "/" + meta.get("action_name", ""),
            "__OW_ACTION_VERSION": meta.get("action_version", ""),
            "__OW_NAMESPACE": meta.get("namespace", ""),
            "__OW_API_HOST": meta.get("api_host", ""),
            "__OW_DEADLINE": str(meta.get("deadline", "")),
            "__OW_ATTEMPT": str(meta.get("attempt", 1)),
        }
        if meta.get("api_key"):
            ow["__OW_API_KEY"] = meta["api_key"]
        for var, key in (("TRACEPARENT", "trace_parent"), ("TRACESTATE", "trace_state")):
            if key in meta:
                ow[var] = meta[key]
        # Only those that changed, and none of the previous activation's left behind.
        last = self.ow_env
        for key, value in ow.items():
            if last.get(key) != value:
                variable = self.variables.get(key)
                if variable is None:
                    variable = self.variables[key] = Variable(key)
                variable.set(value)
        for key in last.keys() - ow.keys():
            os.environ.pop(key, None)
        self.ow_env = ow
        try:
            if self.with_context:
                value = self.main(args, Context(meta))
            else:
                value = self.main(args)
            if inspect.isawaitable(value):
                if self.loop is None:
                    self.loop = asyncio.new_event_loop()
                value = self.loop.run_until_complete(value)
        except MemoryError:
            return b'{"oom":true}'
        except BaseException as exc:
            print_user_traceback(exc)
            if isinstance(exc, SystemExit):
                return json.dumps({"exception": f"the function called exit({exc.code})"}).encode()
            return json.dumps({"exception": f"{type(exc).__name__}: {exc}"}).encode()
        if not isinstance(value, dict):
            return json.dumps(
                {"invalid": f"the function returned {type(value).__name__}, not a dictionary"}
            ).encode()
        try:
            body = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            return json.dumps({"invalid": f"the result is not JSON serializable: {exc}"}).encode()
        return b'{"result":' + body.encode() + b"}"


class Variable:
    """An environment variable set for every activation, without a leak.

    ``os.environ[name] = value`` calls glibc's setenv, which keeps a copy of every
    distinct value it was ever given (about 95 bytes each: a warm instance grew by
    ~40 MB per 100,000 activations, as activation ids never repeat). putenv keeps the
    string it is given instead: here, one buffer per variable, rewritten in place.
    """

    SIZE = 256

    def __init__(self, name):
        self.name = name
        self.key = os.fsencode(name)
        self.buffer = ctypes.create_string_buffer(self.SIZE)

    def set(self, value):
        encoded = os.fsencode(value)
        entry = self.key + b"=" + encoded
        if len(entry) >= self.SIZE or b"\0" in entry:
            os.environ[self.name] = value  # rare: setenv's copy (or its error)
            return
        self.buffer.value = entry
        if _libc.putenv(self.buffer) != 0:
            os.environ[self.name] = value
            return
        os.environ._data[self.key] = encoded  # what os.environ shows, without setenv


def unread(fd):
    """Bytes written to the pipe on ``fd`` that the server has not read yet."""
    try:
        return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder)
    except OSError:
        return 1  # not a pipe we can ask: mark the end as usual


def print_user_traceback(exc):
    """The traceback from the user's first frame on: the launcher's frames are noise."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)
    sys.stderr.flush()


def accepts_two_arguments(func):
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


# -- keeping the zygote's pages shared ------------------------------------------------
#
# An instance's private memory is the pages it writes after the fork: copy-on-write
# gives it its own copy of each. Two things made instances write far more pages than
# their work needs (measured with bench/invoke_bench.py's idle memory):
# - a function's code object is written on every call until the interpreter has
#   specialised it, and first uses fill lazy caches: ``warm_up`` runs the instance's
#   code paths in the zygote first;
# - new objects went into the free slots left all over the zygote's heaps (pymalloc
#   pools and glibc's free chunks), one written page per scattered slot:
#   ``fill_free_space`` takes those slots in the zygote, so an instance's allocations
#   land together on fresh pages.

WARM_RUNS = 64  # calls enough for the interpreter to specialise what a run executes
BALLAST = []  # the zygote's objects that fill its pymalloc pools' free slots; never freed


def warm_up():
    """Run throwaway functions through ``init`` and ``run`` (both handler styles)."""
    instance = Instance(None)
    for code in ("def main(args):\n    return args\n", "def main(event, ctx):\n    return {}\n"):
        instance.init({"op": "init", "code": code})
        for n in range(WARM_RUNS):
            meta = {"activation_id": f"{n:032x}", "namespace": "_", "deadline": n}
            message = json.loads(json.dumps({"op": "run", "args": {"n": n}, "meta": meta}))
            json.loads(instance.run(message)[len(b'{"result":') : -1])
    os.environ.clear()


def fill_free_space():
    """Use up the free slots of pymalloc's pools and glibc's free chunks (best effort:
    both are read from the allocators' own statistics, when they give them)."""
    for size, count in free_blocks():
        for _ in range(count):
            if size == 16:
                BALLAST.append(object())
            elif size == 32:
                BALLAST.append(float(len(BALLAST)))
            else:
                BALLAST.append(bytes(size - 33))  # a bytes object takes 33 + len bytes
    try:
        fill_free_chunks()
    except (AttributeError, OSError):
        pass  # not glibc >= 2.33


def free_blocks():
    """(block size, free blocks in used pools) per pymalloc size class."""
    read, write = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(write, 2)
        sys._debugmallocstats()  # a table, written to stderr (about 4 KB: fits the pipe)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    with open(read, "rb") as stats:
        text = stats.read().decode(errors="replace")
    blocks = []
    for line in text.splitlines():
        fields = line.split()  # class, size, pools, blocks in use, free blocks
        if len(fields) == 5 and all(f.isdigit() for f in fields) and int(fields[1]) <= 512:
            blocks.append((int(fields[1]), int(fields[4])))
    return blocks


class MallInfo2(ctypes.Structure):
    _fields_ = [
        ("arena", ctypes.c_size_t),
        ("ordblks", ctypes.c_size_t),
        ("smblks", ctypes.c_size_t),
        ("hblks", ctypes.c_size_t),
        ("hblkhd", ctypes.c_size_t),
        ("usmblks", ctypes.c_size_t),
        ("fsmblks", ctypes.c_size_t),
        ("uordblks", ctypes.c_size_t),
        ("fordblks", ctypes.c_size_t),
        ("keepcost", ctypes.c_size_t),  # the free top of the heap
    ]


def fill_free_chunks():
    """malloc blocks, largest first, for as long as they come from free chunks rather
    than from the top of the heap (which would grow or shrink ``keepcost``)."""
    _libc.mallinfo2.restype = MallInfo2
    _libc.malloc.restype = ctypes.c_void_p
    _libc.malloc.argtypes = [ctypes.c_size_t]
    _libc.free.argtypes = [ctypes.c_void_p]
    # Large first; then every small size, which glibc keeps apart (tcache, fast bins).
    for size in (65536, 16384, 4096, *range(1024, 0, -16)):
        while True:
            before = _libc.mallinfo2()
            block = _libc.malloc(size)
            after = _libc.mallinfo2()
            if not block or after.arena != before.arena or after.keepcost < before.keepcost:
                _libc.free(block)  # from the top: no free chunk of this size is left
                break


def become_instance(spec, fds):
    control, out, err = fds
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.dup2(control, 3)
    os.closerange(4, 65536)
    try:
        confine(spec)
    except BaseException as exc:
        os.write(2, f"wisp: confinement failed: {exc}\n".encode())
        os._exit(70)
    argv = spec.get("exec")
    if argv:
        # Another language's stem cell (Node, PHP, binaries): confined exactly like a
        # Python instance, it now becomes that language's launcher, with an empty
        # environment and only fds 0-3.
        try:
            os.execve(argv[0], argv, {})
        except OSError as exc:
            os.write(2, f"wisp: cannot start {argv[0]}: {exc}\n".encode())
            os._exit(71)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sock = socket.socket(fileno=3)
    try:
        Instance(sock).serve()
    finally:
        os._exit(0)


# -- the zygote ---------------------------------------------------------------------


def zygote(fd, userns=False, preload=()):
    global PRELOADED
    PRELOADED = Preloaded(preload)
    PRELOADED.preload()
    server = socket.socket(fileno=fd)
    server.setblocking(True)
    if userns:  # not root: a user namespace lets children make the other namespaces
        enter_user_namespace()
    me = os.getpid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ, "server")
    selector.register(wake_r, selectors.EVENT_READ, "children")
    warm_up()
    gc.collect()
    fill_free_space()
    gc.freeze()  # keep the collector from touching (and un-sharing) inherited pages
    send_message(server, {"op": "ready", "pid": me})
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.data == "children":
                os.read(wake_r, 4096)
                reap(server)
                continue
            data, fds, _flags, _addr = socket.recv_fds(server, 1 << 16, 3)
            if not data:
                os._exit(0)
            buffer += data
            while len(buffer) >= HEADER.size:
                (size,) = HEADER.unpack_from(buffer)
                if len(buffer) < HEADER.size + size:
                    break
                spec = json.loads(buffer[HEADER.size : HEADER.size + size])
                buffer = buffer[HEADER.size + size :]
                spec["zygote"] = me
                pid = fork_into(spec, userns)
                if pid == 0:
                    os.close(wake_r)
                    os.close(wake_w)
                    server.close()
                    become_instance(spec, fds)
                for fd in fds:
                    os.close(fd)
                fds = []
                send_message(server, {"op": "forked", "id": spec["id"], "pid": pid})


def fork_into(spec, userns=False):
    """fork(), into a new pid namespace when the spec asks for one.

    unshare(CLONE_NEWPID) only moves the *next* child; setns back afterwards so the
    following fork can get a namespace of its own. The child is pid 1 there: it sees
    only its own processes, and when it dies, everything it started dies with it.
    In a user namespace setns back is refused: clone makes the namespace instead.
    """
    if "pid" not in (spec.get("namespaces") or ()):
        return os.fork()
    if userns:
        try:
            return clone_into_pid_namespace()
        except OSError:
            spec["namespaces"] = [n for n in spec["namespaces"] if n != "pid"]
            return os.fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWPID) != 0:
            spec["namespaces"] = [n for n in spec["namespaces"] if n != "pid"]
            return os.fork()
        try:
            return os.fork()
        finally:
            if os.getpid() != 1:  # only the zygote goes back
                _libc.setns(own, CLONE_NEWPID)
    finally:
        os.close(own)


def reap(server):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        send_message(server, {"op": "exited", "pid": pid, "signal": signum, "code": code})


def main(argv):
    """``launcher.py [--preload=PATH,...] FD [userns]``."""
    options = [a for a in argv if a.startswith("--")]
    fd, *flags = [a for a in argv if not a.startswith("--")]
    preload = ()
    for option in options:
        if option.startswith("--preload="):
            preload = tuple(p for p in option.removeprefix("--preload=").split(",") if p)
    zygote(int(fd), userns="userns" in flags, preload=preload)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ConnectionError, EOFError):
        os._exit(0)  # the server went away: nothing to report to
    except KeyboardInterrupt:
        os._exit(0)
