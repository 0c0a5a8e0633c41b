"""Bundled sample data.

* ``AAPL, FB, GOOG, IBM, MSFT``: real daily OHLCV, 2000-03-01 .. 2013-03-01 (FB from
  2012-05-18, GOOG from 2004-08-19), from the ``bokeh_sampledata`` package's
  ``stocks.csv.gz`` (the loader is BSD-3 licensed; the prices are Quandl's public-domain
  WIKI data set). Split- and dividend-adjusted by default (see :func:`load_sample`).
  Minute bars are synthetic (:mod:`rustybt_nb.data.synthetic`) and labelled so.
* ``TestBrackets``: the close-only triangle wave (100..300, +/-10 per calendar day,
  weekends included, 2018-01-01 .. 2018-04-30) from the Backtest Rookies bracket-order
  blog post, shipped in ``rustybt_nb/data/_samples/test_brackets.csv``.

The stock CSV is read on first use and kept in a module-level cache; nothing is read
at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import did_you_mean, fmt_list
from .bar_store import BarStore
from .loaders import from_frame
from .times import to_bar_time
from .validation import normalize_frequency

__all__ = ["STOCK_SAMPLES", "TEST_BRACKETS", "list_samples", "load_sample"]

#: The real stock samples, in the order :func:`load_sample` returns them.
STOCK_SAMPLES = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
#: Sample name of the bracket-order blog series; its symbol in the store is ``'TESTBRACKETS'``.
TEST_BRACKETS = "TestBrackets"
_TB_SYMBOL = "TESTBRACKETS"
_TB_FILE = Path(__file__).resolve().parent / "_samples" / "test_brackets.csv"
_STOCK_LICENSE = "public domain (Quandl WIKI) via bokeh_sampledata (BSD-3 loader)"
_TB_LICENSE = "Backtest Rookies blog series, regenerated from its formula"

_EXCHANGE_TZ = "America/New_York"  # the stock samples trade on XNYS

_CACHE: dict[str, Any] = {}


def _stock_path() -> str:
    try:
        from bokeh_sampledata import package_path
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ImportError(
            "the stock samples come from the bokeh_sampledata package: pip install bokeh_sampledata"
        ) from exc
    return str(package_path("stocks.csv.gz"))


def _stock_table() -> dict[str, pd.DataFrame]:
    """``{ticker: raw frame}`` with columns open, high, low, close, volume, adj_close (cached)."""
    table = _CACHE.get("stocks")
    if table is None:
        raw = pd.read_csv(_stock_path())
        raw["Date"] = pd.to_datetime(raw["Date"], format="%Y-%m-%d")
        raw = raw.rename(columns={"Open": "open", "High": "high", "Low": "low", "Close": "close",
                                  "Volume": "volume", "Adj Close": "adj_close"})
        table = {}
        for ticker, g in raw.groupby("Ticker", sort=True):
            frame = g.set_index("Date")[["open", "high", "low", "close", "volume", "adj_close"]]
            frame = frame.astype(np.float64)
            frame.index = pd.DatetimeIndex(frame.index, name=None).as_unit("ns")
            table[str(ticker)] = frame
        _CACHE["stocks"] = table
    return table


def _stock_daily(ticker: str, adjusted: bool) -> pd.DataFrame:
    """One stock's daily bars (a fresh frame; the cache is never handed out)."""
    raw = _stock_table()[ticker]
    cols = ["open", "high", "low", "close"]
    if adjusted:
        factor = raw["adj_close"].to_numpy() / raw["close"].to_numpy()
        out = pd.DataFrame({c: raw[c].to_numpy() * factor for c in cols}, index=raw.index.copy())
        out["volume"] = np.round(raw["volume"].to_numpy() / factor)
    else:
        out = raw[[*cols, "volume"]].copy()
    out.attrs = {"symbol": ticker}
    return out


def _parse_names(name: str | Sequence[str] | None) -> list[str]:
    """Sample names -> canonical names; raises ValueError with suggestions."""
    if name is None:
        return list(STOCK_SAMPLES)
    names = [name] if isinstance(name, str) else list(name)
    if not names:
        raise ValueError(f"`name` is an empty list; give sample names from {fmt_list(_all_names())}")
    out: list[str] = []
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"`name` must be a sample name (str) or a list of them, got {n!r}")
        key = n.strip()
        if key.upper() in STOCK_SAMPLES:
            out.append(key.upper())
        elif key.lower().replace("_", "").replace("-", "").replace(" ", "") == "testbrackets":
            out.append(TEST_BRACKETS)
        else:
            raise ValueError(
                f"unknown sample {n!r}; the samples are {fmt_list(_all_names())} "
                f"(see rustybt_nb.data.list_samples()).{did_you_mean(key, _all_names())}"
            )
    if TEST_BRACKETS in out and len(out) > 1:
        raise ValueError(
            f"`name`={names!r}: 'TestBrackets' (a 7-day-a-week series) cannot be combined with the "
            "stock samples; load it on its own"
        )
    return list(dict.fromkeys(out))


def _all_names() -> list[str]:
    return [*STOCK_SAMPLES, TEST_BRACKETS]


def _session_date(value: Any, arg: str) -> pd.Timestamp:
    """The session date a user's ``start``/``end`` falls on (in exchange time for a time of
    day: see :mod:`rustybt_nb.data.times`)."""
    ts = to_bar_time(value, arg=arg, frequency="minute", tz=_EXCHANGE_TZ)
    return ts.tz_convert(_EXCHANGE_TZ).tz_localize(None).normalize()


