"""The simulation clock: the data's own timestamps grouped into sessions.

Daily data: every bar is a session. Minute data: bars are grouped by their local date
in the calendar's time zone (New York for ``'XNYS'``). Session open and close times
(used by ``time_rules``) come from ``exchange_calendars`` when the session is one of the
calendar's (early closes included); otherwise the first bar minus one minute and the
last bar stand in for them. The exchange calendar is loaded only when needed.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .calendars import calendar_tz
from .data.bar_store import BarStore


class Clock:
    """Session structure of a bar store."""

    def __init__(self, store: BarStore) -> None:
        self.store = store
        self.index = store.index
        self.frequency = store.frequency
        self.calendar_name = store.calendar or ("XNYS" if store.frequency == "minute" else None)
        n = len(store.index)
        if store.frequency == "daily":
            # one bar per session: bar k is session k, its first and its last bar (one
            # read-only array serves all three)
            bars = np.arange(n, dtype=np.int64)
            bars.flags.writeable = False
            self.session_of_bar = bars
            labels = store.index
            if labels.tz is not None:
                labels = labels.tz_convert(None)
            # (loaders store daily bars at midnight already: no normalised copy to build then)
            self.session_labels = labels if labels.is_normalized else labels.normalize()
            self.session_first_bar = self.session_last_bar = bars
        else:
            local = store.index.tz_convert(calendar_tz(self.calendar_name))
            days = _local_dates(local)
            codes = np.empty(n, dtype=np.int64)
            if n:
                change = np.empty(n, dtype=bool)
                change[0] = True
                change[1:] = days.asi8[1:] != days.asi8[:-1]
                codes = np.cumsum(change) - 1
                self.session_first_bar = np.flatnonzero(change).astype(np.int64)
            else:
                self.session_first_bar = np.zeros(0, dtype=np.int64)
            self.session_of_bar = codes
            self.session_labels = days[self.session_first_bar]
            self.session_last_bar = np.append(self.session_first_bar[1:] - 1, n - 1).astype(np.int64) if n else \
                np.zeros(0, dtype=np.int64)

    @cached_property
    def is_session_end(self) -> list[bool]:
        """Per bar: True at the last bar of a session (a list: the event loop indexes it)."""
        end = np.zeros(len(self.index), dtype=bool)
        end[self.session_last_bar] = True
        return end.tolist()

    @cached_property
    def is_session_start(self) -> list[bool]:
        """Per bar: True at the first bar of a session."""
        start = np.zeros(len(self.index), dtype=bool)
        start[self.session_first_bar] = True
        return start.tolist()

    @property
    def n_sessions(self) -> int:
        return len(self.session_labels)

    @cached_property
    def calendar_sessions(self) -> pd.DatetimeIndex | None:
        """The calendar's sessions around the data (a month either side), or None when
        the data's sessions are not all calendar sessions."""
        name = self.calendar_name
        if not name or not len(self.session_labels):
            return None
        first, last = self.session_labels[0], self.session_labels[-1]
        if name.upper() in ("24/7", "ALWAYS_OPEN"):
            sessions = pd.date_range(first - pd.Timedelta(days=40), last + pd.Timedelta(days=40), freq="D")
        else:
            cal = self._calendar(first, last)
            if cal is None:
                return None
            sessions = cal.sessions
        if not self.session_labels.isin(sessions).all():
            return None
        return sessions

    def _calendar(self, first: pd.Timestamp, last: pd.Timestamp):
        from .calendars import exchange_calendar

        try:
            return exchange_calendar(self.calendar_name, first, last)
        except Exception:  # unknown calendar name or no sessions: fall back to the data's own sessions
            return None

    @cached_property
    def half_days(self) -> np.ndarray:
        """Per session: True for the calendar's early closes (shorter sessions for
        minute data without a calendar)."""
        n = len(self.session_labels)
        name = self.calendar_name
        if name and name.upper() not in ("24/7", "ALWAYS_OPEN") and n:
            cal = self._calendar(self.session_labels[0], self.session_labels[-1])
            if cal is not None:
                return np.asarray(self.session_labels.isin(cal.early_closes))
        if self.frequency == "minute" and n:
            opens, closes = self.session_bounds
            length = closes - opens
            return np.asarray(length < length.max())
        return np.zeros(n, dtype=bool)

    @cached_property
    def session_bounds(self) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
        """(open, close) time of each session, in the index's time zone."""
        first = self.index[self.session_first_bar]
        last = self.index[self.session_last_bar]
        opens = first - pd.Timedelta(minutes=1)
        closes = last
        name = self.calendar_name
        if self.frequency == "minute" and name and name.upper() not in ("24/7", "ALWAYS_OPEN"):
            cal = self._calendar(self.session_labels[0], self.session_labels[-1])
            if cal is not None:
                sched = cal.schedule
                known = np.asarray(self.session_labels.isin(sched.index))
                if known.any():
                    opens = _merge(opens, sched["open"].reindex(self.session_labels), known)
                    closes = _merge(closes, sched["close"].reindex(self.session_labels), known)
        return opens, closes

    def bar_of(self, dt: object, side: str = "left") -> int:
        return int(self.index.searchsorted(pd.Timestamp(dt), side=side))


def _local_dates(local: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Each timestamp's local date (midnight, tz-naive): ``local.normalize().tz_localize(None)``
    without the frequency inference ``normalize`` does over the whole index."""
    wall = local.tz_localize(None).to_numpy()
    return pd.DatetimeIndex(wall.astype("datetime64[D]").astype(wall.dtype))


def _merge(fallback: pd.DatetimeIndex, calendar: pd.Series, known: np.ndarray) -> pd.DatetimeIndex:
    """Calendar times where ``known``, else the fallback (both tz-aware)."""
    fb = fallback.as_unit("ns").asi8
    cal = pd.DatetimeIndex(calendar).as_unit("ns").asi8
    merged = np.where(known, cal, fb)
    return pd.DatetimeIndex(pd.to_datetime(merged, utc=True)).tz_convert(fallback.tz)
