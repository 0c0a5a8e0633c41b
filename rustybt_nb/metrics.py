"""Performance metrics from a run's per-session returns and round-trip trades.

Annualisation uses the number of sessions per year of the data's calendar: 252 for
exchange calendars, 365 for 7-day ('24/7') data. Sharpe and Sortino use a zero risk-free
rate. CAGR uses calendar time between the first and last session. Exposure is the share of
the simulated bars at whose close a position was held (so an intraday strategy on minute bars
that is flat at every close still shows its time in the market).

No metric raises: one that cannot be computed is NaN (or ±inf when it overflows a float,
e.g. the CAGR of a short run with a huge return), and :func:`metric_notes` says why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .formatting import INF, NA, is_missing, number, percent

METRIC_NAMES = (
    "start_value", "end_value", "total_return", "cagr", "annual_volatility", "sharpe", "sortino",
    "max_drawdown", "max_drawdown_duration", "trade_count", "win_rate", "profit_factor", "avg_trade_pnl",
    "exposure", "total_commission", "sessions",
)

#: How each metric reads, in the order the views show them: its label and its kind
#: (``money`` and ``ratio`` with 2 decimals, ``percent`` of a fraction, ``count`` whole).
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "start_value": ("Start value", "money"),
    "end_value": ("End value", "money"),
    "total_return": ("Total return", "percent"),
    "cagr": ("CAGR", "percent"),
    "annual_volatility": ("Volatility (ann.)", "percent"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "max_drawdown": ("Max drawdown", "percent"),
    "max_drawdown_duration": ("Longest drawdown (sessions)", "count"),
    "exposure": ("Exposure", "percent"),
    "trade_count": ("Trades", "count"),
    "win_rate": ("Win rate", "percent"),
    "profit_factor": ("Profit factor", "ratio"),
    "avg_trade_pnl": ("Avg trade P&L", "money"),
    "total_commission": ("Commission", "money"),
    "sessions": ("Sessions", "count"),
}


def metric_label(name: str) -> str:
    """The label of metric ``name`` (a metric added later reads as its name in words)."""
    known = METRIC_FORMATS.get(name)
    return known[0] if known else str(name).replace("_", " ").capitalize()


def metric_text(name: str, value: Any, *, delta: bool = False, na: str = NA, inf: str = INF) -> str:
    """Metric ``name``'s ``value`` as the views write it: ``12.30%``, ``1.05``, ``1,234.50``,
    ``17``. With ``delta``, a signed change: ``+1.20 pp`` for a percentage, ``-3`` for a count."""
    kind = METRIC_FORMATS.get(name, ("", "ratio"))[1]
    if kind == "percent" and delta:  # a change of a percentage, in percentage points
        return na if is_missing(value) else number(float(value) * 100, signed=True, na=na, inf=inf) + " pp"
    if kind == "percent":
        return percent(value, na=na, inf=inf)
    return number(value, 0 if kind == "count" else 2, signed=delta, na=na, inf=inf)


def drawdown(values: pd.Series) -> pd.Series:
    """Drawdown from the running peak, as a fraction (<= 0)."""
    peak = values.cummax()
    return values / peak - 1.0


def exposure_from_fills(fill_bars: np.ndarray, fill_assets: np.ndarray, position_after: np.ndarray,
                        first_bar: int, last_bar: int) -> float:
    """Share of the bars ``first_bar..last_bar`` at whose close any position was held, from the
    fills (bar, asset, position after the fill; in bar order): positions change only at fills."""
    n = last_bar - first_bar + 1
    if n <= 0 or not len(fill_bars):
        return 0.0
    one = fill_assets[0]
    assets = [one] if (fill_assets == one).all() else pd.unique(fill_assets)
    edges = np.zeros(n + 1, dtype=np.int64) if len(assets) > 1 else None
    held_bars = 0
    for asset in assets:
        if edges is None:
            bars, amount = fill_bars, position_after
        else:
            sel = fill_assets == asset
            bars, amount = fill_bars[sel], position_after[sel]
        last_of_bar = np.append(bars[1:] != bars[:-1], True)
        bars, amount = bars[last_of_bar], amount[last_of_bar]
        held = amount != 0
        # (np.minimum/np.maximum: np.clip's wrapper costs more than the work on a sweep's row)
        starts = np.minimum(np.maximum(bars[held] - first_bar, 0), n)
        ends = np.minimum(np.maximum(np.append(bars[1:], last_bar + 1)[held] - first_bar, 0), n)
        if edges is None:  # one asset: its holding spans do not overlap
            held_bars = int((ends - starts).sum())
        else:
            np.add.at(edges, starts, 1)
            np.add.at(edges, ends, -1)
    if edges is not None:
        held_bars = int(np.count_nonzero(np.cumsum(edges[:-1])))
    return held_bars / n


def _cagr(growth: float, years: float) -> float:
    """``growth ** (1 / years) - 1``; inf when that overflows, NaN when undefined (no time
    elapsed, a growth that is not a positive number)."""
    if not (years > 0 and growth > 0) or growth != growth:
        return math.nan
    try:
        return growth ** (1 / years) - 1
    except OverflowError:  # a short run with a large return: the power exceeds a float
        return math.inf


def metric_notes(metrics: pd.Series, perf: pd.DataFrame) -> list[str]:
    """Why a headline metric of a run could not be computed (or overflowed), one sentence
    each; empty for ordinary runs. (A ratio without data — Sharpe without returns, a win
    rate without trades — is NaN by definition and is not noted.)"""
    notes = []
    pv = perf["portfolio_value"].to_numpy(dtype=float) if len(perf) else np.zeros(0)
    bad = np.flatnonzero(~np.isfinite(pv))
    if len(bad):
        notes.append(f"the portfolio value is {pv[bad[0]]} from {perf.index[bad[0]].date()} on; the metrics that "
                     "depend on it are NaN")
    end, start = metrics.get("end_value", math.nan), metrics.get("start_value", math.nan)
    cagr = metrics.get("cagr", math.nan)
    if cagr == math.inf:
        notes.append(f"CAGR is inf: growing x{end / start:.4g} in {_span_text(perf)} overflows a float when "
                     "annualised (a short run with a large return)")
    elif cagr != cagr and end == end and len(pv) > 1:
        if not end > 0:
            notes.append(f"CAGR is undefined: the portfolio ended at {end:,.2f} (not above zero)")
    for name in ("total_return", "annual_volatility", "sharpe", "sortino", "avg_trade_pnl"):
        value = metrics.get(name, math.nan)
        if value in (math.inf, -math.inf):
            notes.append(f"{metric_label(name)} is {value}: it overflows a float")
    if len(pv) > 1 and np.isnan(perf["returns"].to_numpy(dtype=float)[1:]).any():
        notes.append("some returns are undefined (the portfolio value was 0 before them); volatility, Sharpe and "
                     "Sortino leave them out")
    return notes


def _span_text(perf: pd.DataFrame) -> str:
    days = (perf.index[-1] - perf.index[0]).total_seconds() / 86400.0 if len(perf) > 1 else 0.0
    return f"{days:g} days"


def compute_metrics(perf: pd.DataFrame, trades: pd.DataFrame, capital_base: float, periods_per_year: float,
                    total_commission: float, exposure: float | None = None) -> pd.Series:
    """The metrics of :data:`METRIC_NAMES` of a perf frame and a trades frame (see
    :func:`metric_values`). ``exposure`` (see :func:`exposure_from_fills`) defaults to the
    share of sessions that closed with a position."""
    n = len(perf)
    pv = perf["portfolio_value"].to_numpy(dtype=float) if n else np.zeros(0)
    rets = perf["returns"].to_numpy(dtype=float) if n else np.zeros(0)
    days = (perf.index[-1] - perf.index[0]).total_seconds() / 86400.0 if n > 1 else 0.0
    if len(trades):
        net = trades["net_pnl"].to_numpy(dtype=float)[~trades["is_open"].to_numpy(dtype=bool)]
    else:
        net = np.zeros(0)
    if exposure is None:
        exposure = float((np.abs(perf["positions_value"].to_numpy(dtype=float)) > 0).mean()) if n else 0.0
    values = metric_values(pv, rets, days, net, capital_base, periods_per_year, total_commission, exposure)
    return pd.Series(values, name="metrics")


def metric_values(pv: np.ndarray, rets: np.ndarray, days: float, net: np.ndarray, capital_base: float,
                  periods_per_year: float, total_commission: float, exposure: float) -> dict[str, float]:
    """The metrics of :data:`METRIC_NAMES`, in that order, from arrays: the portfolio value
    and return of each session, the calendar days from the first session to the last, and
    the net pnl of each closed round trip. Returns that are NaN (a portfolio value of 0
    followed by 0) are left out of the mean and deviations, as pandas' reductions would.
    (What a parameter sweep computes per run: no frame is built.)"""
    n = len(pv)
    end_value = float(pv[-1]) if n else float(capital_base)
    total_return = end_value / capital_base - 1.0
    years = days / 365.25 if n > 1 else 0.0
    cagr = _cagr(end_value / capital_base, years)
    missing = np.isnan(rets)
    valid = rets[~missing] if missing.any() else rets
    std = float(valid.std(ddof=1)) if len(valid) > 1 else math.nan
    mean = float(valid.mean()) if len(valid) else math.nan
    ann = math.sqrt(periods_per_year)
    sharpe = mean / std * ann if std and std == std and std > 0 else math.nan
    downside = np.minimum(valid, 0.0)  # as rets.clip(upper=0.0), without the NaNs
    dd_std = float(np.sqrt(np.square(downside, out=downside).mean())) if len(downside) else math.nan
    sortino = mean / dd_std * ann if dd_std and dd_std > 0 else math.nan
    # drawdown from the running peak, the starting capital included
    dd = np.empty(n + 1)
    dd[0] = capital_base
    dd[1:] = pv
    peak = np.fmax.accumulate(dd)
    np.divide(dd, peak, out=dd)
    dd -= 1.0
    max_dd = float(np.fmin.reduce(dd))  # NaN only if every value is NaN
    # longest stretch (in sessions) below a previous peak: the distance between the edges of the runs
    under = np.zeros(n + 3, dtype=np.int8)
    np.less(dd, 0.0, out=under[1:-1], casting="unsafe")
    edges = np.flatnonzero(np.diff(under))
    longest = int((edges[1::2] - edges[0::2]).max()) if len(edges) else 0
    count = len(net)
    gross_win = float(net[net > 0].sum()) if count else 0.0
    gross_loss = float(-net[net < 0].sum()) if count else 0.0
    return {
        "start_value": float(capital_base),
        "end_value": end_value,
        "total_return": total_return,
        "cagr": cagr,
        "annual_volatility": std * ann if std == std else math.nan,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "max_drawdown_duration": float(longest),
        "trade_count": float(count),
        "win_rate": float((net > 0).mean()) if count else math.nan,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else math.nan),
        "avg_trade_pnl": float(np.nanmean(net)) if count and not np.isnan(net).all() else math.nan,
        "exposure": float(exposure),
        "total_commission": float(total_commission),
        "sessions": float(n),
    }