def load_sample(
    name: str | Sequence[str] | None = None,
    frequency: str = "daily",
    start: Any = None,
    end: Any = None,
    adjusted: bool = True,
) -> BarStore:
    """Load bundled sample bars as a :class:`BarStore`.

    Parameters
    ----------
    name:
        ``'AAPL'``, ``'FB'``, ``'GOOG'``, ``'IBM'``, ``'MSFT'`` (case-insensitive), a list of
        them, or None for all five (assets in that order); or ``'TestBrackets'`` (also
        ``'test_brackets'``), whose store symbol is ``'TESTBRACKETS'``.
    frequency:
        ``'daily'`` (real bars) or ``'minute'`` (synthetic bars built from the daily ones,
        on XNYS sessions, labelled by bar end, UTC; ``meta['synthetic']`` is True). When
        both ``start`` and ``end`` are None a minute request covers only the last 12 months
        of the data, 2012-03-01 .. 2013-03-01 (about 98k bars a stock); pass ``start`` to
        go further back (13 years of one stock is about 1.27M bars). TestBrackets is daily
        only.
    start, end:
        Inclusive bounds, read as every user time is (:mod:`rustybt_nb.data.times`): on
        minute bars a naive time is New York time and a date-only ``end`` includes that
        whole day.
    adjusted:
        True (default): split- *and dividend*-adjusted, like the CSV's ``Adj Close``:
        with ``factor = Adj Close / Close`` per day, open/high/low/close are multiplied by
        the factor and volume is divided by it (then rounded to whole shares), so the
        adjusted close equals ``Adj Close`` and old prices sit below what traded then.
        False: the raw traded prices and volumes (no adjustment for AAPL's 2000 and 2005
        splits, for example).

    Store metadata: ``source`` (``'sample:AAPL,MSFT'``...), ``synthetic``, ``adjusted``,
    ``has_volume``, ``close_only``, ``license``; minute samples add ``synthetic_window``.
    Calendars: stocks ``'XNYS'``; TestBrackets ``'24/7'`` (close-only flat bars, no volume:
    volume is NaN and ``meta['has_volume']`` is False).

    Raises
    ------
    ValueError
        Unknown sample (with suggestions), a minute TestBrackets request, or a
        ``start``/``end`` that selects nothing.
    """
    names = _parse_names(name)
    freq = normalize_frequency(frequency)
    if freq is None:
        raise ValueError("`frequency` must be 'daily' or 'minute' for a sample, got None")
    if names == [TEST_BRACKETS]:
        if freq != "daily":
            raise ValueError(
                "the TestBrackets sample is daily only (one close per calendar day); use "
                "frequency='daily', or a stock sample such as 'AAPL' for minute bars"
            )
        store = from_frame(pd.read_csv(_TB_FILE), _TB_SYMBOL, frequency="daily")
        store.meta.update(source=f"sample:{TEST_BRACKETS}", adjusted=False, synthetic=False,
                          license=_TB_LICENSE)
        return store.slice(start, end)

    frames = {t: _stock_daily(t, adjusted) for t in names}
    meta: dict[str, Any] = {
        "source": "sample:" + ",".join(names),
        "synthetic": freq == "minute",
        "adjusted": bool(adjusted),
        "has_volume": True,
        "close_only": False,
        "symbols_without_volume": [],
        "close_only_symbols": [],
        "license": _STOCK_LICENSE,
    }
    if freq == "daily":
        return BarStore.from_frames(frames, frequency="daily", calendar="XNYS", meta=meta).slice(start, end)

    from .synthetic import minute_bars_from_daily

    last = max(f.index[-1] for f in frames.values())
    first = min(f.index[0] for f in frames.values())
    if start is None and end is None:
        lo, hi = last - pd.DateOffset(months=12), last
        meta["synthetic_window"] = f"default last 12 months: {lo:%Y-%m-%d} .. {hi:%Y-%m-%d}"
    else:
        lo = _session_date(start, "start") if start is not None else first
        hi = _session_date(end, "end") if end is not None else last
    minutes = {}
    for t, f in frames.items():
        day = f[(f.index >= lo) & (f.index <= hi)]
        if len(day):
            minutes[t] = minute_bars_from_daily(day, "XNYS", seed_key=t)
    if not minutes:
        raise ValueError(
            f"`start`={start!r} / `end`={end!r} select no bars of {fmt_list(names)}; the data covers "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        )
    meta["synthetic_method"] = "rustybt_nb.data.synthetic.minute_bars_from_daily (seed key = symbol)"
    meta["tz"] = _EXCHANGE_TZ
    store = BarStore.from_frames(minutes, frequency="minute", calendar="XNYS", meta=meta)
    return store.slice(start, end)


def list_samples() -> pd.DataFrame:
    """One row per sample: kind, first/last date, bars, frequencies, calendar, licence."""
    rows = []
    for t, f in _stock_table().items():
        rows.append({
            "name": t, "kind": "stock (real daily OHLCV)", "first": f.index[0].date(),
            "last": f.index[-1].date(), "bars": len(f), "frequencies": "daily, minute (synthetic)",
            "calendar": "XNYS", "adjusted": "split+dividend (default), raw with adjusted=False",
            "license": _STOCK_LICENSE,
        })
    tb = pd.read_csv(_TB_FILE, usecols=["Date"])["Date"]
    tb_dates = pd.to_datetime(tb, format="%m/%d/%Y")
    rows.append({
        "name": TEST_BRACKETS, "kind": "test series (close-only triangle wave)",
        "first": tb_dates.iloc[0].date(), "last": tb_dates.iloc[-1].date(), "bars": len(tb),
        "frequencies": "daily", "calendar": "24/7", "adjusted": "n/a", "license": _TB_LICENSE,
    })
    return pd.DataFrame(rows).set_index("name")
