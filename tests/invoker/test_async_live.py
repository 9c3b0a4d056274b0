"""Retries, dead letters and idempotency keys with a real `wisp server` and real sandboxes:
a function failing twice then succeeding, a dead letter redriven, a retry across a
restart."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.invoker.asynclive import ACTIONS, ACTIVATIONS, ECHO, LETTERS, annotation, wait_record
from tests.live import LiveServer

TRIGGERS = "/api/v1/namespaces/_/triggers"
RULES = "/api/v1/namespaces/_/rules"

pytestmark = pytest.mark.slow

# Fails (a developer error) on its first two runs, succeeds on the third; says which
# run it is as the platform told it, in both forms.
FLAKY = """
import os

def main(event, context):
    attempt = int(os.environ["__OW_ATTEMPT"])
    if attempt < 3:
        raise RuntimeError(f"run {attempt} fails")
    return {"attempt": attempt, "context_attempt": context.attempt, "input": event.get("n")}
"""
FAILING = """
def main(args):
    if args.get("mode") != "fixed":
        return {"error": "not yet"}
    return {"ok": True, "n": args.get("n")}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path) as live:
        yield live


def put_config(server: LiveServer, fn: str, config: dict[str, Any]) -> None:
    status, answer = server.call("PUT", f"{ACTIONS}/{fn}/invokeConfig", config)
    assert status == 200, answer


def invoke(server: LiveServer, fn: str, body: dict[str, Any]) -> str:
    status, answer = server.call("POST", f"{ACTIONS}/{fn}", body)
    assert status == 202, answer
    return str(answer["activationId"])


def test_a_function_failing_twice_runs_three_times_with_backoff(server: LiveServer) -> None:
    server.deploy("jobs/flaky", FLAKY)
    initial, factor = 1.0, 2.0
    put_config(
        server,
        "jobs/flaky",
        {
            "maximumRetryAttempts": 3,
            "backoff": {"initial": initial, "factor": factor, "jitter": 0.1},
            "retryOn": ["developer"],
        },
    )
    aid = invoke(server, "jobs/flaky", {"n": 7})
    record = wait_record(server, aid)
    assert record["response"]["success"] is True, record
    assert record["response"]["result"] == {"attempt": 3, "context_attempt": 3, "input": 7}
    assert annotation(record, "attempt") == 3
    earlier = annotation(record, "attempts")
    assert [a["attempt"] for a in earlier] == [1, 2]
    assert {a["status"] for a in earlier} == {"action developer error"}
    # The gaps between runs follow the policy: 1 s, then 2 s, each within ±20%.
    starts = [a["start"] for a in earlier] + [record["start"]]
    ends = [a["end"] for a in earlier]
    gaps = [(starts[i + 1] - ends[i]) / 1000 for i in range(2)]
    print("backoff gaps (s):", gaps)
    for gap, expected in zip(gaps, (initial, initial * factor), strict=True):
        assert expected * 0.8 <= gap <= expected * 1.2, gaps
    # Only the final attempt has a record, under the caller's activation id.
    status, listed = server.call("GET", f"{ACTIVATIONS}?name=jobs/flaky")
    assert status == 200 and [r["activationId"] for r in listed] == [aid]


def test_blocking_invokes_are_never_retried(server: LiveServer) -> None:
    server.deploy("jobs/flaky", FLAKY)
    put_config(server, "jobs/flaky", {"maximumRetryAttempts": 3, "retryOn": ["developer"],
                                      "backoff": {"initial": 0.1}})  # fmt: skip
    status, record = server.call("POST", f"{ACTIONS}/jobs/flaky?blocking=true", {})
    assert status == 502 and record["response"]["status"] == "action developer error"
    assert annotation(record, "attempt") == 1 and annotation(record, "attempts") is None


