"""Deterministic synthetic minute bars that honour real daily bars.

The sample data is daily. For minute-frequency backtests each daily bar is expanded
into one bar per trading minute of its session (from the exchange calendar, so early
closes such as the day after Thanksgiving have 210 minutes, not 390). The minutes are
*made up*: they are a random path, not what traded. What is guaranteed, exactly:

* the first minute opens at the daily open and the last minute closes at the daily close;
* the highest minute high is the daily high and the lowest minute low the daily low;
* every minute satisfies ``low <= min(open, close) <= max(open, close) <= high``;
* the path is continuous: each minute opens at the previous minute's close;
* minute volumes are non-negative whole numbers summing to the daily volume (rounded to a
  whole number first), with a U-shaped intraday profile (busy open and close);
* the same daily bar, calendar and ``seed_key`` give the same minutes, whatever other
  days are in the input (each day has its own generator, seeded with
  ``zlib.crc32(f"{seed_key}|{YYYY-MM-DD}")``).

Construction, per day with ``n`` minutes: a Gaussian random walk of ``n`` steps; two
distinct interior points of the path are pinned at the day's high and low (in random
order); between the fixed points (open, pins, close) the path is the straight line plus
the walk's Brownian bridge, folded back into the ``[low, high]`` band by reflection.
Minute ``k`` opens at point ``k-1`` and closes at point ``k``; its high and low add a small
random wick, clipped to the day's range. Everything after the per-day random draws is
vectorised over days with numpy.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd

from .validation import validate_bars

__all__ = ["minute_bars_from_daily"]

_NS_PER_MIN = 60_000_000_000


def _epoch_ns(values: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch (NaT becomes the int64 minimum)."""
    return pd.DatetimeIndex(values).as_unit("ns").asi8


