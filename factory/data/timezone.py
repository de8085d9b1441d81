"""The timezone of bar timestamps, read from the CME daily break (17:00-18:00 New York).

Globex closes every weekday from 17:00 to 18:00 New York time, winter and summer. Read
in the right timezone, Monday to Thursday bars leave that New York hour empty while
the hours either side are busy; read in a wrong one, the empty hour moves and the
break hour fills. Each season (New York standard time, daylight saving time) is
judged on its own, so a zone that fits January but not July (a fixed offset such as
Etc/GMT+5 where the vendor followed New York's DST) is caught.

- `survey(naive)`: how well each candidate (New York, Chicago, UTC) fits, and the one
  that fits every season present (`--tz auto`);
- `fit_warning(utc, ...)`: a warning when the zone used puts the break at another hour;
- `end_stamp_warning(utc)`: bars stamped at their end (a bar at 17:00 New York every
  day, none at 18:00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NY = "America/New_York"
CANDIDATES = (NY, "America/Chicago", "UTC")
BREAK_HOUR = 17
MIN_DAYS = 2  # Monday-Thursday dates needed to judge a season
EMPTY = 0.1  # break hour at most this full (per typical hour): the break is there
FULL = 0.5  # break hour at least this full: the zone misplaces the break
BUSY = 0.3  # hours either side of the break at least this full
_NS_MIN = 60_000_000_000
_EDT_NS = -4 * 3600 * 1_000_000_000


@dataclass(frozen=True)
class SeasonFit:
    """The New York hour profile of one season's Monday-Thursday bars."""

    days: int
    break_fill: float  # bars 17:00-18:00 New York per typical hour (0: empty)
    edge_fill: float  # the emptier of 16:00 and 18:00, per typical hour
    quiet_hour: int  # the New York hour with the fewest bars
    quiet_fill: float  # its bars per typical hour (near 0: the bars do have a break)

    @property
    def fits(self) -> bool:
        return self.break_fill <= EMPTY and self.edge_fill >= BUSY

    def to_dict(self) -> dict:
        return {
            "days": self.days,
            "break_fill": round(self.break_fill, 4),
            "edge_fill": round(self.edge_fill, 4),
            "quiet_hour_new_york": self.quiet_hour,
            "quiet_fill": round(self.quiet_fill, 4),
        }


