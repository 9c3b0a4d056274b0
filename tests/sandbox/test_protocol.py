"""The server's end of the worker protocol and the per-activation log collector."""

from __future__ import annotations

import asyncio

import pytest

from wisp.sandbox import instance as instance_module
from wisp.sandbox.instance import MARKER, LogCollector, LogPipe, decode_reply
from wisp.sandbox.protocol import HEADER, QUIET, ControlChannel, ProtocolViolation, ReplyTooLarge


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def channel() -> tuple[ControlChannel, FakeTransport]:
    transport = FakeTransport()
    chan = ControlChannel()
    chan.connection_made(transport)
    return chan, transport


def frame(body: bytes, flags: int = 0) -> bytes:
    return HEADER.pack(len(body) | flags) + body


async def test_a_frame_split_across_reads_is_delivered_whole():
    chan, _ = channel()
    reply = chan.request({"op": "run"}, 100)
    data = frame(b'{"result":{}}')
    for i in range(len(data)):
        chan.data_received(data[i : i + 1])
    assert await reply == (b'{"result":{}}', False)


async def test_quiet_bit_is_reported_and_not_part_of_the_size():
    chan, _ = channel()
    reply = chan.request({"op": "init"}, 100)
    chan.data_received(frame(b'{"ok":true}', QUIET))
    assert await reply == (b'{"ok":true}', True)
    reply = chan.request({"op": "run"}, 100)
    chan.data_received(frame(b'{"ok":false}'))
    assert await reply == (b'{"ok":false}', False)


async def test_request_writes_one_length_prefixed_frame():
    chan, transport = channel()
    chan.request({"op": "run"}, 100)
    assert transport.written == [frame(b'{"op":"run"}')]


async def test_a_length_word_past_the_limit_is_refused_from_the_header_alone():
    chan, transport = channel()
    seen: list[ProtocolViolation] = []
    chan.on_violation = seen.append
    reply = chan.request({"op": "run"}, 1000)
    chan.data_received(HEADER.pack(1001 | QUIET)[:3])  # not even the whole word yet
    assert not reply.done() and not transport.closed
    chan.data_received(HEADER.pack(1001 | QUIET)[3:] + b"x" * 100)
    with pytest.raises(ReplyTooLarge) as refused:
        await reply
    assert (refused.value.size, refused.value.limit, refused.value.quiet) == (1001, 1000, True)
    assert transport.closed and seen == [refused.value]
    assert chan._buffer == b""  # nothing of the body kept
    chan.data_received(b"y" * 100_000)  # whatever a closing transport still hands over
    assert chan._buffer == b""


async def test_a_frame_exactly_at_the_limit_is_delivered():
    chan, _ = channel()
    reply = chan.request({"op": "run"}, 1000)
    body = b'{"result":{"a":"' + b"x" * (1000 - 19) + b'"}}'
    assert len(body) == 1000
    chan.data_received(frame(body)[:500])
    chan.data_received(frame(body)[500:])
    assert await reply == (body, False)


@pytest.mark.parametrize("split", [False, True])
async def test_a_second_frame_for_one_request_is_a_violation(split):
    chan, transport = channel()
    seen: list[ProtocolViolation] = []
    chan.on_violation = seen.append
    reply = chan.request({"op": "run"}, 100)
    data = frame(b'{"result":{}}') * 2
    if split:  # the extra frame comes in its own read, after the reply was taken
        chan.data_received(data[:17])
        assert await reply == (b'{"result":{}}', False)
        chan.data_received(data[17:])
        assert "no reply was due" in str(chan.violation)
    else:
        chan.data_received(data)
        with pytest.raises(ProtocolViolation, match="more than one frame"):
            await reply
    assert transport.closed and seen == [chan.violation]


async def test_bytes_while_no_request_waits_are_a_violation_and_not_kept():
    chan, transport = channel()
    seen: list[ProtocolViolation] = []
    chan.on_violation = seen.append
    chan.data_received(frame(b'{"result":{}}') * 1000)
    assert transport.closed and len(seen) == 1
    assert "no reply was due" in str(seen[0])
    assert chan._buffer == b""
    later = chan.request({"op": "run"}, 100)  # the channel is done for
    with pytest.raises(ProtocolViolation):
        await later


