"""``schedule_function`` rules: on which sessions (date rules) and at which bar of the
session (time rules) a function runs.

Date rules are evaluated on the exchange calendar's sessions when the data's sessions
are calendar sessions (so ``month_start`` means the month's first trading session even
if the backtest starts mid-month, and then it does not fire that month); otherwise on
the data's own sessions.

Time rules apply to minute data; with daily data a scheduled function runs once on
each selected session, before ``handle_data``. ``market_open(minutes=m, hours=h)`` runs
on the first bar stamped at least ``open + offset`` (minute bars are stamped by their
end, so the default offset of 0 picks the session's first bar and ``minutes=30`` picks
the bar ending at 10:00 New York time). ``market_close(minutes=m)`` runs on the last bar
stamped at most ``close - offset``; its default offset is 1 minute (15:59 for a 16:00
close, as Zipline), leaving one bar for orders to fill. ``every_minute()`` runs on every
bar. A rule whose bar is not in the data for a session does not run that session.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

from .errors import ScheduleError


def _offset(offset: Any, hours: Any, minutes: Any, default_minutes: int) -> pd.Timedelta:
    if offset is not None:
        if hours is not None or minutes is not None:
            raise ScheduleError("give either `offset` or `hours`/`minutes`, not both")
        if isinstance(offset, (_dt.timedelta, pd.Timedelta)):
            td = pd.Timedelta(offset)
        else:
            raise ScheduleError(f"`offset` must be a timedelta, got {offset!r}; or use minutes=... / hours=...")
    else:
        for name, v in (("hours", hours), ("minutes", minutes)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
                raise ScheduleError(f"`{name}` must be a non-negative int, got {v!r}")
        if hours is None and minutes is None:
            td = pd.Timedelta(minutes=default_minutes)
        else:
            td = pd.Timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    if td < pd.Timedelta(0) or td >= pd.Timedelta(hours=24):
        raise ScheduleError(f"the offset must be between 0 and 24 hours, got {td}")
    return td


# ============================================================== date rules
class DateRule:
    """Selects sessions."""

    def mask(self, sessions: pd.DatetimeIndex, reference: pd.DatetimeIndex | None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"date_rules.{self.name}({args})"

    name = "rule"


class EveryDay(DateRule):
    name = "every_day"

    def mask(self, sessions, reference):
        return np.ones(len(sessions), dtype=bool)


class _PeriodRule(DateRule):
    """The n-th session from the start (or end) of each week / month."""

    period = "W"
    from_end = False

    def __init__(self, days_offset: int = 0) -> None:
        if isinstance(days_offset, bool) or not isinstance(days_offset, (int, np.integer)) or days_offset < 0:
            raise ScheduleError(f"`days_offset` must be a non-negative int, got {days_offset!r}")
        self.days_offset = int(days_offset)

    def mask(self, sessions, reference):
        ref = reference if reference is not None else sessions
        if self.period == "W":
            key = ref.to_period("W-SUN").asi8 if len(ref) else np.zeros(0, dtype=np.int64)
        else:
            key = (ref.year * 12 + ref.month).to_numpy()
        key = np.asarray(key)
        n = len(ref)
        if n == 0:
            return np.zeros(len(sessions), dtype=bool)
        new = np.empty(n, dtype=bool)
        new[0] = True
        new[1:] = key[1:] != key[:-1]
        group_start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
        last = np.empty(n, dtype=bool)
        last[-1] = True
        last[:-1] = new[1:]
        idx_end = np.arange(n)[last]
        group_end = idx_end[np.searchsorted(idx_end, np.arange(n))]
        rank = (group_end - np.arange(n)) if self.from_end else (np.arange(n) - group_start)
        chosen = ref[rank == self.days_offset]
        return np.asarray(sessions.isin(chosen))


class WeekStart(_PeriodRule):
    name = "week_start"
    period, from_end = "W", False


class WeekEnd(_PeriodRule):
    name = "week_end"
    period, from_end = "W", True


class MonthStart(_PeriodRule):
    name = "month_start"
    period, from_end = "M", False


class MonthEnd(_PeriodRule):
    name = "month_end"
    period, from_end = "M", True


class date_rules:  # noqa: N801 - Zipline's public name
    """Factories of date rules (Zipline names)."""

    every_day = staticmethod(EveryDay)
    week_start = staticmethod(WeekStart)
    week_end = staticmethod(WeekEnd)
    month_start = staticmethod(MonthStart)
    month_end = staticmethod(MonthEnd)


# ============================================================== time rules
class TimeRule:
    """Selects one bar (or every bar) of a session in minute mode."""

    name = "rule"

    def bars(self, clock: Any, session_ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"time_rules.{self.name}({args})"


class MarketOpen(TimeRule):
    name = "market_open"

    def __init__(self, offset: Any = None, hours: Any = None, minutes: Any = None) -> None:
        self.offset = _offset(offset, hours, minutes, default_minutes=0)

    def bars(self, clock, session_ids):
        opens, _ = clock.session_bounds
        target = opens[session_ids] + self.offset
        pos = clock.index.searchsorted(target, side="left")
        ok = pos <= clock.session_last_bar[session_ids]
        return np.asarray(pos)[ok]


class MarketClose(TimeRule):
    name = "market_close"

    def __init__(self, offset: Any = None, hours: Any = None, minutes: Any = None) -> None:
        self.offset = _offset(offset, hours, minutes, default_minutes=1)

    def bars(self, clock, session_ids):
        _, closes = clock.session_bounds
        target = closes[session_ids] - self.offset
        pos = clock.index.searchsorted(target, side="right") - 1
        ok = pos >= clock.session_first_bar[session_ids]
        return np.asarray(pos)[ok]


class EveryMinute(TimeRule):
    name = "every_minute"

    def bars(self, clock, session_ids):
        want = np.zeros(clock.n_sessions, dtype=bool)
        want[session_ids] = True
        return np.flatnonzero(want[clock.session_of_bar])


class time_rules:  # noqa: N801 - Zipline's public name
    """Factories of time rules (Zipline names)."""

    market_open = staticmethod(MarketOpen)
    market_close = staticmethod(MarketClose)
    every_minute = staticmethod(EveryMinute)


def fire_bars(clock: Any, date_rule: DateRule, time_rule: TimeRule | None, half_days: bool = True) -> np.ndarray:
    """Bar positions at which a scheduled function runs, sorted."""
    sessions = clock.session_labels
    mask = date_rule.mask(sessions, clock.calendar_sessions if not isinstance(date_rule, EveryDay) else None)
    if not half_days:
        mask &= ~clock.half_days
    session_ids = np.flatnonzero(mask)
    if clock.frequency == "daily":
        return session_ids.astype(np.int64)  # one bar per session
    rule = time_rule if time_rule is not None else MarketOpen()
    return np.asarray(rule.bars(clock, session_ids), dtype=np.int64)


class Schedule:
    """All scheduled functions of a run, as a sorted map bar -> functions."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, np.ndarray]] = []
        self._by_bar: dict[int, list[Any]] = {}
        self._bars: list[int] = []
        self._pos = 0

    def add(self, func: Any, bars: np.ndarray, after: int) -> None:
        bars = bars[bars > after]
        self.entries.append((func, bars))
        for b in bars.tolist():
            self._by_bar.setdefault(b, []).append(func)
        self._bars = sorted(self._by_bar)
        self._pos = int(np.searchsorted(self._bars, after + 1))

    def next_bar(self) -> int:
        return self._bars[self._pos] if self._pos < len(self._bars) else -1

    def pop(self, bar: int) -> list[Any]:
        """Functions due at ``bar`` (the caller checked ``next_bar() == bar``)."""
        self._pos += 1
        return self._by_bar.get(bar, [])
