"""Reads a finished (or interrupted) :class:`~rustybt_nb.simulation.Simulation` into a
:class:`~rustybt_nb.results.BacktestResult`.

Only the composition root (:mod:`rustybt_nb.backtest`) calls this module; the result
object itself (:mod:`rustybt_nb.results`) knows nothing about simulations.

:func:`build_result` builds ``perf``, ``trades``, ``logs`` and ``metrics`` at once and
leaves ``orders``, ``order_events``, ``fills``, ``positions`` and ``prices`` as builders
that run on first read (from the run's own records, which no longer change).
:func:`metric_values_of` computes only the metrics, from the same per-session values and
round trips, as arrays and a dict (no frame, no recorded values, logs or deferred frames):
what a parameter sweep keeps of a run.

The per-session values come from the fills (cash and each position after every fill)
and the bars' last prices, so a run's perf costs one pass over its fills and sessions,
not a pass over every bar.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from .finance.ledger import FILL_COLUMNS, TRADE_COLUMNS
from .finance.order import _PLAIN, OrderEvent
from .formatting import time_text
from .metrics import compute_metrics, exposure_from_fills, metric_notes, metric_values
from .results import (
    EVENT_COLUMNS,
    LOG_COLUMNS,
    ORDER_COLUMNS,
    PERF_COLUMNS,
    POSITION_COLUMNS,
    PRICE_COLUMNS,
    BacktestResult,
    empty_frame,
    gc_paused,
    record_text,
    valid_text,
)

if TYPE_CHECKING:
    from .simulation import Simulation

_FILL_DTYPES = {"bar": np.int64, "order_id": np.int64, "qty": float, "price": float, "commission": float,
                "realized_pnl": float, "position_after": float, "cash_after": float, "bar_volume": float}
_TRADE_DTYPES = {"entry_bar": float, "exit_bar": float, "size": float, "entry_price": float, "exit_price": float,
                 "pnl": float, "commission": float, "net_pnl": float, "return_pct": float, "bars_held": float,
                 "is_open": bool}


def build_result(sim: Simulation, wall: float) -> BacktestResult:
    """The result of ``sim`` (finished, or stopped by an exception: then up to its last
    bar); ``wall`` is the run's wall-clock seconds, kept in ``run_info``."""
    with gc_paused():
        return _build_result(sim, wall)


def metric_values_of(sim: Simulation) -> dict[str, float]:
    """``build_result(sim, ...).metrics`` as a dict in :data:`~rustybt_nb.metrics.METRIC_NAMES`
    order, from arrays alone (no frame: what a parameter sweep computes per run)."""
    with gc_paused(), np.errstate(all="ignore"):  # (overflows give inf / NaN metrics, never warnings)
        span = _Span.of(sim)
        fill_data = _fill_columns(sim)
        fill_assets = np.array(fill_data["asset"], dtype=object)
        block, _held = _perf_block(sim, span, fill_data, fill_assets)
        k = TRADE_COLUMNS.index("net_pnl")  # (the closed round trips: open ones are not in ledger.trades)
        net = np.fromiter((row[k] for row in sim.ledger.trades), dtype=float, count=len(sim.ledger.trades))
        labels = span.labels
        days = (labels[-1] - labels[0]).total_seconds() / 86400.0 if len(labels) > 1 else 0.0
        ledger = sim.ledger
        return metric_values(block[0], block[1], days, net, ledger.starting_cash, _periods_per_year(sim),
                             ledger.total_commission, _exposure(sim, span, fill_data, fill_assets))