async def test_a_reply_after_a_timeout_is_a_violation():
    chan, transport = channel()
    reply = chan.request({"op": "run"}, 100)
    reply.set_exception(TimeoutError())  # what the deadline timer does
    with pytest.raises(TimeoutError):
        await reply
    chan.data_received(frame(b'{"result":{}}'))  # no InvalidStateError
    assert chan.violation is not None and transport.closed


async def test_lost_connection_fails_the_waiter_and_later_requests():
    chan, _ = channel()
    reply = chan.request({"op": "run"}, 100)
    chan.connection_lost(None)
    with pytest.raises(ConnectionResetError):
        await reply
    with pytest.raises(ConnectionResetError):
        await chan.request({"op": "run"}, 100)
    assert chan.violation is None


@pytest.mark.parametrize(
    ("raw", "op", "detail"),
    [
        (b"[]", "run", "a JSON array, not an object"),
        (b'"text"', "run", "a JSON string, not an object"),
        (b"12", "init", "a JSON number, not an object"),
        (b"null", "run", "a JSON null, not an object"),
        (b"\xff\xfe", "run", "not JSON"),
        (b'{"result":', "run", "not JSON"),
        (b'{"result":[1]}', "run", "a result that is a JSON array"),
        (b'{"result":null}', "run", "a result that is a JSON null"),
        (b"{}", "run", "none of result, exception, invalid, oom"),
        (b'{"ok":true}', "run", "none of result"),  # the reply to another op
        (b'{"result":{}}', "init", 'without "ok"'),
        (b'{"ok":"yes"}', "init", 'without "ok"'),
        (b'{"oom":false}', "run", "none of result"),
    ],
)
def test_a_malformed_reply_is_a_broken_protocol_never_an_exception(raw, op, detail):
    outcome = decode_reply(raw, op, ["a line"])
    assert not outcome.ok and outcome.kind == "crash"  # the invoker discards the instance
    assert detail in outcome.error and "broke the runtime protocol" in outcome.error
    assert outcome.logs == ["a line"]


def test_a_reply_too_deep_for_the_parser_is_a_broken_protocol(monkeypatch):
    def too_deep(raw: bytes) -> object:
        raise RecursionError("maximum recursion depth exceeded")  # the stdlib fallback's

    monkeypatch.setattr(instance_module.codec, "loads", too_deep)
    outcome = decode_reply(b"[[[]]]", "run", [])
    assert outcome.kind == "crash" and "not JSON" in outcome.error


def test_well_formed_replies_decode_as_before():
    assert decode_reply(b'{"ok":true}', "init", []).ok
    failed = decode_reply(b'{"ok":false,"error":"boom"}', "init", [])
    assert (failed.ok, failed.kind, failed.error) == (False, "init", "boom")
    done = decode_reply(b'{"result":{"a":1}}', "run", [])
    assert (done.ok, done.result, done.size) == (True, {"a": 1}, 7)
    assert decode_reply(b'{"oom":true}', "run", []).kind == "oom"
    assert decode_reply(b'{"exception":"E: x"}', "run", []).error == "E: x"
    invalid = decode_reply(b'{"invalid":"not a dict"}', "run", [])
    assert (invalid.kind, invalid.error) == ("invalid", "not a dict")


async def test_marker_glued_to_a_last_line_without_newline_still_ends_the_logs():
    logs = LogCollector()
    logs.reset(1024)
    out, err = LogPipe("stdout", logs), LogPipe("stderr", logs)
    out.data_received(b"no newline" + MARKER + b"\n")
    err.data_received(MARKER + b"\n")
    await asyncio.wait_for(logs.wait_markers(5), 1)  # both came: no waiting
    lines = logs.take()
    assert len(lines) == 1 and lines[0].endswith(" stdout: no newline")


async def test_quiet_end_keeps_a_last_line_without_newline():
    logs = LogCollector()
    logs.reset(1024)
    out = LogPipe("stdout", logs)
    out.data_received(b"one\ntwo")
    logs.end_quietly()
    assert [line.split(" ", 1)[1] for line in logs.take()] == ["stdout: one", "stdout: two"]
    assert out.partial == b""


async def test_waiting_for_markers_gives_up_after_the_wait():
    logs = LogCollector()
    logs.reset(1024)
    LogPipe("stdout", logs).data_received(MARKER + b"\n")  # stderr's never comes
    loop = asyncio.get_running_loop()
    began = loop.time()
    await logs.wait_markers(0.05)
    assert 0.04 <= loop.time() - began < 1