def _schedule(calendar: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    from ..calendars import exchange_calendar

    # shared with the simulation clock (same span -> one calendar build per process)
    return exchange_calendar(calendar, first, last).schedule


def minute_bars_from_daily(
    daily: pd.DataFrame,
    calendar: str = "XNYS",
    seed_key: str | None = None,
    *,
    warn: bool = True,
) -> pd.DataFrame:
    """Synthetic minute bars (see the module docstring for what is guaranteed).

    Parameters
    ----------
    daily:
        One asset's daily bars: tz-naive date index, ``open, high, low, close`` and
        optionally ``volume`` (any layout :func:`~rustybt_nb.data.validation.validate_bars`
        accepts; it is validated first). Extra columns are not carried to the minutes.
        Without volume (or with NaN volume) the minute volume is NaN.
    calendar:
        exchange_calendars name giving each session's open and close (and lunch break,
        if the exchange has one).
    seed_key:
        Mixed into every day's seed; use the symbol so assets get different paths.
        Default: ``daily.attrs['symbol']`` or ``''``.
    warn:
        Daily bars whose date is not a session of ``calendar`` are skipped; with
        ``warn=True`` a ``UserWarning`` says how many.

    Returns
    -------
    DataFrame
        ``open, high, low, close, volume`` (float64) on a tz-aware UTC index, each bar
        labelled by its end (first NYSE bar: 09:31 New York). ``attrs`` holds
        ``synthetic=True``, ``seed_key``, ``calendar``, ``sessions`` (days expanded),
        ``skipped_days`` (count) and ``skipped_dates`` (ISO strings).
    """
    if seed_key is None:
        seed_key = str(daily.attrs.get("symbol", "")) if isinstance(daily, pd.DataFrame) else ""
    bars = validate_bars(daily, seed_key or "synthetic", "daily")
    dates = pd.DatetimeIndex(bars.index)
    sched = _schedule(calendar, dates[0], dates[-1])
    is_session = np.asarray(dates.isin(sched.index))
    skipped = dates[~is_session]
    if len(skipped) and warn:
        warnings.warn(
            f"{len(skipped)} daily bar(s) of {seed_key or 'the data'} are not {calendar} sessions and get no "
            f"minute bars (first: {skipped[0]:%Y-%m-%d})",
            UserWarning,
            stacklevel=2,
        )
    bars = bars[is_session]
    dates = dates[is_session]
    attrs = {
        "synthetic": True,
        "seed_key": seed_key,
        "calendar": calendar,
        "sessions": len(dates),
        "skipped_days": len(skipped),
        "skipped_dates": [f"{d:%Y-%m-%d}" for d in skipped],
    }
    cols = ["open", "high", "low", "close", "volume"]
    if not len(dates):
        out = pd.DataFrame({c: np.empty(0) for c in cols},
                           index=pd.DatetimeIndex([], tz="UTC").as_unit("ns"))
        out.attrs = attrs
        return out

    sess = sched.loc[dates]
    open_ns, close_ns = _epoch_ns(sess["open"]), _epoch_ns(sess["close"])
    n = (close_ns - open_ns) // _NS_PER_MIN
    has_break = sess["break_start"].notna().to_numpy() & sess["break_end"].notna().to_numpy()
    brk_start = np.where(has_break, _epoch_ns(sess["break_start"]), np.iinfo(np.int64).max)
    brk_len = np.where(has_break, (_epoch_ns(sess["break_end"]) - brk_start) // _NS_PER_MIN, 0)
    n = (n - brk_len).astype(np.int64)
    n_days, m = len(n), int(n.max())

    o = bars["open"].to_numpy()
    h = bars["high"].to_numpy()
    lo = bars["low"].to_numpy()
    c = bars["close"].to_numpy()
    vol = np.round(bars["volume"].to_numpy())

    # ---- per-day random draws (the only Python loop): normals for the walk,
    # uniforms for the wicks (2n), the volume noise (n) and the two pins (2)
    z = np.zeros((n_days, m))
    u_up = np.zeros((n_days, m))
    u_dn = np.zeros((n_days, m))
    u_vol = np.zeros((n_days, m))
    u_pin = np.zeros((n_days, 2))
    key = str(seed_key)
    for i, (d, k) in enumerate(zip(dates.strftime("%Y-%m-%d"), n.tolist(), strict=True)):
        rng = np.random.default_rng(zlib.crc32(f"{key}|{d}".encode()))
        z[i, :k] = rng.standard_normal(k)
        u = rng.random(3 * k + 2)
        u_up[i, :k] = u[:k]
        u_dn[i, :k] = u[k:2 * k]
        u_vol[i, :k] = u[2 * k:3 * k]
        u_pin[i] = u[3 * k:]

    rows = np.arange(n_days)
    kk = np.arange(m + 1)[None, :]                   # path point index 0..m
    span = h - lo
    safe_span = np.where(span > 0, span, 1.0)
    uo = np.where(span > 0, (o - lo) / safe_span, 0.0)
    uc = np.where(span > 0, (c - lo) / safe_span, 0.0)
    normal = n >= 3                                  # enough interior points for two pins
    sigma = np.where(normal, 0.5 / np.sqrt(np.maximum(n, 1)), 0.0)

    # pins: high at point a, low at point b, distinct, both in 1..n-1
    a = 1 + np.floor(u_pin[:, 0] * (n - 1)).astype(np.int64)
    b = 1 + np.floor(u_pin[:, 1] * np.maximum(n - 2, 1)).astype(np.int64)
    b = np.where(b >= a, b + 1, b)
    a = np.where(normal, np.minimum(a, n - 1), n)
    b = np.where(normal, np.minimum(b, n - 1), n)
    p1, p2 = np.minimum(a, b), np.maximum(a, b)
    v1 = np.where(normal, np.where(a < b, 1.0, 0.0), uc)  # value at p1 (high first or low first)
    v2 = np.where(normal, 1.0 - v1, uc)

    walk = np.zeros((n_days, m + 1))
    np.cumsum(z * sigma[:, None], axis=1, out=walk[:, 1:])

    p1c, p2c, nc = p1[:, None], p2[:, None], n[:, None]
    seg0, seg1 = kk <= p1c, kk <= p2c
    s = np.where(seg0, 0, np.where(seg1, p1c, p2c))
    e = np.where(seg0, p1c, np.where(seg1, p2c, nc))
    vs = np.where(seg0, uo[:, None], np.where(seg1, v1[:, None], v2[:, None]))
    ve = np.where(seg0, v1[:, None], np.where(seg1, v2[:, None], uc[:, None]))
    e = np.minimum(e, m)
    frac = (kk - s) / np.maximum(e - s, 1)
    ws = np.take_along_axis(walk, s, axis=1)
    we = np.take_along_axis(walk, e, axis=1)
    path = vs + frac * (ve - vs) + (walk - ws - frac * (we - ws))
    path = np.abs(np.mod(path + 1.0, 2.0) - 1.0)     # reflect into [0, 1]
    price = np.clip(lo[:, None] + path * span[:, None], lo[:, None], h[:, None])
    price[:, 0] = o
    price[rows, np.minimum(n, m)] = c
    price[rows[normal], a[normal]] = h[normal]
    price[rows[normal], b[normal]] = lo[normal]

    m_open = price[:, :-1]
    m_close = price[:, 1:]
    wick = (0.3 * sigma * span)[:, None]
    m_high = np.minimum(np.maximum(m_open, m_close) - wick * np.log1p(-u_up), h[:, None])
    m_low = np.maximum(np.minimum(m_open, m_close) + wick * np.log1p(-u_dn), lo[:, None])
    tiny = rows[~normal]                             # 1-2 minute sessions: place the extremes directly
    m_high[tiny, 0] = h[tiny]
    m_low[tiny, n[tiny] - 1] = lo[tiny]

    # ---- volume: U-shaped profile x noise, largest-remainder rounding to whole shares
    valid = np.arange(1, m + 1)[None, :] <= nc
    x = (np.arange(m)[None, :] + 0.5) / np.maximum(nc, 1)
    weight = np.where(valid, (1.0 + 4.0 * (2.0 * x - 1.0) ** 2) * (0.5 + u_vol), 0.0)
    share = weight / weight.sum(axis=1, keepdims=True)
    vol0 = np.where(np.isnan(vol), 0.0, vol)
    alloc = share * vol0[:, None]
    base = np.floor(alloc)
    left = vol0 - base.sum(axis=1)                   # whole shares still to hand out, < n
    rem = np.where(valid, alloc - base, -1.0)
    order = np.argsort(-rem, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(m)[None, :].repeat(n_days, axis=0), axis=1)
    m_vol = base + (rank < left[:, None])
    m_vol[np.isnan(vol)] = np.nan

    # ---- timestamps: bar k (1-based) ends k minutes after the open, skipping any break
    step = np.arange(1, m + 1, dtype=np.int64)[None, :] * _NS_PER_MIN
    stamps = open_ns[:, None] + step
    stamps = np.where(stamps > brk_start[:, None], stamps + (brk_len * _NS_PER_MIN)[:, None], stamps)

    index = pd.DatetimeIndex(stamps[valid].astype("datetime64[ns]")).tz_localize("UTC")
    out = pd.DataFrame(
        {
            "open": m_open[valid],
            "high": m_high[valid],
            "low": m_low[valid],
            "close": m_close[valid],
            "volume": m_vol[valid],
        },
        index=index,
    )
    out.attrs = attrs
    return out
