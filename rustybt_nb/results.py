"""``BacktestResult``: everything a run produced, as plain pandas objects.

Frames: ``perf`` (one row per session: portfolio_value, returns, pnl, cash,
positions_value, then recorded values carried forward), ``orders`` (one row per order),
``order_events`` (the event log: every status change with its reason), ``fills``,
``positions`` (per session and asset held), ``trades`` (round trips; ``is_open`` marks
those still open at the end, valued at the last price), ``logs``; and ``metrics`` (a
Series). ``save(path)`` writes a folder of Parquet files plus ``meta.json`` (no pickle)
and ``BacktestResult.load(path)`` reads it back equal.

Recorded values that are not numbers, strings, booleans or timestamps are kept as
their text (``repr``) so the result stays saveable.

``perf``, ``trades``, ``logs`` and ``metrics`` are built when the run ends. ``orders``,
``order_events``, ``fills``, ``positions`` and ``prices`` are built from the run's own
records the first time they are read (then kept): a run whose caller only wants its
equity, trades and metrics (a parameter sweep, a widget re-run) does not pay for frames
it never looks at. Reading them gives the same frames either way.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .finance.ledger import FILL_COLUMNS, TRADE_COLUMNS
from .finance.order import _PLAIN, OrderEvent
from .metrics import compute_metrics, exposure_from_fills

if TYPE_CHECKING:
    from .simulation import Simulation

FRAMES = ("perf", "orders", "order_events", "fills", "positions", "trades", "logs", "prices")
PERF_COLUMNS = ["portfolio_value", "returns", "pnl", "cash", "positions_value"]
EVENT_COLUMNS = list(OrderEvent._fields)
ORDER_COLUMNS = ["id", "asset", "style", "amount", "filled", "limit", "stop", "status", "reason", "created",
                 "closed_at", "avg_fill_price", "commission", "parent_id", "child_ids", "oco_ids", "role",
                 "trail_amount", "trail_percent", "limit_offset", "tif", "good_till", "tag", "created_bar",
                 "first_bar"]
PRICE_COLUMNS = ["dt", "bar", "asset", "open", "high", "low", "close", "volume"]
POSITION_COLUMNS = ["dt", "asset", "amount", "cost_basis", "last_sale_price", "market_value"]
LOG_COLUMNS = ["dt", "level", "message"]


Frame = pd.DataFrame | Callable[[], pd.DataFrame]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored after, as it was).

    Building frames from a run's records allocates many containers (lists of values,
    row tuples) and frees almost nothing cyclic, yet every few hundred allocations the
    collector walks the run's live objects (orders, events) again: for 27k orders and
    55k events that walk is over half of the build time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Deferred:
    """A frame attribute that may be given as a builder (a function of no arguments):
    the first read calls it and keeps the frame in its place."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.key]
        if not isinstance(value, pd.DataFrame):
            with gc_paused():
                value = obj.__dict__[self.key] = value()
        return value

    def __set__(self, obj: Any, value: Frame) -> None:
        obj.__dict__[self.key] = value


