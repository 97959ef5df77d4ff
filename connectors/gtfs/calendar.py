"""Service calendars: calendar.txt and calendar_dates.txt into one services × days matrix.

Either file may be absent (TriMet ships calendar_dates only, OTP#716). Additions and
removals in calendar_dates.txt are applied over the weekly pattern of calendar.txt.
A far-future ``end_date`` (9999-12-31, OTP#2925) would make the matrix huge, so the span
is clamped to ``max_days`` (fewer when there are very many services) and the clamp is
reported as an issue.
"""

from __future__ import annotations

import numpy as np

from .errors import IssueLog
from .parse import INVALID, Interner, Memo, parse_date, parse_int
from .reader import Chunk

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CALENDAR_COLUMNS = ("service_id", *WEEKDAYS, "start_date", "end_date")
CALENDAR_DATES_COLUMNS = ("service_id", "date", "exception_type")
DEFAULT_MAX_DAYS = 7400  # about 20 years
#: The services × days matrix may not exceed this many cells (bytes).
MAX_MATRIX_CELLS = 64 * 1024 * 1024


def build_service_matrix(
    calendar: Chunk,
    calendar_dates: Chunk,
    issues: IssueLog,
    max_days: int = DEFAULT_MAX_DAYS,
) -> tuple[Interner, int, np.ndarray]:
    """Return (service ids, ordinal of day 0, bool matrix ``active[service, day]``)."""
    services = Interner()
    dates = Memo(parse_date)

    # calendar.txt, vectorised: one row per service with a weekday mask and a date range.
    cal_ok: list[int] = []
    for i in range(len(calendar)):
        line = calendar.lines[i]
        sid = calendar.get("service_id")[i]
        start = dates[calendar.get("start_date")[i]]
        end = dates[calendar.get("end_date")[i]]
        if not sid:
            issues.add("calendar.txt", line, "missing_field", "service_id is empty")
        elif start == INVALID or end == INVALID:
            issues.add("calendar.txt", line, "invalid_date", "start_date/end_date not YYYYMMDD")
        elif end < start:
            issues.add("calendar.txt", line, "invalid_date", "end_date before start_date")
        else:
            cal_ok.append(i)
    cal_service = np.array([services[calendar.get("service_id")[i]] for i in cal_ok], np.int32)
    cal_start = np.array([dates[calendar.get("start_date")[i]] for i in cal_ok], np.int64)
    cal_end = np.array([dates[calendar.get("end_date")[i]] for i in cal_ok], np.int64)
    weekly = np.zeros((len(cal_ok), 7), dtype=bool)
    for w, day in enumerate(WEEKDAYS):
        col = calendar.get(day, "0")
        weekly[:, w] = [parse_int(col[i]) == 1 for i in cal_ok]

    # calendar_dates.txt
    cd_service: list[int] = []
    cd_date: list[int] = []
    cd_add: list[bool] = []
    sids = calendar_dates.get("service_id")
    days = calendar_dates.get("date")
    kinds = calendar_dates.get("exception_type")
    for i in range(len(calendar_dates)):
        line = calendar_dates.lines[i]
        day = dates[days[i]]
        kind = kinds[i].strip()
        if not sids[i]:
            issues.add("calendar_dates.txt", line, "missing_field", "service_id is empty")
        elif day == INVALID:
            issues.add("calendar_dates.txt", line, "invalid_date", f"date {days[i]!r}")
        elif kind not in ("1", "2"):
            issues.add("calendar_dates.txt", line, "invalid_value", f"exception_type {kind!r}")
        else:
            cd_service.append(services[sids[i]])
            cd_date.append(day)
            cd_add.append(kind == "1")

    bounds = [*cal_start.tolist(), *cal_end.tolist(), *cd_date]
    if not bounds:
        # No usable calendar row: nothing is ever active; day 0 is arbitrary.
        return services, 1, np.zeros((len(services.values), 0), bool)
    day0, last = min(bounds), max(bounds)
    n_days = last - day0 + 1
    max_days = min(max_days, max(366, MAX_MATRIX_CELLS // max(1, len(services.values))))
    if n_days > max_days:
        issues.add(
            "calendar.txt",
            None,
            "calendar_span_clamped",
            f"service span of {n_days} days clamped to {max_days}",
            "warning",
        )
        n_days = max_days

    active = np.zeros((len(services.values), n_days), dtype=bool)
    ordinals = day0 + np.arange(n_days, dtype=np.int64)
    weekday = (ordinals - 1) % 7  # ordinal 1 (0001-01-01) was a Monday
    for row in range(len(cal_ok)):
        in_range = (ordinals >= cal_start[row]) & (ordinals <= cal_end[row])
        active[cal_service[row]] |= in_range & weekly[row, weekday]

    if cd_date:
        s = np.array(cd_service, np.int32)
        d = np.array(cd_date, np.int64) - day0
        add = np.array(cd_add, bool)
        keep = d < n_days
        # Additions first, then removals, so a contradictory pair ends up removed.
        active[s[keep & add], d[keep & add]] = True
        active[s[keep & ~add], d[keep & ~add]] = False
    return services, day0, active