def test_a_dead_letter_is_listed_sent_on_and_redriven(server: LiveServer) -> None:
    server.deploy("jobs/work", FAILING)
    server.deploy("jobs/alert", ECHO)
    put_config(
        server,
        "jobs/work",
        {
            "maximumRetryAttempts": 1,
            "backoff": {"initial": 0.2},
            "retryOn": ["application"],
            "onFailure": {"function": "jobs/alert"},
        },
    )
    aid = invoke(server, "jobs/work", {"n": 1})
    record = wait_record(server, aid)
    assert record["response"]["status"] == "dead" and record["statusCode"] == 4
    assert annotation(record, "reason") == "RetriesExhausted"
    assert annotation(record, "attempt") == 2
    assert record["response"]["result"] == {"error": "not yet"}
    status, letters = server.call("GET", LETTERS)
    assert status == 200 and [d["activationId"] for d in letters] == [aid]
    assert letters[0]["request"]["params"] == {"n": 1}
    assert letters[0]["reason"] == "RetriesExhausted" and letters[0]["attempts"] == 2

    # The onFailure function received {condition, request, response}.
    deadline = time.monotonic() + 30
    alerts: list[dict[str, Any]] = []
    while not alerts and time.monotonic() < deadline:
        alerts = server.call("GET", f"{ACTIVATIONS}?name=jobs/alert&docs=true")[1]
        time.sleep(0.1)
    [alert] = alerts
    assert alert["cause"] == aid
    sent = alert["response"]["result"]
    assert sent["condition"] == "RetriesExhausted"
    assert sent["request"]["params"] == {"n": 1}
    assert sent["response"]["result"] == {"error": "not yet"}

    # Fix the function, then redrive with the same input: it succeeds.
    server.deploy("jobs/work", FAILING, parameters=[{"key": "mode", "value": "fixed"}])
    redriven = server.ok("deadletters", "redrive", aid).out
    new_id = redriven.split()[-1]
    again = wait_record(server, new_id)
    assert again["response"]["result"] == {"ok": True, "n": 1}, again
    assert again["cause"] == aid
    assert server.call("GET", LETTERS)[1] == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_retry_waiting_for_its_delay_survives_a_restart(
    server: LiveServer, signum: int
) -> None:
    server.deploy("jobs/flaky", FLAKY)
    put_config(
        server,
        "jobs/flaky",
        {"maximumRetryAttempts": 3, "backoff": {"initial": 3, "factor": 1, "jitter": 0},
         "retryOn": ["developer"]},
    )  # fmt: skip
    aid = invoke(server, "jobs/flaky", {"n": 1})
    time.sleep(1.5)  # the first run failed; the second waits for its 3 s delay
    assert server.stop(signum) == (0 if signum == signal.SIGTERM else -signum)
    server.start()
    record = wait_record(server, aid)
    assert record["response"]["success"] is True, record
    assert annotation(record, "attempt") == 3
    assert [a["attempt"] for a in annotation(record, "attempts")] == [1, 2]


# Its first run outlives the server; the runs after it are quick.
SLOW_FIRST = """
import os, time

def main(args):
    if os.environ["__OW_ATTEMPT"] == "1":
        time.sleep(20)
    return {"attempt": int(os.environ["__OW_ATTEMPT"])}
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_cut_by_a_stop_is_retried_by_the_policy(tmp_path: Path, signum: int) -> None:
    # SIGTERM: the drain (1 s here) runs out while the first run sleeps.
    with LiveServer(tmp_path, env={"WISP_DRAIN_SECONDS": "1"}) as server:
        server.deploy("jobs/slow", SLOW_FIRST, limits={"timeout": 30000})
        put_config(server, "jobs/slow", {"maximumRetryAttempts": 1, "backoff": {"initial": 0.5}})
        aid = invoke(server, "jobs/slow", {})
        time.sleep(2)  # it runs
        server.stop(signum)
        server.start()
        check_second_run(server, aid)


def check_second_run(server: LiveServer, aid: str) -> None:
    record = wait_record(server, aid)
    assert record["response"]["result"] == {"attempt": 2}, record
    assert annotation(record, "recovered") is True
    [first] = annotation(record, "attempts")
    assert first["attempt"] == 1 and first["status"] == "whisk internal error"


def test_trigger_firings_are_retried_and_dead_letters_can_fire_a_trigger(
    server: LiveServer,
) -> None:
    server.deploy("jobs/flaky", FLAKY)
    server.deploy("jobs/work", FAILING)
    server.deploy("jobs/alert", ECHO)
    retry = {"maximumRetryAttempts": 3, "backoff": {"initial": 0.2}, "retryOn": ["developer"]}
    put_config(server, "jobs/flaky", retry)
    put_config(server, "jobs/work", {"retryOn": ["application"],
                                     "onFailure": {"trigger": "failures"}})  # fmt: skip
    pairs = (("tick", "run-flaky", "jobs/flaky"), ("failures", "alert", "jobs/alert"))
    for trigger, rule, fn in pairs:
        assert server.call("PUT", f"{TRIGGERS}/{trigger}", {})[0] == 200
        body = {"trigger": trigger, "action": fn}
        assert server.call("PUT", f"{RULES}/{rule}", body)[0] == 200

    # A fired trigger's rule activation is asynchronous: retried by its function's policy.
    status, fired = server.call("POST", f"{TRIGGERS}/tick", {"n": 5})
    assert status == 202, fired
    trigger_record = wait_record(server, fired["activationId"])
    [line] = [json.loads(line) for line in trigger_record["logs"]]
    record = wait_record(server, line["activationId"])
    assert record["response"]["result"] == {"attempt": 3, "context_attempt": 3, "input": 5}

    # No retries but an onFailure trigger: dead after one run, and the trigger fires.
    aid = invoke(server, "jobs/work", {"n": 2})
    dead = wait_record(server, aid)
    assert dead["response"]["status"] == "dead" and annotation(dead, "attempt") == 1
    deadline = time.monotonic() + 30
    alerts: list[dict[str, Any]] = []
    while not alerts and time.monotonic() < deadline:
        alerts = server.call("GET", f"{ACTIVATIONS}?name=jobs/alert&docs=true")[1]
        time.sleep(0.1)
    [alert] = alerts
    assert alert["response"]["result"]["condition"] == "RetriesExhausted"
    assert alert["response"]["result"]["activationId"] == aid
