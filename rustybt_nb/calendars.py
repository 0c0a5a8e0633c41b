"""Exchange calendars, built once per process for whole years around the data.

``exchange_calendars`` caches calendars by (name, start, end); asking for whole
calendar years with a month of margin makes the clock and the synthetic-minute
generator share one instance per span instead of building several (each build costs a
few tenths of a second).
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

MARGIN = pd.Timedelta(days=40)
_CALENDAR_TZ = {"XNYS": "America/New_York", "NYSE": "America/New_York", "XNAS": "America/New_York",
                "24/7": "UTC", "ALWAYS_OPEN": "UTC"}


def calendar_tz(name: str | None) -> str:
    """The time zone of calendar ``name`` (UTC for none); common ones without loading
    ``exchange_calendars``."""
    if name is None:
        return "UTC"
    tz = _CALENDAR_TZ.get(name.upper())
    if tz is None:
        import exchange_calendars as xcals

        tz = str(xcals.get_calendar(name).tz)
    return tz


def exchange_calendar(name: str, first: pd.Timestamp, last: pd.Timestamp) -> Any:
    """The ``exchange_calendars`` calendar ``name`` covering ``first - 40 days`` to
    ``last + 40 days`` (rounded out to whole years, clipped to the calendar's range)."""
    import exchange_calendars as xcals

    start = pd.Timestamp(year=(pd.Timestamp(first) - MARGIN).year, month=1, day=1)
    end = pd.Timestamp(year=(pd.Timestamp(last) + MARGIN).year, month=12, day=31)
    with warnings.catch_warnings():  # exchange_calendars' own pandas deprecation noise
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return xcals.get_calendar(name, start=start, end=end)
        except ValueError:  # outside the calendar's bounds: let it pick its own
            cal = xcals.get_calendar(name)
            lo = max(start, cal.first_session)
            hi = min(end, cal.last_session)
            return xcals.get_calendar(name, start=lo, end=hi)
