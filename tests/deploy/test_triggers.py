"""Scheduled triggers in project.yml: both forms, their errors, and the desired state."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import MakeProject
from tests.deploy.test_project import HELLO, error_of
from wisp.deploy.desired import Runtimes, desired_state
from wisp.deploy.project import load_project
from wisp.deploy.triggers import diff_rule, diff_trigger

BOTH_FORMS = """
packages:
  - name: hello
    functions:
      - name: hello
        triggers:
          - name: nightly
            sourceType: scheduler
            sourceDetails:
              cron: "0 3 * * *"
              withBody: {size: 3}
          - name: hourly
            type: scheduled
            scheduledDetails:
              cron: "@hourly"
              body: {name: Ada}
              timezone: Europe/Paris
              concurrency: skip
              missed: skip
            enabled: false
"""
RUNTIMES = Runtimes({"python": [{"kind": "python:3.11", "default": True}]})


def test_both_forms_are_read(make_project: MakeProject) -> None:
    project = load_project(make_project(BOTH_FORMS, HELLO), environ={})
    nightly, hourly = project.functions[0].triggers
    assert (nightly.name, nightly.cron, nightly.body, nightly.enabled) == (
        "nightly",
        "0 3 * * *",
        {"size": 3},
        True,
    )
    assert (nightly.timezone, nightly.concurrency, nightly.missed) == ("UTC", "allow", "latest")
    assert (hourly.cron, hourly.body, hourly.enabled, hourly.function) == (
        "@hourly",
        {"name": "Ada"},
        False,
        "hello/hello",
    )
    assert (hourly.timezone, hourly.concurrency, hourly.missed) == ("Europe/Paris", "skip", "skip")


def test_desired_state_has_a_trigger_and_a_rule_each(make_project: MakeProject) -> None:
    state = desired_state(load_project(make_project(BOTH_FORMS, HELLO), environ={}), RUNTIMES)
    assert [t.api_path for t in state.triggers] == ["triggers/nightly", "triggers/hourly"]
    assert state.triggers[0].body == {
        "parameters": [{"key": "size", "value": 3}],
        "schedule": {
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "concurrency": "allow",
            "missed": "latest",
        },
        "enabled": True,
    }
    assert state.rules[1].body == {"trigger": "hourly", "action": "hello/hello", "status": "active"}


def test_diffs_compare_with_what_the_server_shows() -> None:
    want = {
        "parameters": [{"key": "size", "value": 3}],
        "schedule": {
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "concurrency": "allow",
            "missed": "latest",
        },
        "enabled": True,
    }
    have = {**want, "version": "0.0.1", "next_run_at": "x", "rules": {}}
    assert diff_trigger(want, have) == []
    changed = {**have, "schedule": {**want["schedule"], "cron": "0 4 * * *"}, "enabled": False}
    assert diff_trigger(want, changed) == ["cron 0 4 * * * → 0 3 * * *", "enabled"]
    assert diff_trigger(want, {**have, "parameters": []}) == ["body changed"]
    rule = {"trigger": "t", "action": "hello/hello", "status": "active"}
    shown = {
        "trigger": {"name": "t", "path": "guest"},
        "action": {"name": "hello", "path": "guest/hello"},
        "status": "active",
    }
    assert diff_rule(rule, shown) == []
    assert diff_rule(rule, {**shown, "status": "inactive"}) == ["status inactive → active"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            '{name: t, sourceType: scheduler, sourceDetails: {cron: "61 * * * *"}}',
            "packages[0].functions[0].triggers[0].sourceDetails.cron: invalid cron expression "
            "'61 * * * *': minute field '61': 61 is out of range 0-59",
        ),
        (
            "{name: t, type: scheduled, scheduledDetails: {cron: '@hourly', timezone: Nowhere}}",
            "scheduledDetails.cron: unknown time zone 'Nowhere'",
        ),
        ("{name: t, sourceType: webhook, sourceDetails: {}}", "only 'scheduler' triggers"),
        ("{name: t, type: scheduled}", "scheduledDetails: is required"),
        ("{name: t, cron: '@hourly'}", "needs sourceType: scheduler"),
        ("{name: t, type: scheduled, scheduledDetails: {cron: 5}}", "cron: is required"),
        (
            "{name: t, type: scheduled, scheduledDetails: {cron: '@daily', withBody: {}}}",
            "scheduledDetails.withBody: unknown key",
        ),
        (
            "{name: t, type: scheduled, scheduledDetails: {cron: '@daily', body: [1]}}",
            "body: must be a mapping",
        ),
        (
            "{name: t, type: scheduled, scheduledDetails: {cron: '@daily'}, enabled: yes please}",
            "enabled: must be true or false",
        ),
        (
            "{name: t, type: scheduled, scheduledDetails: {cron: '@daily', missed: all}}",
            "missed: must be one of latest, skip",
        ),
        ("{type: scheduled, scheduledDetails: {cron: '@daily'}}", "name: is required"),
    ],
)
def test_bad_triggers_name_the_key(make_project: MakeProject, trigger: str, message: str) -> None:
    yml = f"""
    packages:
      - name: hello
        functions:
          - name: hello
            triggers:
              - {trigger}
    """
    assert message in error_of(make_project(yml, HELLO))


def test_a_trigger_name_is_used_once(make_project: MakeProject) -> None:
    yml = """
    packages:
      - name: hello
        functions:
          - name: hello
            triggers:
              - {name: t, type: scheduled, scheduledDetails: {cron: '@daily'}}
              - {name: t, type: scheduled, scheduledDetails: {cron: '@hourly'}}
    """
    assert "trigger 't' is also declared at" in error_of(make_project(yml, HELLO))
