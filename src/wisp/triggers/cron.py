"""Standard 5-field cron expressions and their next run, in an IANA time zone.

``minute hour day-of-month month day-of-week``, each ``*``, ``N``, ``A-B``, ``*/S``,
``A-B/S``, ``A/S`` or a comma list of those; month and weekday names (``JAN``,
``MON``); weekday 0 and 7 are Sunday; the aliases ``@yearly`` ``@annually``
``@monthly`` ``@weekly`` ``@daily`` ``@midnight`` ``@hourly``. As in Vixie cron,
when both day fields are restricted a day matches either of them.

Schedules are wall-clock times in the trigger's zone. Across DST changes:

- a time the clocks skip (02:30 when 02:00 jumps to 03:00) runs once, shifted by the
  gap (at 03:30), so a daily job is never silently dropped;
- a time the clocks repeat (02:30 twice when 03:00 falls back to 02:00) runs once,
  at its first occurrence, unless the hour field is ``*``: such schedules ("every
  15 minutes") keep their cadence through both occurrences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wisp.errors import BadRequest

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (field name, low, high, names that stand for low, low+1, ...)
_FIELDS: list[tuple[str, int, int, list[str]]] = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]
_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # Feb 29 exists sometimes
_SEARCH_YEARS = 9  # Feb 29 recurs within 8 years (none in 2100)
# Wall-clock times can run backwards by at most this much at a DST change.
_MAX_FALLBACK = timedelta(hours=3)
_WINDOWS = (60, 3600, 86400, 32 * 86400, 367 * 86400, _SEARCH_YEARS * 366 * 86400)
DEFAULT_TIMEZONE = "UTC"


class CronError(BadRequest):
    """An invalid cron expression or time zone (a 400 from the API)."""


def timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or CronError naming it."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise CronError(f"invalid time zone {name!r}: use an IANA name such as 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_restricted: bool  # day-of-month field does not start with '*'
    weekdays_restricted: bool
    every_hour: bool  # hour field is '*': keep cadence through a repeated hour

    def next_after(self, instant: float) -> float:
        """The first run strictly after ``instant`` (epoch seconds), in epoch seconds."""
        tz = ZoneInfo(self.zone)
        local = datetime.fromtimestamp(instant, tz).replace(tzinfo=None, fold=0)
        local = local.replace(second=0, microsecond=0)
        limit = local.year + _SEARCH_YEARS
        # Wall-clock order is instant order except across a fall-back, where walls up
        # to _MAX_FALLBACK earlier can be later instants: only near one is the scan
        # widened (scanning 3 h of an every-minute schedule on every call is slow).
        start = local - _MAX_FALLBACK if _fell_back(instant, tz) else local
        found = self._scan(start, None, instant, tz, limit)
        if found is None:
            raise CronError(f"cron expression {self.expression!r} never runs")
        best, best_wall = found
        if _fell_back(best, tz):
            wider = self._scan(local - _MAX_FALLBACK, best_wall + _MAX_FALLBACK, instant, tz, limit)
            if wider is not None:
                best = min(best, wider[0])
        return best

    def _scan(
        self, wall: datetime, until: datetime | None, instant: float, tz: ZoneInfo, limit: int
    ) -> tuple[float, datetime] | None:
        """The earliest run after ``instant`` among matching walls from ``wall`` on:
        the first one found, or with ``until`` the best of all up to it."""
        best: tuple[float, datetime] | None = None
        while True:
            found = self._next_wall(wall, limit)
            if found is None or (until is not None and found > until):
                return best
            for run in self._instants(found, tz):
                if run > instant and (best is None or run < best[0]):
                    best = (run, found)
            if best is not None and until is None:
                return best
            wall = found + timedelta(minutes=1)

    def latest_at_or_before(self, instant: float, floor: float) -> float | None:
        """The last run in ``(floor, instant]``, or None when there is none.

        Widening windows keep this cheap: stepping run by run from ``floor`` after a
        week of downtime would walk ten thousand ticks of an every-minute schedule.
        """
        for window in _WINDOWS:
            start = max(floor, instant - window)
            run = self.next_after(start)
            if run <= instant:
                while (following := self.next_after(run)) <= instant:
                    run = following
                return run
            if start == floor:
                return None
        return None

    # -- search ------------------------------------------------------------
    def _day_matches(self, day: datetime) -> bool:
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def _next_wall(self, t: datetime, limit_year: int) -> datetime | None:
        """The first wall-clock minute at or after ``t`` (naive) that matches."""
        while t.year <= limit_year:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(year, month, 1)
            elif not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None

    def _instants(self, wall: datetime, tz: ZoneInfo) -> list[float]:
        """When wall-clock time ``wall`` happens in ``tz``: usually once; see the
        module docstring for the skipped and repeated times of DST changes."""
        first = wall.replace(tzinfo=tz, fold=0)
        second = wall.replace(tzinfo=tz, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.timestamp()]
        back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if back != wall:
            # Skipped: fold=0 reads it with the offset before the jump, which lands
            # just after the gap (02:30 -> 03:30).
            return [first.timestamp()]
        if self.every_hour:
            return [first.timestamp(), second.timestamp()]
        return [first.timestamp()]


def _fell_back(instant: float, tz: ZoneInfo) -> bool:
    """Whether the clocks went back in the _MAX_FALLBACK before ``instant``."""
    before = datetime.fromtimestamp(instant - _MAX_FALLBACK.total_seconds(), tz).utcoffset()
    now = datetime.fromtimestamp(instant, tz).utcoffset()
    return before is not None and now is not None and now < before


def parse(expression: str, zone: str = DEFAULT_TIMEZONE) -> Schedule:
    """Parse ``expression``; raise CronError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise CronError("cron expression is empty: expected 5 fields or an alias like @hourly")
    timezone(zone)
    text = " ".join(expression.split())
    spec = ALIASES.get(text.lower(), text)
    if spec.startswith("@"):
        raise CronError(
            f"invalid cron expression {expression!r}: unknown alias {text!r}; "
            f"use one of {', '.join(ALIASES)}"
        )
    parts = spec.split(" ")
    if len(parts) != 5:
        raise CronError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    values = [
        _field(part, name, low, high, names, expression)
        for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(d % 7 for d in values[4])
    schedule = Schedule(
        expression=text,
        zone=zone,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
        every_hour=parts[1] == "*",
    )
    if not schedule.weekdays_restricted or not schedule.days_restricted:
        _check_days_exist(schedule, expression)
    return schedule


def _check_days_exist(schedule: Schedule, expression: str) -> None:
    if any(day <= _DAYS_IN_MONTH[m - 1] for m in schedule.months for day in schedule.days):
        return
    raise CronError(
        f"invalid cron expression {expression!r}: day {min(schedule.days)} never occurs in "
        f"the month(s) it names, so it would never run"
    )


def _field(
    text: str, name: str, low: int, high: int, names: list[str], expression: str
) -> frozenset[int]:
    def fail(problem: str) -> CronError:
        return CronError(
            f"invalid cron expression {expression!r}: {name} field {text!r}: {problem}"
        )

    def number(token: str) -> int:
        upper = token.upper()
        if upper in names:
            return low + names.index(upper)
        if not token.isdigit():
            allowed = f"a number {low}-{high}" + (f" or a name like {names[0]}" if names else "")
            raise fail(f"{token!r} is not {allowed}")
        value = int(token)
        if not low <= value <= high:
            raise fail(f"{value} is out of range {low}-{high}")
        return value

    result: set[int] = set()
    for item in text.split(","):
        if not item:
            raise fail("empty list item")
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise fail(f"step {step_text!r} must be a positive number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = number(a), number(b)
            if first > last:
                raise fail(f"range {span!r} runs backwards")
        else:
            first = number(span)
            last = high if slash else first
        result.update(range(first, last + 1, step))
    return frozenset(result)