class BacktestResult:
    """The outcome of one backtest (see the module docstring). Any of ``orders``,
    ``order_events``, ``fills``, ``positions`` and ``prices`` may be passed as a builder
    (a function of no arguments returning the frame), called on first read."""

    orders = _Deferred("One row per order (ORDER_COLUMNS), in submission order.")
    order_events = _Deferred("The event log: one row per status change (or trailing move), with its reason.")
    fills = _Deferred("One row per fill: quantity, price, commission, and the position and cash after it.")
    positions = _Deferred("One row per session end and asset held: amount, cost basis, price, market value.")
    prices = _Deferred("The simulated bars of every asset (long format: dt, bar, asset, OHLCV), for charts.")

    def __init__(self, perf: pd.DataFrame, orders: Frame, order_events: Frame, fills: Frame,
                 positions: Frame, trades: pd.DataFrame, logs: pd.DataFrame, metrics: pd.Series,
                 settings: dict[str, Any], run_info: dict[str, Any], prices: Frame | None = None) -> None:
        self.perf = perf
        self.orders = orders
        self.order_events = order_events
        self.fills = fills
        self.positions = positions
        self.trades = trades
        self.logs = logs
        self.metrics = metrics
        self.settings = settings
        self.run_info = run_info
        self.prices = prices if prices is not None else _no_prices

    # ---------------------------------------------------------------- views
    @property
    def portfolio_value(self) -> pd.Series:
        return self.perf["portfolio_value"]

    @property
    def returns(self) -> pd.Series:
        return self.perf["returns"]

    def order_log(self, order_id: int | None = None) -> pd.DataFrame:
        """The event log (optionally of one order)."""
        ev = self.order_events
        return ev[ev["order_id"] == order_id] if order_id is not None else ev

    # ------------------------------------------------ notebook views (rustybt_nb.analytics)
    def plot(self, **kwargs: Any) -> Any:
        """Equity, drawdown and fills on price (a plotly figure); see
        :func:`rustybt_nb.analytics.plot_result`."""
        from .analytics.equity import plot_result

        return plot_result(self, **kwargs)

    def plot_order_timeline(self, **kwargs: Any) -> Any:
        """One row per order, a segment per status, fills and links; see
        :func:`rustybt_nb.analytics.plot_order_timeline`."""
        from .analytics.timeline import plot_order_timeline

        return plot_order_timeline(self, **kwargs)

    def plot_trailing_stops(self, asset: Any = None, **kwargs: Any) -> Any:
        """Price with each trailing stop's level over time; see
        :func:`rustybt_nb.analytics.plot_trailing_stops`."""
        from .analytics.trailing import plot_trailing_stops

        return plot_trailing_stops(self, asset=asset, **kwargs)

    def partial_fills(self, **kwargs: Any) -> Any:
        """Every order that filled in several slices, slice by slice (a styled table);
        see :func:`rustybt_nb.analytics.partial_fills`."""
        from .analytics.tables import partial_fills

        return partial_fills(self, **kwargs)

    def orders_table(self, **kwargs: Any) -> Any:
        """The orders as a styled table; see :func:`rustybt_nb.analytics.orders_table`."""
        from .analytics.tables import orders_table

        return orders_table(self, **kwargs)

    def _exchange_tz(self) -> Any:
        """The exchange's time zone for minute runs on an exchange calendar (text shows local
        exchange time), else None."""
        s = self.settings
        if s.get("frequency") != "minute" or not s.get("calendar") or s.get("start") is None:
            return None
        from .calendars import exchange_calendar

        try:
            return exchange_calendar(s["calendar"], pd.Timestamp(s["start"]), pd.Timestamp(s["end"])).tz
        except Exception:  # an unknown calendar name: fall back to the stored (UTC) times
            return None

    def order_log_text(self, order_ids: list[int] | None = None, *, trailing: bool = False) -> str:
        """The event log as text, one line per event in time order, with closed trades
        interleaved where they close::

            2018-01-12  #1   buy  1 market          fill          +1 @ 210.00  market order filled at the open

        Each line describes the order as it stood after that event (side, amount, limit and
        stop come from the event row, so a modified order reads as it was at the time). A
        trailing order's trail is shown unless it was modified; its ``updated`` events say
        what it changed to. Trailing-stop moves are left out unless ``trailing=True``.
        """
        ev = self.order_events
        if order_ids is not None:
            ev = ev[ev["order_id"].isin(order_ids)]
        if not trailing:
            ev = ev[ev["kind"] != "trailed"]
        orders = self.orders.set_index("id") if len(self.orders) else self.orders
        all_events = self.order_events
        retrailed = set(all_events.loc[(all_events["kind"] == "updated")
                                       & all_events["reason"].str.contains("trail_", regex=False), "order_id"])
        tz = self._exchange_tz()
        events = list(ev.itertuples(index=False))
        descs = [_style_text(orders.loc[e.order_id], e.limit, e.stop, show_trail=e.order_id not in retrailed)
                 for e in events]
        width = max([22, *map(len, descs)])
        rows: list[tuple[Any, int, str]] = []
        for k, (e, desc) in enumerate(zip(events, descs)):
            side = "buy " if e.amount > 0 else "sell"
            fill = f"{e.qty:+g} @ {e.price:.2f}" if e.qty == e.qty else ""
            line = f"{_d(e.dt, tz)}  #{e.order_id:<3} {side} {abs(e.amount):<5g} {desc:<{width}} {e.kind:<13} " \
                   f"{fill:<16} {e.reason}"
            rows.append((e.dt, k, line.rstrip()))
        trades = self.trades[~self.trades["is_open"]] if len(self.trades) else self.trades
        for t in trades.itertuples(index=False):
            if order_ids is not None and not set(t.order_ids) & set(order_ids):
                continue
            line = (f"{_d(t.exit_dt, tz)}  trade closed: {t.direction} {t.size:g} {t.asset} "
                    f"{t.entry_price:.2f} -> {t.exit_price:.2f}, pnl {t.pnl:+.2f}, net {t.net_pnl:+.2f}")
            rows.append((t.exit_dt, len(rows) + 10**9, line))
        rows.sort(key=lambda r: (r[0], r[1]))
        return "\n".join(r[2] for r in rows)

    def summary(self) -> str:
        """A few lines: run settings, headline metrics, order counts."""
        s, m = self.settings, self.metrics
        tz = self._exchange_tz()
        st = self.orders["status"].value_counts() if len(self.orders) else pd.Series(dtype=int)
        counts = ", ".join(f"{k} {v}" for k, v in st.items()) or "none"
        synth = ", synthetic minute bars" if s.get("synthetic") else ""
        lines = [
            f"Backtest {s.get('algorithm', '?')} on {', '.join(s.get('symbols', []))} "
            f"({s.get('frequency')}{synth}), {_d(s.get('start'), tz)} -> {_d(s.get('end'), tz)}, "
            f"{int(m['sessions'])} sessions",
            f"  capital {m['start_value']:,.2f} -> {m['end_value']:,.2f}   total return {_pct(m['total_return'])}"
            f"   CAGR {_pct(m['cagr'])}",
            f"  Sharpe {_num(m['sharpe'])}   Sortino {_num(m['sortino'])}   max drawdown {_pct(m['max_drawdown'])}"
            f"   exposure {_pct(m['exposure'])}",
            f"  trades {int(m['trade_count'])}{_open_trades(self.trades)}   win rate {_pct(m['win_rate'])}"
            f"   profit factor {_num(m['profit_factor'])}   commission {m['total_commission']:,.2f}",
            f"  orders {len(self.orders)} ({counts}), fills {len(self.fills)}",
            f"  fill model {s.get('fill_model')}, slippage {s.get('slippage')}, commission {s.get('commission')}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    # ---------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the result to folder ``path`` (Parquet frames + meta.json)."""
        _need_pyarrow()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        json_columns = {}
        for name in FRAMES:
            frame, encoded = _encode_objects(getattr(self, name))
            frame.to_parquet(folder / f"{name}.parquet")
            if encoded:
                json_columns[name] = encoded
        self.metrics.to_frame().to_parquet(folder / "metrics.parquet")
        meta = {"format": "rustybt_nb.BacktestResult", "version": 1, "json_columns": json_columns,
                "settings": _jsonable(self.settings), "run_info": _jsonable(self.run_info)}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BacktestResult:
        """Read a result written by :meth:`save`."""
        _need_pyarrow()
        folder = Path(path)
        meta_file = folder / "meta.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{meta_file} not found: `path` must be a folder written by result.save()")
        meta = json.loads(meta_file.read_text())
        frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
        for name, cols in meta.get("json_columns", {}).items():
            frames[name] = _decode_objects(frames[name], cols)
        for name in ("orders", "trades"):
            df = frames[name]
            for col in ("child_ids", "oco_ids", "order_ids"):
                if col in df:
                    df[col] = df[col].map(lambda v: [int(x) for x in v] if v is not None else [])
        metrics = pd.read_parquet(folder / "metrics.parquet").iloc[:, 0].rename("metrics")
        return cls(**frames, metrics=metrics, settings=_unjson(meta["settings"]),
                   run_info=_unjson(meta["run_info"]))

    def equals(self, other: BacktestResult) -> bool:
        """True when every frame, the metrics and the settings are equal."""
        try:
            for name in FRAMES:
                pd.testing.assert_frame_equal(getattr(self, name), getattr(other, name), check_exact=True)
            pd.testing.assert_series_equal(self.metrics, other.metrics, check_exact=True)
        except AssertionError:
            return False
        return _jsonable(self.settings) == _jsonable(other.settings)