class _Span(NamedTuple):
    """The simulated bars ``lo..hi`` (``hi < lo`` when no bar ran) and their sessions."""

    lo: int
    hi: int
    s0: int  # first and last session (s1 < s0 when no bar ran)
    s1: int
    end_bars: np.ndarray  # the last simulated bar of each session
    labels: pd.DatetimeIndex

    @classmethod
    def of(cls, sim: Simulation) -> _Span:
        clock = sim.clock
        lo = sim.lo
        hi = max(min(sim.last_bar, sim.hi), lo - 1)
        if hi >= lo:
            s0, s1 = int(clock.session_of_bar[lo]), int(clock.session_of_bar[hi])
            end_bars = clock.session_last_bar[s0:s1 + 1]  # (a view: copied before the last one is capped)
            if end_bars[-1] > hi:  # a run that stops inside its last session
                end_bars = end_bars.copy()
                end_bars[-1] = hi
        else:
            s0, s1 = 0, -1
            end_bars = np.zeros(0, dtype=np.int64)
        return cls(lo, hi, s0, s1, end_bars, clock.session_labels[s0:s1 + 1])


def _fill_columns(sim: Simulation) -> dict[str, Any]:
    return _columns(sim.ledger.fills, FILL_COLUMNS, _FILL_DTYPES, derived=("dt",))


def _perf(sim: Simulation, span: _Span, fill_data: dict[str, Any], fill_assets: np.ndarray
          ) -> tuple[pd.DataFrame, list[tuple[Any, ...]]]:
    """The perf frame without recorded values, and per asset held at a session's end its
    ``(symbol, held, amount, cost bases, fill counts, price, value)`` per session (what the
    positions frame is built from)."""
    block, held_parts = _perf_block(sim, span, fill_data, fill_assets)
    perf = pd.DataFrame(block.T, index=pd.DatetimeIndex(span.labels, name="session", freq=None),
                        columns=PERF_COLUMNS, copy=False)
    return perf, held_parts


def _perf_block(sim: Simulation, span: _Span, fill_data: dict[str, Any], fill_assets: np.ndarray
                ) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """:func:`_perf`'s columns as the rows of one array (in :data:`PERF_COLUMNS` order)."""
    store, ledger, end_bars = sim.store, sim.ledger, span.end_bars
    # one bar per session (daily data): per-session values are slices of per-bar arrays
    b0 = int(end_bars[0]) if len(end_bars) else 0
    contiguous = len(end_bars) > 0 and int(end_bars[-1]) - b0 == len(end_bars) - 1
    fill_bars = fill_data["bar"]

    # The perf columns are rows of one block (one allocation, and no consolidating copy
    # when the frame is built): portfolio value, returns, pnl, cash, positions value.
    n_sessions = len(end_bars)
    block = np.empty((len(PERF_COLUMNS), n_sessions))
    pv, rets, pnl, cash, pos_value = block
    # cash and positions after each session's last bar, from the fills (bar order)
    counts = _fills_up_to(fill_bars, end_bars, contiguous)
    _after_fills(fill_data["cash_after"], counts, ledger.starting_cash, out=cash)
    pos_value.fill(0.0)
    held_parts: list[tuple[Any, ...]] = []
    cost_hist = np.asarray(ledger.cost_basis_after, dtype=float)
    amt_hist = fill_data["position_after"]
    one_asset = len(store.assets) == 1
    for asset in store.assets:
        if one_asset:  # every fill is of this asset
            n_sel = len(fill_bars)
            j, amounts, bases = counts, amt_hist, cost_hist
        else:
            sel = np.flatnonzero(fill_assets == asset.symbol)
            n_sel = len(sel)
            if n_sel:
                j = _fills_up_to(fill_bars[sel], end_bars, contiguous)
                amounts, bases = amt_hist[sel], cost_hist[sel]
        if not n_sel:
            continue
        amount = _after_fills(amounts, j, 0.0)
        prices = store.arrays[asset.sid]["price"]
        price = prices[b0:b0 + n_sessions] if contiguous else prices[end_bars]
        held = amount != 0
        value = amount * price
        # The price is the close carried forward, NaN only before the asset's first bar,
        # where nothing can be held yet: zeroing the value where nothing is held leaves no NaN.
        value[~held] = 0.0
        pos_value += value
        if held.any():  # (the cost basis is only read by the positions frame: taken there)
            held_parts.append((asset.symbol, held, amount, bases, j, price, value))
    np.add(cash, pos_value, out=pv)
    if n_sessions:  # against the previous session's value (the starting cash for the first)
        start = ledger.starting_cash
        pnl[0] = pv[0] - start
        np.subtract(pv[1:], pv[:-1], out=pnl[1:])
        rets[0] = pv[0] / start - 1.0
        np.divide(pv[1:], pv[:-1], out=rets[1:])
        rets[1:] -= 1.0
    return block, held_parts


