"""The server's handle on one zygote process per runtime.

The zygote has imported the launcher and frozen its heap; every instance is a
``fork()`` of it, so a cold start never pays for interpreter start-up. The zygote
is started by exec (never by forking this asyncio server) with an empty
environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import Callable
from typing import Any

from wisp.errors import PlatformError
from wisp.runtimes import Runtime
from wisp.sandbox.protocol import HEADER, encode

log = logging.getLogger("wisp.sandbox")

ExitCallback = Callable[[int, int, int | None], None]  # pid, signal, exit code


class Zygote:
    def __init__(self, runtime: Runtime, on_exit: ExitCallback, userns: bool = False) -> None:
        self.runtime = runtime
        self.on_exit = on_exit
        self.userns = userns  # not root: the zygote enters a user namespace of its own
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._ids = 0
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._ready: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._proc = subprocess.Popen(
            [*self.runtime.command, str(theirs.fileno()), *(["userns"] if self.userns else [])],
            pass_fds=(theirs.fileno(),),
            env={},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = self._loop.create_future()
        self._loop.add_reader(ours.fileno(), self._on_readable)
        try:
            self.pid = await asyncio.wait_for(self._ready, 10)
        except TimeoutError:
            await self.stop()
            raise PlatformError(f"the {self.runtime.kind} zygote did not start") from None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def fork(self, spec: dict[str, Any], fds: list[int]) -> int:
        """Fork a child that confines itself per ``spec`` and takes ``fds``."""
        if self._sock is None or self._loop is None or not self.alive:
            raise PlatformError(f"the {self.runtime.kind} zygote is not running")
        self._ids += 1
        request = self._ids
        future: asyncio.Future[int] = self._loop.create_future()
        self._pending[request] = future
        data = encode({**spec, "id": request})
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                break
            except BlockingIOError:
                await asyncio.sleep(0.001)
        return await asyncio.wait_for(future, 10)

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            message = json.loads(self._buffer[HEADER.size : end])
            self._buffer = self._buffer[end:]
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "forked":
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message["pid"])
        elif op == "exited":
            self.on_exit(message["pid"], message.get("signal", 0), message.get("code"))
        elif op == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message["pid"])

    def _lost(self) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PlatformError(f"the {self.runtime.kind} zygote exited"))
        self._pending.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(PlatformError(f"the {self.runtime.kind} zygote exited"))

    async def stop(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, 9)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._proc.wait, 5)
            self._proc = None