# ============================================================== building
def build_result(sim: Simulation, wall: float) -> BacktestResult:
    """Assemble the frames from a finished (or interrupted) simulation."""
    with gc_paused():
        return _build_result(sim, wall)


def _build_result(sim: Simulation, wall: float) -> BacktestResult:
    store, clock, ledger, book = sim.store, sim.clock, sim.ledger, sim.book
    lo = sim.lo
    hi = max(min(sim.last_bar, sim.hi), lo - 1)
    tz_index = store.index
    if hi >= lo:
        s0, s1 = int(clock.session_of_bar[lo]), int(clock.session_of_bar[hi])
        end_bars = clock.session_last_bar[s0:s1 + 1]  # (a view: copied before the last one is capped)
        if end_bars[-1] > hi:  # a run that stops inside its last session
            end_bars = end_bars.copy()
            end_bars[-1] = hi
    else:
        s0, s1 = 0, -1
        end_bars = np.zeros(0, dtype=np.int64)
    labels = clock.session_labels[s0:s1 + 1]
    # one bar per session (daily data): per-session values are slices of per-bar arrays
    b0 = int(end_bars[0]) if len(end_bars) else 0
    contiguous = len(end_bars) > 0 and int(end_bars[-1]) - b0 == len(end_bars) - 1

    fill_data = _columns(ledger.fills, FILL_COLUMNS, {"bar": np.int64, "order_id": np.int64, "qty": float,
                                                      "price": float, "commission": float, "realized_pnl": float,
                                                      "position_after": float, "cash_after": float,
                                                      "bar_volume": float}, derived=("dt",))
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
    held_parts: list[tuple[Any, ...]] = []  # (symbol, held, amount, bases, counts, price, value) per asset held
    cost_hist = np.asarray(ledger.cost_basis_after, dtype=float)
    fill_assets = np.array(fill_data["asset"], dtype=object)
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
    perf = pd.DataFrame(block.T, index=pd.DatetimeIndex(labels, name="session", freq=None), columns=PERF_COLUMNS,
                        copy=False)
    if sim.records:
        rec = pd.DataFrame.from_dict({int(s): v for s, v in sim.records.items()}, orient="index")
        rec = rec.reindex(np.arange(s0, s1 + 1)).ffill()
        rec.index = perf.index
        for col in rec.columns:
            name = col if col not in perf.columns else f"recorded_{col}"
            perf[name] = _clean_recorded(rec[col])

    last = hi if hi >= lo else lo
    trade_rows = list(ledger.trades) + ledger.open_trade_rows(
        store.index[last], last, lambda a: float(store.arrays[a.sid]["price"][last]))
    trade_data = _columns(trade_rows, TRADE_COLUMNS, {
        "entry_bar": float, "exit_bar": float, "size": float, "entry_price": float, "exit_price": float,
        "pnl": float, "commission": float, "net_pnl": float, "return_pct": float, "bars_held": float,
        "is_open": bool}, derived=("entry_dt", "exit_dt"))
    entry, exit_ = trade_data["entry_bar"], trade_data["exit_bar"]
    trade_data["entry_dt"] = _bar_times(tz_index, np.where(entry == entry, entry, -1).astype(np.int64))
    trade_data["exit_dt"] = _bar_times(tz_index, np.where(exit_ == exit_, exit_, -1).astype(np.int64))
    trades = pd.DataFrame(trade_data)

    if sim.logs:
        logs = pd.DataFrame(sim.logs, columns=LOG_COLUMNS)
        logs["dt"] = _dt_column(logs["dt"], tz_index)
        logs = logs.sort_values("dt", kind="stable").reset_index(drop=True)
    else:
        logs = pd.DataFrame({"dt": _bar_times(tz_index, np.zeros(0, dtype=np.int64)),
                             "level": np.array([], dtype=object), "message": np.array([], dtype=object)})

    periods = 365.0 if (store.calendar or "").upper() in ("24/7", "ALWAYS_OPEN") else 252.0
    exposure = exposure_from_fills(fill_bars, fill_assets, amt_hist, lo, hi)
    metrics = compute_metrics(perf, trades, ledger.starting_cash, periods, ledger.total_commission, exposure)
    bars = max(0, hi - lo + 1)
    run_info = {"wall_seconds": wall, "bars": bars, "bars_per_second": bars / wall if wall > 0 else math.nan,
                "orders": len(book.orders), "events": len(book.log), "completed": sim.error is None,
                "error": None if sim.error is None else f"{type(sim.error).__name__}: {sim.error}"}
    # the other frames are built on first read, from the run's records (they do not change any more)
    order_list, log = list(book.orders.values()), book.log
    return BacktestResult(
        perf, lambda: _orders_frame(order_list, tz_index), lambda: _events_frame(log, tz_index),
        lambda: _fills_frame(fill_data, tz_index), lambda: _positions_frame(held_parts, labels),
        trades, logs, metrics, dict(sim.settings), run_info,
        prices=lambda: _price_frame(store, lo, max(hi, lo - 1)))


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
    positions = _frame([], POSITION_COLUMNS, {"amount": float, "cost_basis": float, "last_sale_price": float,
                                              "market_value": float})
    positions["dt"] = _bar_times(labels, np.zeros(0, dtype=np.int64))
    return positions