def _add_records(sim: Simulation, span: _Span, perf: pd.DataFrame) -> None:
    """Recorded values as perf columns, one row per session, carried forward."""
    try:
        rec = _records_frame(sim.records)
    except UnicodeError:  # text that is not valid Unicode (lone surrogates): kept with those escaped
        rec = _records_frame({s: {k: valid_text(x) for k, x in v.items()} for s, v in sim.records.items()})
    for col in rec.columns:  # dtypes pandas cannot carry forward (float16, longdouble, complex)
        dtype = rec[col].dtype
        if isinstance(dtype, np.dtype) and (dtype.kind == "c" or (dtype.kind == "f" and dtype.itemsize not in (4, 8))):
            rec[col] = rec[col].astype(object)
    rec = rec.reindex(np.arange(span.s0, span.s1 + 1))
    try:
        rec = rec.ffill()
    except (TypeError, ValueError):  # a column of some other dtype: carried forward as objects
        rec = rec.apply(_ffill_objects)
    rec.index = perf.index
    for col in rec.columns:
        name = col if col not in perf.columns else f"recorded_{col}"
        perf[name] = _clean_recorded(rec[col])


def _records_frame(records: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """``{session: {name: value}}`` as a frame, a row per session that recorded and a
    column per name (first recorded first), NaN where a session did not record a name:
    ``DataFrame.from_dict(records, orient='index')``, built column by column (a row per
    session of a daily run makes the row-wise build the slow part)."""
    rows = list(records.values())
    index = pd.Index(np.fromiter(records, dtype=np.int64, count=len(rows)))
    if rows and min(map(len, rows)) == len(set().union(*rows)):  # every session recorded every name (usual)
        # (then the first session holds every name, in the order they were first recorded)
        return pd.DataFrame({name: _plain_column(list(map(itemgetter(name), rows))) for name in rows[0]},
                            index=index)
    names: dict[str, Any] = {}
    for row in rows:
        names.update(row)  # (keys only: a name keeps the place it was first recorded at)
    nan = math.nan
    return pd.DataFrame({name: [row.get(name, nan) for row in rows] for name in names}, index=index)


def _plain_column(values: list[Any]) -> Any:
    """``values`` as a float64 or int64 array when they are all Python floats or all
    Python ints that fit (what pandas would infer, without its per-value inference);
    else the list, for pandas to infer."""
    kinds = set(map(type, values))
    if kinds == {float} or kinds == {int}:
        try:
            array = np.array(values)
        except OverflowError:
            return values
        if array.dtype == np.float64 or array.dtype == np.int64:
            return array
    return values


def _trades(sim: Simulation, span: _Span) -> pd.DataFrame:
    """Closed round trips, then those still open valued at the last simulated price."""
    store, ledger = sim.store, sim.ledger
    last = span.hi if span.hi >= span.lo else span.lo
    trade_rows = list(ledger.trades) + ledger.open_trade_rows(
        store.index[last], last, lambda a: float(store.arrays[a.sid]["price"][last]))
    trade_data = _columns(trade_rows, TRADE_COLUMNS, _TRADE_DTYPES, derived=("entry_dt", "exit_dt"))
    entry, exit_ = trade_data["entry_bar"], trade_data["exit_bar"]
    trade_data["entry_dt"] = _bar_times(store.index, np.where(entry == entry, entry, -1).astype(np.int64))
    trade_data["exit_dt"] = _bar_times(store.index, np.where(exit_ == exit_, exit_, -1).astype(np.int64))
    return pd.DataFrame(trade_data)


def _logs(sim: Simulation, extra: list[tuple[Any, str, str]] = ()) -> pd.DataFrame:
    tz_index = sim.store.index
    rows = sim.logs + list(extra) if extra else sim.logs
    if not rows:
        return pd.DataFrame({"dt": _bar_times(tz_index, np.zeros(0, dtype=np.int64)),
                             "level": np.array([], dtype=object), "message": np.array([], dtype=object)})
    logs = pd.DataFrame(rows, columns=LOG_COLUMNS)
    logs["message"] = logs["message"].map(valid_text)  # (text UTF-8 can store: a result saves)
    logs["dt"] = _dt_column(logs["dt"], tz_index)
    return logs.sort_values("dt", kind="stable").reset_index(drop=True)


def _metrics(sim: Simulation, span: _Span, perf: pd.DataFrame, trades: pd.DataFrame,
             fill_data: dict[str, Any], fill_assets: np.ndarray) -> pd.Series:
    ledger = sim.ledger
    return compute_metrics(perf, trades, ledger.starting_cash, _periods_per_year(sim), ledger.total_commission,
                           _exposure(sim, span, fill_data, fill_assets))


def _periods_per_year(sim: Simulation) -> float:
    return 365.0 if (sim.store.calendar or "").upper() in ("24/7", "ALWAYS_OPEN") else 252.0


def _exposure(sim: Simulation, span: _Span, fill_data: dict[str, Any], fill_assets: np.ndarray) -> float:
    return exposure_from_fills(fill_data["bar"], fill_assets, fill_data["position_after"], span.lo, span.hi)


def _build_result(sim: Simulation, wall: float) -> BacktestResult:
    store, book = sim.store, sim.book
    span = _Span.of(sim)
    fill_data = _fill_columns(sim)
    fill_assets = np.array(fill_data["asset"], dtype=object)
    with np.errstate(all="ignore"):  # (overflows give inf / NaN values and metrics, noted below; never warnings)
        perf, held_parts = _perf(sim, span, fill_data, fill_assets)
        if sim.records:
            _add_records(sim, span, perf)
        trades = _trades(sim, span)
        metrics = _metrics(sim, span, perf, trades, fill_data, fill_assets)
        notes = metric_notes(metrics, perf)
        leverage = _leverage_warning(sim, span, fill_data, fill_assets, perf, held_parts)
    if leverage is not None:
        notes.append(leverage[2])
        logging.getLogger("rustybt_nb.algorithm").warning(leverage[2])
    lo, hi = span.lo, span.hi
    bars = max(0, hi - lo + 1)
    run_info = {"wall_seconds": wall, "bars": bars, "bars_per_second": bars / wall if wall > 0 else math.nan,
                "orders": len(book.orders), "events": len(book.log), "completed": sim.error is None,
                "error": None if sim.error is None else f"{type(sim.error).__name__}: {sim.error}",
                "notes": notes}
    # The other frames are built on first read, from the run's records as they stand now: the
    # orders (a list of them) and the first n_events events; the book refuses changes after the
    # run (Simulation.run closes it), and the slice keeps even a stray event out of the result.
    tz_index, labels = store.index, span.labels
    order_list, log, n_events = list(book.orders.values()), book.log, len(book.log)
    indicator_specs = list(sim.indicators)
    return BacktestResult(
        perf, lambda: _orders_frame(order_list, tz_index),
        lambda: _events_frame(log if len(log) == n_events else log[:n_events], tz_index),
        lambda: _fills_frame(fill_data, tz_index), lambda: _positions_frame(held_parts, labels),
        trades, _logs(sim, [leverage] if leverage is not None else ()), metrics, _settings(sim), run_info,
        prices=lambda: _price_frame(store, lo, max(hi, lo - 1)),
        indicators=lambda: _indicator_frame(store, indicator_specs, lo, max(hi, lo - 1)))


def _settings(sim: Simulation) -> dict[str, Any]:
    """The run's settings, with its indicators (name -> assets and how they are plotted)."""
    settings = dict(sim.settings)
    if sim.indicators:
        settings["indicators"] = {spec.name: {"assets": [str(a) for a in spec.columns], "plot": spec.plot}
                                  for spec in sim.indicators}
    return settings


def _indicator_frame(store: Any, specs: list[Any], lo: int, hi: int) -> pd.DataFrame:
    """The run's indicators over its bars, in the long format of ``prices``: a row per bar
    and asset with any indicator (dt, bar, asset, then a column per indicator; NaN where
    an indicator is not computed for the asset)."""
    columns = ["dt", "bar", "asset", *[spec.name for spec in specs]]
    assets = [a for a in store.assets if any(a in spec.columns for spec in specs)]
    if not specs or not assets or hi < lo:
        return empty_frame(columns, {"bar": np.int64, **{spec.name: float for spec in specs}})
    bars = np.arange(lo, hi + 1, dtype=np.int64)
    parts = []
    for a in assets:
        part = pd.DataFrame({"bar": bars, "asset": [a.symbol] * len(bars)})
        for spec in specs:
            column = spec.columns.get(a)
            part[spec.name] = column[lo:hi + 1] if column is not None else np.nan
        part.insert(0, "dt", _bar_times(store.index, bars))
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return out.sort_values(["bar", "asset"], kind="stable").reset_index(drop=True) if len(parts) > 1 else out


def _leverage_warning(sim: Simulation, span: _Span, fill_data: dict[str, Any], fill_assets: np.ndarray,
                      perf: pd.DataFrame, held_parts: list[tuple[Any, ...]]) -> tuple[Any, str, str] | None:
    """The run's one leverage warning as a log row ``(dt, 'WARNING', message)``, or None.

    Exposure is the gross market value of the positions (the sum of their absolute values)
    over the portfolio value, measured at the close of every bar with a fill and of every
    session (positions change only at fills; prices move them in between). The run is
    warned about the first time cash is negative or the exposure exceeds 100 % — or, with
    ``max_leverage`` set, the first time the exposure exceeds it (orders are checked when
    placed; price moves can still take a portfolio beyond it) — and the message gives the
    peak. Computed from the fills and the per-session values after the run: nothing is
    added to the per-bar loop."""
    fill_bars = fill_data["bar"]
    if not len(fill_bars):
        return None  # nothing was ever held
    store = sim.store
    limit = sim.book.max_leverage
    # the close of each bar with a fill: cash after its last fill, each position after its last fill so far
    last = np.r_[fill_bars[1:] != fill_bars[:-1], True]
    bars = fill_bars[last]
    cash = fill_data["cash_after"][last]
    amounts = fill_data["position_after"]
    if limit is None and not (amounts < 0).any() and cash.min() >= 0 and perf["cash"].min() >= 0:
        return None  # (without shorts, exposure is above 100 % exactly when cash is negative)
    gross = np.zeros(len(bars))
    value = np.zeros(len(bars))
    for asset in store.assets:
        if len(store.assets) == 1:
            asset_bars, asset_amounts = fill_bars, amounts
        else:
            sel = np.flatnonzero(fill_assets == asset.symbol)
            if not len(sel):
                continue
            asset_bars, asset_amounts = fill_bars[sel], amounts[sel]
        k = np.searchsorted(asset_bars, bars, side="right") - 1
        held = np.where(k >= 0, asset_amounts[np.maximum(k, 0)], 0.0)
        v = held * store.arrays[asset.sid]["price"][bars]
        v[held == 0] = 0.0
        gross += np.abs(v)
        value += v
    # the close of every session
    s_gross = np.zeros(len(perf))
    for part in held_parts:
        s_gross += np.abs(part[6])
    when = np.r_[bars, span.end_bars].astype(np.int64)
    cash = np.r_[cash, perf["cash"].to_numpy(dtype=float)]
    gross = np.r_[gross, s_gross]
    pv = np.r_[cash[:len(bars)] + value, perf["portfolio_value"].to_numpy(dtype=float)]
    threshold = limit if limit is not None else 1.0
    over = (gross > threshold * pv) | ((pv <= 0) & (gross > 0))
    if limit is None:
        over |= cash < 0
    if not over.any():
        return None
    hits = np.flatnonzero(over)
    first = hits[np.argmin(when[hits])]
    ratio = np.where(pv > 0, gross / np.where(pv > 0, pv, 1.0), np.inf)
    peak = hits[np.argmax(ratio[hits])]

    def at(j: int) -> str:
        return time_text(store.timestamp(int(when[j])), store.tz if store.frequency == "minute" else None)

    def money(x: float) -> str:
        return f"{x:,.2f}" if abs(x) < 1e15 else f"{x:.4g}"

    def exposure(j: int) -> str:
        if ratio[j] == np.inf:
            return f"held with a portfolio value of {money(pv[j])} (exposure unbounded)"
        return f"{ratio[j]:.2f}x the portfolio value {money(pv[j])}"

    def peak_text() -> str:
        return f"{ratio[peak]:.2f}x" if ratio[peak] != np.inf else "unbounded"

    gross_text = f"the positions' gross value {money(gross[first])} is {exposure(first)}"
    if limit is None:
        what = (f"cash went negative ({money(cash[first])})" if cash[first] < 0 else "the exposure passed 100 %")
        message = (f"leverage: at {at(first)} {what}: {gross_text}; the peak was {peak_text()} at {at(peak)}. "
                   "Positions beyond the cash are bought on credit (no margin model, no interest); pass "
                   "max_leverage= to reject orders beyond a limit")
    else:
        message = (f"leverage: at {at(first)} {gross_text}, beyond max_leverage={limit:g}; the peak was "
                   f"{peak_text()} at {at(peak)}. Orders are checked when placed: price moves (and fills away from "
                   "the last price) can take the exposure beyond the limit afterwards")
    return (store.timestamp(int(when[first])), "WARNING", message)


def _fills_frame(fill_data: dict[str, Any], tz_index: pd.DatetimeIndex) -> pd.DataFrame:
    data = dict(fill_data)
    data["dt"] = _bar_times(tz_index, data["bar"])
    return pd.DataFrame(data)


def _positions_frame(held_parts: list[tuple[Any, ...]], labels: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per session and asset held at its end, from each asset's end-of-session
    (held mask, amount, price, value) arrays and its cost basis after each fill (with the
    number of fills by the end of each session)."""
    parts = [pd.DataFrame({"dt": labels[held], "asset": symbol, "amount": amount[held],
                           "cost_basis": _after_fills(bases, counts[held], 0.0),
                           "last_sale_price": price[held], "market_value": value[held]})
             for symbol, held, amount, bases, counts, price, value in held_parts]
    if len(parts) == 1:
        return parts[0]
    if parts:
        positions = pd.concat(parts, ignore_index=True)
        return positions.sort_values(["dt", "asset"], kind="stable").reset_index(drop=True)
    positions = empty_frame(POSITION_COLUMNS, {"amount": float, "cost_basis": float, "last_sale_price": float,
                                              "market_value": float})
    positions["dt"] = _bar_times(labels, np.zeros(0, dtype=np.int64))
    return positions


def _events_frame(log: list[OrderEvent], tz_index: pd.DatetimeIndex) -> pd.DataFrame:
    event_data = _columns(log, EVENT_COLUMNS, {"seq": np.int64, "order_id": np.int64, "bar": np.int64,
                                               "qty": float, "price": float, "amount": float, "filled": float,
                                               "limit": float, "stop": float}, derived=("dt",))
    event_data["dt"] = _bar_times(tz_index, event_data["bar"])
    return pd.DataFrame(event_data)


def _price_frame(store: Any, lo: int, hi: int) -> pd.DataFrame:
    parts = []
    bars = np.arange(lo, hi + 1, dtype=np.int64)
    for a in store.assets:
        cols = store.arrays[a.sid]
        close = cols["close"][lo:hi + 1]
        have = ~np.isnan(close)
        if not have.any():
            continue
        part = pd.DataFrame({"bar": bars[have], "asset": [a.symbol] * int(have.sum()),
                             **{f: cols[f][lo:hi + 1][have] for f in ("open", "high", "low", "close", "volume")}})
        part.insert(0, "dt", _bar_times(store.index, part["bar"].to_numpy()))
        parts.append(part)
    if not parts:
        return empty_frame(PRICE_COLUMNS, {"bar": np.int64})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["bar", "asset"], kind="stable").reset_index(drop=True) if len(parts) > 1 else out


def _columns(rows: list, columns: tuple | list, dtypes: dict[str, Any], derived: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    """The columns of row tuples, in order: numeric ones (``dtypes``) as numpy arrays, the
    others as lists. ``derived`` columns are left as None for the caller to fill (they are
    computed from other columns, e.g. a time from the bar number)."""
    n = len(rows)
    cols = zip(*rows) if rows else (() for _ in columns)
    data: dict[str, Any] = {}
    for name, values in zip(columns, cols):
        if name in derived:
            data[name] = None
            continue
        dtype = dtypes.get(name)
        if dtype is not None:
            data[name] = _numbers(values, dtype, n)
        else:
            data[name] = list(values) if values else np.array([], dtype=object)
    return data


def _numbers(values: Any, dtype: Any, n: int) -> np.ndarray:
    """``np.array(values, dtype)`` for a sequence; numpy's iterator path when there is no
    None among the values (several times cheaper than the generic conversion)."""
    try:
        return np.fromiter(values, dtype=dtype, count=n)
    except (TypeError, ValueError):  # None (-> NaN in a float column) or anything unusual
        return np.array(values, dtype=dtype)


def _orders_frame(order_list: list, tz_index: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per order (:data:`ORDER_COLUMNS`), read column by column off the orders."""
    n = len(order_list)

    def values(name: str) -> list:
        return list(map(attrgetter(name), order_list))

    def numbers(name: str, dtype: Any = float) -> np.ndarray:
        return _numbers(values(name), dtype, n)

    filled = numbers("filled")
    fill_value = numbers("fill_value")
    avg_fill_price = np.full(n, math.nan)
    np.divide(fill_value, np.abs(filled), out=avg_fill_price, where=filled != 0)
    created_bar = numbers("created_bar", np.int64)
    closed_bar = numbers("closed_bar", np.int64)
    good_till = values("good_till")
    if any(v is not None for v in good_till):
        good_till_col = _dt_column(pd.Series(good_till), tz_index)
    else:
        good_till_col = _bar_times(tz_index, np.full(n, -1, dtype=np.int64))
    data = {
        "id": numbers("id", np.int64),
        "asset": values("asset.symbol"),
        "style": values("style"),
        "amount": numbers("amount"),
        "filled": filled,
        "limit": numbers("limit"),
        "stop": numbers("stop"),
        "status": list(map(_PLAIN.__getitem__, map(attrgetter("status"), order_list))),
        "reason": values("reason"),
        "created": _bar_times(tz_index, np.maximum(created_bar, 0)),
        "closed_at": _bar_times(tz_index, closed_bar),
        "avg_fill_price": avg_fill_price,
        "commission": numbers("commission"),
        "parent_id": numbers("parent_id"),
        "child_ids": list(map(list, map(attrgetter("child_ids"), order_list))),
        "oco_ids": list(map(list, map(attrgetter("oco_ids"), order_list))),
        "role": values("role"),
        "trail_amount": numbers("trail_amount"),
        "trail_percent": numbers("trail_percent"),
        "limit_offset": numbers("limit_offset"),
        "trail_atr": numbers("trail_atr"),
        "atr_window": numbers("atr_window"),
        "tif": values("tif"),
        "good_till": good_till_col,
        "tag": values("tag"),
        "created_bar": created_bar,
        "first_bar": numbers("eligible_bar", np.int64),
    }
    if not n:  # no orders: typed empty columns, as an empty frame of rows gets them
        for name in ("asset", "style", "status", "reason", "child_ids", "oco_ids", "role", "tif", "tag"):
            data[name] = np.array([], dtype=object)
    return pd.DataFrame(data, columns=ORDER_COLUMNS)


def _fills_up_to(fill_bars: np.ndarray, bars: np.ndarray, contiguous: bool) -> np.ndarray:
    """For each of ``bars`` (ascending), how many of ``fill_bars`` (ascending) are at or
    before it: ``np.searchsorted(fill_bars, bars, side='right')``, by counting when there
    are many queries (one pass instead of a binary search each). ``contiguous``: ``bars``
    is a run of consecutive bars (then the counts are a slice)."""
    if len(bars) < 64 or not len(fill_bars) or fill_bars[0] < 0 or len(bars) * 4 < fill_bars[-1]:
        return np.searchsorted(fill_bars, bars, side="right")
    counts = np.bincount(fill_bars, minlength=int(bars[-1]) + 1)
    np.cumsum(counts, out=counts)
    return counts[int(bars[0]):int(bars[-1]) + 1] if contiguous else counts[bars]


def _after_fills(history: np.ndarray, counts: np.ndarray, before: float, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """``history`` (one value per fill) as it stood after ``counts`` fills; ``before``
    where there was none yet."""
    values = np.empty(len(history) + 1)
    values[0] = before
    values[1:] = history
    return np.take(values, counts, out=out)


def _bar_times(index: pd.DatetimeIndex, bars: np.ndarray) -> pd.Series:
    """``index[bars]`` as a datetime column (NaT where ``bars < 0``), without building
    Timestamp objects."""
    bars = np.asarray(bars, dtype=np.int64)
    values = index._data._ndarray  # datetime64 values (UTC when tz-aware)
    if len(values):
        out = values[np.clip(bars, 0, len(values) - 1)].astype("M8[ns]")
    else:
        out = np.zeros(len(bars), dtype="M8[ns]")
    out[bars < 0] = np.datetime64("NaT")
    col = pd.Series(out)
    if index.tz is not None:
        col = col.dt.tz_localize("UTC").dt.tz_convert(index.tz)
    return col


def _dt_column(values: pd.Series, like: pd.DatetimeIndex) -> pd.Series:
    out = pd.to_datetime(values, utc=like.tz is not None)
    if like.tz is not None:
        out = out.dt.tz_convert(like.tz)
    return out.astype(f"datetime64[ns, {like.tz}]" if like.tz is not None else "datetime64[ns]")


def _ffill_objects(col: pd.Series) -> pd.Series:
    try:
        return col.ffill()
    except (TypeError, ValueError):
        return col.astype(object).ffill()


def _clean_recorded(col: pd.Series) -> pd.Series:
    """A typed column for one recorded name: real numbers -> numeric (float64/int64),
    strings -> str, timestamps (also ``datetime.date`` and ``numpy.datetime64``) ->
    datetime; other objects (complex numbers, durations, lists, sets ...) become their
    text (:func:`record_text`). A name that held values of different kinds stays an
    object column (saved as JSON text, loaded back as is)."""
    if col.dtype == np.float64 or col.dtype == np.int64:  # (pandas found only real numbers: nothing to fix)
        return col

    def fix(v: Any) -> Any:
        if v is None or isinstance(v, (bool, np.bool_, pd.Timestamp)):
            return v
        if isinstance(v, str):
            return valid_text(v)
        if isinstance(v, (int, float, np.integer, np.floating)):
            return float(v) if isinstance(v, np.floating) and v.dtype.itemsize not in (4, 8) else v
        if isinstance(v, (_dt.datetime, _dt.date, np.datetime64)):
            return pd.Timestamp(v)
        return record_text(v)

    fixed = col.map(fix)
    # (missing: None, NaN, and the NaT of sessions before the first record of a timestamp)
    present = [v for v in fixed if v is not None and v is not pd.NaT and not (isinstance(v, float) and v != v)]
    kinds = {_kind(v) for v in present}
    if kinds <= {"number"}:
        try:
            return pd.to_numeric(fixed)
        except (TypeError, ValueError):  # (numbers next to a recorded NaT)
            return fixed.astype(object)
    if kinds == {"str"}:
        return fixed.astype("str")
    if kinds == {"timestamp"} and len({str(v.tz) for v in present}) == 1:
        return pd.to_datetime(fixed)
    return fixed.astype(object)


def _kind(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, float, np.number)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, pd.Timestamp):
        return "timestamp"
    return "other"
