"""User times to bar times: the one rule every entry point uses.

A time a user writes (``start``/``end`` of a run, of ``load_sample`` or of
``BarStore.slice``, a GTD order's ``good_till``, ``%%backtest --start/--end``) means:

* on **daily** bars, a session date: the date as written (an aware time keeps its own
  local date, as daily data timestamps do);
* on **minute** bars, an instant: a naive time is the exchange's local time (the store's
  ``tz``: the zone the data was given in, America/New_York for the samples), an aware
  time is taken as given. A value without a time of day (``'2012-06-01'``, a
  ``datetime.date``, a naive midnight) used as an *end* (``end``, ``good_till``) means
  the end of that day, so the whole day is included.

Accepted forms: a ``pandas.Timestamp``, ``datetime.datetime``/``datetime.date``,
``numpy.datetime64``, or a string pandas parses (``'2012-06-01'``,
``'2012-06-01 10:30'``, ``'2012-06-01T10:30-04:00'``). Anything else raises a
``ValueError`` that names the argument.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

ACCEPTED = ("a date or time such as '2012-06-01' or '2012-06-01 10:30' (a str, pandas.Timestamp, "
            "datetime or numpy.datetime64)")
_DAY = pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # the last instant of a day (to the µs)


def parse_time(value: Any, arg: str) -> pd.Timestamp:
    """``value`` as a Timestamp, or a ValueError naming ``arg`` and the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, str | _dt.date | np.datetime64 | pd.Timestamp):
        raise ValueError(f"`{arg}`={value!r} is not a time; pass {ACCEPTED}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"`{arg}`={value!r} is not a time pandas can read ({exc}); pass {ACCEPTED}") from None
    if ts is pd.NaT:
        raise ValueError(f"`{arg}`={value!r} is not a time (NaT); pass {ACCEPTED}")
    return ts


def to_bar_time(value: Any, *, arg: str, frequency: str, tz: str | None = None, end: bool = False
                ) -> pd.Timestamp:
    """The bar time ``value`` means (see the module docstring): a naive midnight session
    date on daily bars, a UTC instant on minute bars. ``end=True`` for upper bounds
    (a day without a time of day then covers the whole day). ``tz`` is the exchange's
    zone (minute bars; default America/New_York)."""
    ts = parse_time(value, arg)
    if frequency == "daily":
        if ts.tzinfo is not None:
            ts = ts.tz_localize(None)  # its own local date
        return ts.normalize().as_unit("ns")
    if ts.tzinfo is None:
        whole_day = end and ts == ts.normalize()
        zone = tz or "America/New_York"
        try:
            ts = ts.tz_localize(zone, ambiguous="raise", nonexistent="shift_forward")
        except Exception as exc:  # an hour that happens twice when the clocks go back
            raise ValueError(f"`{arg}`={value!r} is ambiguous in {zone} ({exc}); pass an aware time, "
                             f"e.g. pd.Timestamp({str(value)!r}, tz='UTC')") from None
        if whole_day:
            ts = (ts.tz_localize(None) + _DAY).tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
    return ts.tz_convert("UTC").as_unit("ns")


def bar_range(index: pd.DatetimeIndex, start: Any, end: Any, *, frequency: str, tz: str | None = None
              ) -> tuple[int, int]:
    """Positions ``lo, hi`` (inclusive) of the bars of ``index`` from ``start`` to ``end``
    (either may be None: from the first / to the last bar). Raises ValueError when they
    select no bar."""
    lo, hi = 0, len(index) - 1
    if start is not None:
        lo = int(index.searchsorted(to_bar_time(start, arg="start", frequency=frequency, tz=tz), side="left"))
    if end is not None:
        hi = int(index.searchsorted(to_bar_time(end, arg="end", frequency=frequency, tz=tz, end=True),
                                    side="right")) - 1
    if lo > hi or lo >= len(index) or hi < 0:
        span = f"{index[0]} to {index[-1]}" if len(index) else "no bars"
        raise ValueError(f"`start`={start!r}, `end`={end!r} select no bars; the data runs from {span}"
                         + (f" (naive times are {tz} time)" if frequency == "minute" else ""))
    return lo, hi