def _events_frame(log: list[OrderEvent], tz_index: pd.DatetimeIndex) -> pd.DataFrame:
    event_data = _columns(log, EVENT_COLUMNS, {"seq": np.int64, "order_id": np.int64, "bar": np.int64,
                                               "qty": float, "price": float, "amount": float, "filled": float,
                                               "limit": float, "stop": float}, derived=("dt",))
    event_data["dt"] = _bar_times(tz_index, event_data["bar"])
    return pd.DataFrame(event_data)


def _no_prices() -> pd.DataFrame:
    return _frame([], PRICE_COLUMNS, {"bar": np.int64, "open": float, "high": float, "low": float, "close": float,
                                      "volume": float})


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
        return _frame([], PRICE_COLUMNS, {"bar": np.int64})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["bar", "asset"], kind="stable").reset_index(drop=True) if len(parts) > 1 else out


def _frame(rows: list, columns: tuple | list, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from row tuples, built column by column (numeric columns straight
    into numpy arrays of the given dtype)."""
    return pd.DataFrame(_columns(rows, columns, dtypes), columns=list(columns))


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


def _clean_recorded(col: pd.Series) -> pd.Series:
    """A typed column for one recorded name: numbers -> numeric, strings -> str,
    timestamps -> datetime; other objects become their repr. A name that held values of
    different kinds stays an object column (saved as JSON text, loaded back as is)."""
    def fix(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str, np.number, np.bool_, pd.Timestamp)):
            return v
        if isinstance(v, (_dt.datetime, _dt.date)):
            return pd.Timestamp(v)
        return repr(v)

    fixed = col.map(fix)
    present = [v for v in fixed if v is not None and not (isinstance(v, float) and v != v)]
    kinds = {_kind(v) for v in present}
    if kinds <= {"number"}:
        return pd.to_numeric(fixed)
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


def _encode_objects(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Object columns of mixed values -> JSON text (for Parquet); returns their names."""
    names = [c for c in df.columns if df[c].dtype == object and not _is_list_column(df[c])]
    if not names:
        return df, names
    out = df.copy()
    for c in names:
        out[c] = df[c].map(lambda v: json.dumps(_jsonable(v))).astype("str")
    return out, names


def _decode_objects(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    for c in names:
        df[c] = df[c].map(lambda v: _unjson(json.loads(v))).astype(object)
    return df


def _is_list_column(col: pd.Series) -> bool:
    return any(isinstance(v, list) for v in col.head(50))


# ============================================================== json helpers
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return {"__ts__": obj.isoformat()}
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return {"__ts__": pd.Timestamp(obj).isoformat()}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


def _unjson(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ts__"}:
            return pd.Timestamp(obj["__ts__"])
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _unjson(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjson(v) for v in obj]
    return obj


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover
        raise ImportError("saving and loading results needs pyarrow: pip install pyarrow "
                          "(or pip install 'rustybt_nb[parquet]')") from None


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x * 100:.2f}%"


def _num(x: float) -> str:
    return "n/a" if x != x else ("inf" if math.isinf(x) else f"{x:.2f}")


def _d(ts: Any, tz: Any = None) -> str:
    """A date, or for an intraday time ``YYYY-MM-DD HH:MM`` in ``tz`` (with its abbreviation)."""
    if ts is None:
        return "?"
    ts = pd.Timestamp(ts)
    if ts == ts.normalize():
        return str(ts.date())
    if tz is not None and ts.tzinfo is not None:
        return ts.tz_convert(tz).strftime("%Y-%m-%d %H:%M %Z")
    return str(ts)


def _open_trades(trades: pd.DataFrame) -> str:
    """`` (+1 open)`` when round trips are still open at the end (the metrics count closed ones)."""
    n = int(trades["is_open"].sum()) if len(trades) else 0
    return f" (+{n} open)" if n else ""


def _style_text(o: pd.Series, limit: float, stop: float, show_trail: bool = True) -> str:
    """``[role] style [limit] [stop] [trail]`` of order row ``o``, with the given limit and stop."""
    style = o["style"]
    parts = [style.replace("_", " ")]
    role = o.get("role")
    if isinstance(role, str) and role:
        parts.insert(0, role.replace("_", "-"))
    if limit == limit and style in ("limit", "stop_limit"):
        parts.append(f"{limit:g}")
    if stop == stop and style in ("stop", "stop_limit"):
        parts.append(f"{stop:g}")
    if show_trail and o["trail_amount"] == o["trail_amount"]:
        parts.append(f"trail {o['trail_amount']:g}")
    if show_trail and o["trail_percent"] == o["trail_percent"]:
        parts.append(f"trail {o['trail_percent']:.1%}")
    return " ".join(parts)
