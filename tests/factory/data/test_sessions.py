"""The Globex session model: DST, daily break, weekends and US holidays."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from factory.data.sessions import _easter, holidays, out_of_session_counts, session_frame


def _frame(*utc: str) -> pd.DataFrame:
    return session_frame(pd.DatetimeIndex(list(utc), tz="UTC"))


@pytest.mark.parametrize(
    ("before_open", "at_open"),
    [
        ("2024-01-07 22:59", "2024-01-07 23:00"),  # winter: 18:00 New York = 23:00 UTC
        ("2024-07-07 21:59", "2024-07-07 22:00"),
    ],  # summer: 18:00 New York = 22:00 UTC
)
def test_sunday_open_is_dst_correct(before_open, at_open):
    f = _frame(before_open, at_open)
    assert f["in_session"].tolist() == [False, True]
    assert f["minutes_into_session"].iloc[1] == 0
    assert f["minutes_to_close"].iloc[1] == 23 * 60


def test_daily_break_and_friday_close():
    f = _frame(
        "2024-01-09 21:59",
        "2024-01-09 22:00",
        "2024-01-09 22:59",
        "2024-01-09 23:00",
        "2024-01-12 21:59",
        "2024-01-12 22:00",
        "2024-01-13 12:00",
    )
    assert f["in_session"].tolist() == [True, False, False, True, True, False, False]
    counts = out_of_session_counts(f)
    assert counts == {"weekend_bars": 2, "daily_break_bars": 2, "holiday_bars": 0}


def test_christmas_is_closed_and_thanksgiving_closes_early():
    f = _frame(
        "2023-12-25 15:00",  # Monday, Christmas: no session
        "2023-12-25 23:00",  # Monday 18:00 NY opens Tuesday's session
        "2023-11-23 17:59",  # Thanksgiving 12:59 NY
        "2023-11-23 18:00",
    )  # Thanksgiving 13:00 NY: closed early
    assert f["in_session"].tolist() == [False, True, True, False]
    assert bool(f["is_early_close"].iloc[2])
    assert f["minutes_to_close"].iloc[2] == 1
    assert out_of_session_counts(f)["holiday_bars"] == 2


@pytest.mark.parametrize(
    ("year", "good_friday"),
    [(2017, dt.date(2017, 4, 14)), (2024, dt.date(2024, 3, 29)), (2025, dt.date(2025, 4, 18))],
)
def test_good_friday(year, good_friday):
    assert holidays(year)[good_friday] == 0


def test_observed_holidays():
    assert holidays(2017)[dt.date(2017, 1, 2)] == 0  # New Year's Day on a Sunday
    assert holidays(2021)[dt.date(2021, 12, 24)] == 0  # Christmas on a Saturday
    assert dt.date(2021, 6, 18) not in holidays(2021)  # Juneteenth only from 2022
    assert holidays(2022)[dt.date(2022, 6, 20)] == 13 * 60


def test_rth_and_time_of_day_columns():
    f = _frame("2024-01-08 14:29", "2024-01-08 14:30", "2024-01-08 20:59", "2024-01-08 21:00")
    assert f["in_rth"].tolist() == [False, True, True, False]
    assert f["et_minute_of_day"].tolist() == [569, 570, 959, 960]
    assert f["et_weekday"].tolist() == [0, 0, 0, 0]


def test_easter_dates():
    assert [_easter(y) for y in (2000, 2019, 2024, 2025)] == [
        dt.date(2000, 4, 23),
        dt.date(2019, 4, 21),
        dt.date(2024, 3, 31),
        dt.date(2025, 4, 20),
    ]
