"""Splitting logs per activation over real Python sandboxes: end-of-activation markers,
and replies that need none because the server had already read every byte."""

from __future__ import annotations

from tests.invoker.conftest import make_target
from wisp.models import SUCCESS


def ran(platform, target):
    """The instance that serves ``target`` (initialised; stem cells are not)."""
    [instance] = [i for i in platform.invoker.sandbox.live.values() if i.memory_mb]
    return instance


async def test_silent_activations_end_without_markers(platform, invoke):
    target = make_target("def main(args):\n    return {'n': args.get('n')}\n")
    for n in range(3):
        record = await invoke(target, {"n": n})
        assert record.status_code == SUCCESS and record.result == {"n": n}
        assert record.logs == []
        # Nothing was written, so the launcher said so instead of writing markers.
        assert ran(platform, target).logs.markers == 0


async def test_each_activation_gets_its_own_lines(invoke):
    code = "import sys\ndef main(args):\n    print('out', args['n'])\n    print('err', args['n'], file=sys.stderr)\n    return {}\n"
    target = make_target(code)
    for n in range(10):
        record = await invoke(target, {"n": n})
        texts = sorted(line.split(" ", 1)[1] for line in record.logs)
        assert texts == [f"stderr: err {n}", f"stdout: out {n}"], record.logs


async def test_last_output_without_newline_is_a_line_of_its_own(invoke):
    code = (
        "import sys\n"
        "def main(args):\n"
        "    sys.stdout.write('no newline')\n"
        "    print('nor here', end='', file=sys.stderr)\n"
        "    return {}\n"
    )
    target = make_target(code)
    for _ in range(2):
        record = await invoke(target)
        texts = sorted(line.split(" ", 1)[1] for line in record.logs)
        assert texts == ["stderr: nor here", "stdout: no newline"], record.logs