def break_fit(utc: pd.DatetimeIndex) -> dict[str, SeasonFit]:
    """Per season with enough days ('winter', 'summer'), how the bars sit around the break."""
    utc = utc[~utc.isna()]
    if len(utc) == 0:
        return {}
    local = utc.tz_convert(NY).tz_localize(None).as_unit("ns").asi8
    summer = (local - utc.as_unit("ns").asi8) == _EDT_NS
    minutes = local // _NS_MIN
    day = minutes // 1440
    hour = (minutes % 1440) // 60
    weekday = (day + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    out = {}
    for season, in_season in (("winter", ~summer), ("summer", summer)):
        sel = in_season & (weekday <= 3)
        days = len(np.unique(day[sel]))
        hours = np.bincount(hour[sel], minlength=24).astype(np.float64)
        typical = float(np.median(np.delete(hours, BREAK_HOUR)))
        if days < MIN_DAYS or typical <= 0:
            continue
        out[season] = SeasonFit(
            days,
            hours[BREAK_HOUR] / typical,
            min(hours[BREAK_HOUR - 1], hours[BREAK_HOUR + 1]) / typical,
            int(np.argmin(hours)),
            float(hours.min()) / typical,
        )
    return out


def _as_utc(naive: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    return naive.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")


@dataclass(frozen=True)
class Survey:
    """Each candidate's fit per season, and the one candidate that fits all (or None)."""

    fits: dict[str, dict[str, SeasonFit]]

    @property
    def matching(self) -> list[str]:
        return [tz for tz, f in self.fits.items() if f and all(s.fits for s in f.values())]

    @property
    def tz(self) -> str | None:
        return self.matching[0] if len(self.matching) == 1 else None

    @property
    def confidence(self) -> str:
        if self.tz is None:
            return "none"
        seasons = self.fits[self.tz]
        clean = max(s.break_fill for s in seasons.values()) <= EMPTY / 2
        return "high" if len(seasons) == 2 and clean else "medium"

    def describe(self) -> str:
        """One line: what was detected and how sure it is."""
        seasons = self.fits[self.tz]
        empty = 1 - max(s.break_fill for s in seasons.values())
        days = sum(s.days for s in seasons.values())
        judged = " and ".join(seasons)
        note = "" if len(seasons) == 2 else f"; only {judged} bars, the DST switch is unchecked"
        return (
            f"--tz auto: the timestamps are {self.tz} time (daily break at 17:00-18:00 New "
            f"York in {judged}, {empty:.0%} empty over {days} days; confidence "
            f"{self.confidence}{note})"
        )

    def to_dict(self) -> dict:
        return {
            "tz": self.tz,
            "confidence": self.confidence,
            "candidates": {
                tz: {s: f.to_dict() for s, f in fits.items()} for tz, fits in self.fits.items()
            },
        }


def survey(naive: pd.DatetimeIndex) -> Survey:
    """How naive timestamps fit the daily break when read in each candidate timezone."""
    return Survey({tz: break_fit(_as_utc(naive, tz)) for tz in CANDIDATES})


def undetected_reason(found: Survey) -> str:
    """Why `--tz auto` found no timezone (for the refusal)."""
    if not any(found.fits.values()):
        return f"too few weekdays of bars (need {MIN_DAYS} Monday-Thursday dates)"
    if len(found.matching) > 1:
        return f"the daily break fits several timezones ({', '.join(found.matching)})"
    partial = [
        f"{tz} fits {' and '.join(s for s, f in fits.items() if f.fits)} only"
        for tz, fits in found.fits.items()
        if any(f.fits for f in fits.values())
    ]
    detail = f" ({'; '.join(partial)})" if partial else ""
    return (
        "no daily break at 17:00-18:00 New York time in every season when read as "
        f"New York, Chicago or UTC time{detail}"
    )


def fit_warning(
    utc: pd.DatetimeIndex, read_as: str, better: str | None, aware: bool = False
) -> str | None:
    """A warning when the bars, read as `read_as`, have their daily break at another hour
    than 17:00 New York in some season (bars with no break at all are not judged)."""
    fits = break_fit(utc)
    wrong = [s for s, f in fits.items() if f.break_fill >= FULL and f.quiet_fill <= EMPTY]
    if not wrong:
        return None
    quiet = ", ".join(f"{fits[s].quiet_hour:02d}:00 New York in {s}" for s in wrong)
    if aware:
        fix = "check the UTC offsets in the file (--tz applies to naive timestamps only)"
    elif better and better != read_as:
        fix = f"pass --tz {better} if that is their timezone"
    else:
        fix = "pass the timestamps' own timezone with --tz"
    return (
        f"read as {read_as}, the daily break of the bars falls at {quiet}, not at 17:00 "
        f"New York (the Globex break); {fix}"
    )


def end_stamp_warning(utc: pd.DatetimeIndex) -> str | None:
    """A warning when bars look stamped at their end: at 17:00 New York, not at 18:00."""
    utc = utc[~utc.isna()]
    if len(utc) == 0:
        return None
    minutes = utc.tz_convert(NY).tz_localize(None).as_unit("ns").asi8 // _NS_MIN
    day, minute = minutes // 1440, minutes % 1440
    weekday = (day + 3) % 7
    sel = weekday <= 3
    days = len(np.unique(day[sel & (minute // 60 == BREAK_HOUR - 1)]))
    at_close = int((sel & (minute == BREAK_HOUR * 60)).sum())
    at_open = int((sel & (minute == (BREAK_HOUR + 1) * 60)).sum())
    if days < MIN_DAYS or at_close < 0.5 * days or at_open > 0.2 * at_close:
        return None
    return (
        f"the bars look stamped at their end, not their start: {at_close} of {days} days have "
        "a bar at 17:00 New York (inside the daily break, so it is dropped) and "
        f"{at_open} a bar at 18:00; give bars labelled by their start minute (1 minute earlier)"
    )
