"""Cron parsing and next-run computation, including DST changes in a time zone."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from wisp.triggers.cron import CronError, parse

PARIS = "Europe/Paris"  # DST: 2025-03-30 02:00 -> 03:00, 2025-10-26 03:00 -> 02:00
NEW_YORK = "America/New_York"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp()


def local(instant: float, tz: str) -> str:
    return datetime.fromtimestamp(instant, ZoneInfo(tz)).isoformat()


def runs(expression: str, start: float, count: int, tz: str = "UTC") -> list[str]:
    schedule = parse(expression, tz)
    out: list[str] = []
    for _ in range(count):
        start = schedule.next_after(start)
        out.append(local(start, tz))
    return out


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", ["2025-01-01T00:15:00+00:00", "2025-01-01T00:30:00+00:00"]),
        ("0 9 * * MON-FRI", ["2025-01-01T09:00:00+00:00", "2025-01-02T09:00:00+00:00"]),
        ("0 0 1 */3 *", ["2025-04-01T00:00:00+00:00", "2025-07-01T00:00:00+00:00"]),
        ("@hourly", ["2025-01-01T01:00:00+00:00", "2025-01-01T02:00:00+00:00"]),
        ("@daily", ["2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00"]),
        ("@weekly", ["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"]),
        ("@monthly", ["2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"]),
        ("@yearly", ["2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]),
        ("0 0 29 2 *", ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
        ("5,10-12 3 * jan,Feb *", ["2025-01-01T03:05:00+00:00", "2025-01-01T03:10:00+00:00"]),
        ("0 12 * * 7", ["2025-01-05T12:00:00+00:00", "2025-01-12T12:00:00+00:00"]),  # 7 = Sunday
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * FRI", ["2025-01-03T00:00:00+00:00", "2025-01-10T00:00:00+00:00"]),
        ("30 22/1 * * *", ["2025-01-01T22:30:00+00:00", "2025-01-01T23:30:00+00:00"]),
    ],
)
def test_next_runs(expression: str, expected: list[str]) -> None:
    assert runs(expression, at(2025, 1, 1), len(expected)) == expected


def test_next_is_strictly_after_and_ignores_seconds() -> None:
    schedule = parse("* * * * *")
    assert schedule.next_after(at(2025, 1, 1, 0, 0)) == at(2025, 1, 1, 0, 1)
    assert schedule.next_after(at(2025, 1, 1, 0, 0) + 59.999) == at(2025, 1, 1, 0, 1)


def test_matches_a_brute_force_search_in_utc() -> None:
    rng = random.Random(5)
    fields = [
        ["*", "*/7", "0", "15-20", "5,35"],
        ["*", "*/5", "3", "9-17"],
        ["*", "1", "*/10", "15,31"],
        ["*", "2", "*/4"],
        ["*", "MON", "0,6", "1-5"],
    ]
    for _ in range(40):
        parts = [rng.choice(options) for options in fields]
        expression = " ".join(parts)
        try:
            schedule = parse(expression)
        except CronError:
            continue  # e.g. "31" of February only
        start = at(2025, 1, 1) + rng.randrange(0, 365 * 86400)
        got = schedule.next_after(start)
        if got - start > 62 * 86400:
            continue  # keep the minute-by-minute walk short
        t = (int(start) // 60 + 1) * 60
        while True:
            dt = datetime.fromtimestamp(t, UTC)
            dom = dt.day in schedule.days
            dow = dt.isoweekday() % 7 in schedule.weekdays
            # Vixie cron: a day field starting with '*' does not widen the other.
            either = not parts[2].startswith("*") and not parts[4].startswith("*")
            day = (dom or dow) if either else (dom and dow)
            if (
                dt.minute in schedule.minutes
                and dt.hour in schedule.hours
                and dt.month in schedule.months
                and day
            ):
                break
            t += 60
        assert got == t, expression


def test_spring_forward_runs_a_skipped_time_once_shifted_by_the_gap() -> None:
    # 02:30 does not exist in Paris on 2025-03-30: it runs at 03:30, then as usual.
    assert runs("30 2 * * *", at(2025, 3, 29, 12, tz=PARIS), 3, PARIS) == [
        "2025-03-30T03:30:00+02:00",
        "2025-03-31T02:30:00+02:00",
        "2025-04-01T02:30:00+02:00",
    ]
    # An hourly schedule runs once in the hour that loses its 02:30.
    assert runs("30 * * * *", at(2025, 3, 30, 1, tz=PARIS), 3, PARIS) == [
        "2025-03-30T01:30:00+01:00",
        "2025-03-30T03:30:00+02:00",
        "2025-03-30T04:30:00+02:00",
    ]


def test_fall_back_runs_a_repeated_fixed_time_once() -> None:
    assert runs("30 2 * * *", at(2025, 10, 25, 12, tz=PARIS), 3, PARIS) == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
        "2025-10-28T02:30:00+01:00",
    ]


def test_fall_back_keeps_the_cadence_of_every_hour_schedules() -> None:
    assert runs("*/30 * * * *", at(2025, 10, 26, 1, 10, tz=PARIS), 6, PARIS) == [
        "2025-10-26T01:30:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:30:00+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T02:30:00+01:00",
        "2025-10-26T03:00:00+01:00",
    ]


def test_a_zone_moves_the_run_in_utc() -> None:
    schedule = parse("0 9 * * *", NEW_YORK)
    winter = schedule.next_after(at(2025, 1, 10))
    summer = schedule.next_after(at(2025, 7, 10))
    assert datetime.fromtimestamp(winter, UTC).hour == 14
    assert datetime.fromtimestamp(summer, UTC).hour == 13


def test_latest_at_or_before() -> None:
    hourly = parse("@hourly")
    now = at(2025, 1, 1, 10, 30)
    assert hourly.latest_at_or_before(now, at(2025, 1, 1, 3)) == at(2025, 1, 1, 10)
    assert hourly.latest_at_or_before(at(2025, 1, 1, 10), 0) == at(2025, 1, 1, 10)
    assert hourly.latest_at_or_before(now, at(2025, 1, 1, 10, 5)) is None
    leap = parse("0 0 29 2 *")
    assert leap.latest_at_or_before(at(2031, 6, 1), 0) == at(2028, 2, 29)
    every_minute = parse("* * * * *")
    assert every_minute.latest_at_or_before(now + 59, at(2024, 1, 1)) == now


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "got 6"),
        ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("* * 0 * *", "day of month field '0': 0 is out of range 1-31"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * 8", "day of week field '8'"),
        ("* * * * FOO", "'FOO' is not a number 0-7 or a name like SUN"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("* * 30 2 *", "never occurs"),
        ("@reboot", "unknown alias '@reboot'"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse(expression)
    assert message in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime"])
def test_bad_time_zones(zone: str) -> None:
    with pytest.raises(CronError, match="time zone"):
        parse("* * * * *", zone)
