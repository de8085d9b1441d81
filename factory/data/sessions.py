"""The CME Globex session model, in New York time and DST-correct.

A session trades from 18:00 New York on the previous evening to 17:00 (daily break
17:00-18:00; weekly close Friday 17:00 to Sunday 18:00). A bar at or after 18:00
belongs to the next day's session. US holidays either close the session entirely
(New Year's Day, Good Friday, Christmas) or end it early (13:00 New York; 13:15 on
the day after Thanksgiving). Everything is computed on whole arrays.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd

NY = "America/New_York"
OPEN_MIN = 18 * 60  # 18:00, the previous evening
CLOSE_MIN = 17 * 60  # 17:00
EARLY_CLOSE_MIN = 13 * 60
RTH_OPEN_MIN, RTH_CLOSE_MIN = 9 * 60 + 30, 16 * 60
CLOSED = 0  # close minute of a fully closed session
_NS_PER_MIN = 60_000_000_000
_EPOCH = dt.date(1970, 1, 1)


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date, saturday_to_friday: bool = True) -> dt.date | None:
    if day.weekday() == 5:
        return day - dt.timedelta(days=1) if saturday_to_friday else None
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


@functools.lru_cache(maxsize=256)
def holidays(year: int) -> dict[dt.date, int]:
    """Session dates of `year` that close early or not at all: date -> close minute (0 = closed)."""
    out: dict[dt.date, int] = {}
    new_year = _observed(dt.date(year, 1, 1), saturday_to_friday=False)
    for day in (new_year, _easter(year) - dt.timedelta(days=2), _observed(dt.date(year, 12, 25))):
        if day is not None:
            out[day] = CLOSED
    early = [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Presidents' Day
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(dt.date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    ]
    if year >= 2022:
        early.append(_observed(dt.date(year, 6, 19)))  # Juneteenth
    for day in early:
        out.setdefault(day, EARLY_CLOSE_MIN)
    out.setdefault(_nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1), EARLY_CLOSE_MIN + 15)
    return out


def _close_minutes(session_day: np.ndarray) -> np.ndarray:
    """Close minute (New York) of each session day (days since epoch); 0 = no session."""
    uniq, inverse = np.unique(session_day, return_inverse=True)
    close = np.full(len(uniq), CLOSE_MIN, dtype=np.int64)
    for i, day_num in enumerate(uniq):
        day = _EPOCH + dt.timedelta(days=int(day_num))
        if day.weekday() >= 5:
            close[i] = CLOSED
        else:
            close[i] = holidays(day.year).get(day, CLOSE_MIN)
    return close[inverse]


def _local_minutes(index: pd.DatetimeIndex) -> np.ndarray:
    """Minutes since the epoch on the New York wall clock."""
    local = index.tz_convert(NY).tz_localize(None).as_unit("ns")
    return local.asi8 // _NS_PER_MIN


def session_frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Session and time-of-day columns for UTC bar timestamps (bar start times)."""
    local_min = _local_minutes(index)
    day = local_min // 1440
    minute_of_day = local_min - day * 1440
    session_day = day + (minute_of_day >= OPEN_MIN)
    close_min = _close_minutes(session_day)
    opened = (session_day - 1) * 1440 + OPEN_MIN
    closes = session_day * 1440 + np.where(close_min == CLOSED, CLOSE_MIN, close_min)
    return pd.DataFrame(
        {
            "session_day": session_day.astype(np.int32),
            "et_minute_of_day": minute_of_day.astype(np.int16),
            "et_weekday": ((day + 3) % 7).astype(np.int8),
            "minutes_into_session": (local_min - opened).astype(np.float64),
            "minutes_to_close": (closes - local_min).astype(np.float64),
            "is_early_close": (close_min != CLOSE_MIN) & (close_min != CLOSED),
            "in_rth": (minute_of_day >= RTH_OPEN_MIN) & (minute_of_day < RTH_CLOSE_MIN),
            "in_session": (close_min != CLOSED) & (local_min < closes),
        },
        index=index,
    )


def out_of_session_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Why bars fall outside the Globex session, for the validation report."""
    closed = ~frame["in_session"].to_numpy()
    weekday = frame["et_weekday"].to_numpy()
    minute = frame["et_minute_of_day"].to_numpy()
    weekend = closed & (
        (weekday == 5)
        | ((weekday == 6) & (minute < OPEN_MIN))
        | ((weekday == 4) & (minute >= CLOSE_MIN))
    )
    daily_break = closed & ~weekend & (minute >= CLOSE_MIN) & (minute < OPEN_MIN)
    return {
        "weekend_bars": int(weekend.sum()),
        "daily_break_bars": int(daily_break.sum()),
        "holiday_bars": int((closed & ~weekend & ~daily_break).sum()),
    }
