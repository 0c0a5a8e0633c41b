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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .finance.order import OrderEvent
from .formatting import TEXT, number, order_description, percent, time_text

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


def empty_frame(columns: tuple | list, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A frame with no rows: the columns named in ``dtypes`` of that dtype, the others object."""
    return pd.DataFrame({c: np.array([], dtype=dtypes.get(c, object)) for c in columns}, columns=list(columns))


def _no_prices() -> pd.DataFrame:
    return empty_frame(PRICE_COLUMNS, {"bar": np.int64, "open": float, "high": float, "low": float, "close": float,
                                       "volume": float})


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

    @property
    def tz(self) -> Any:
        """The exchange's time zone of a minute run (the zone its naive user times were read
        in; the text views show times in it), else None."""
        s = self.settings
        if s.get("frequency") != "minute" or s.get("start") is None:
            return None
        if s.get("tz"):
            return s["tz"]
        if not s.get("calendar"):  # (results saved before runs recorded their zone)
            return None
        from .calendars import calendar_tz

        try:
            return calendar_tz(s["calendar"])
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
        tz = self.tz
        events = list(ev.itertuples(index=False))
        descs = []
        for e in events:  # the order as it stood after each event (limit and stop from the event row)
            o = orders.loc[e.order_id]
            trail = (math.nan, math.nan) if e.order_id in retrailed else (o["trail_amount"], o["trail_percent"])
            descs.append(order_description(o["style"], o["role"], e.limit, e.stop, *trail))
        width = max([22, *map(len, descs)])
        rows: list[tuple[Any, int, str]] = []
        for k, (e, desc) in enumerate(zip(events, descs)):
            side = "buy " if e.amount > 0 else "sell"
            fill = f"{e.qty:+g} @ {e.price:.2f}" if e.qty == e.qty else ""
            when = time_text(e.dt, tz, na="?")
            line = f"{when}  #{e.order_id:<3} {side} {abs(e.amount):<5g} {desc:<{width}} {e.kind:<13} " \
                   f"{fill:<16} {e.reason}"
            rows.append((e.dt, k, line.rstrip()))
        trades = self.trades[~self.trades["is_open"]] if len(self.trades) else self.trades
        for t in trades.itertuples(index=False):
            if order_ids is not None and not set(t.order_ids) & set(order_ids):
                continue
            line = (f"{time_text(t.exit_dt, tz, na='?')}  trade closed: {t.direction} {t.size:g} {t.asset} "
                    f"{t.entry_price:.2f} -> {t.exit_price:.2f}, pnl {t.pnl:+.2f}, net {t.net_pnl:+.2f}")
            rows.append((t.exit_dt, len(rows) + 10**9, line))
        rows.sort(key=lambda r: (r[0], r[1]))
        return "\n".join(r[2] for r in rows)

    def summary(self) -> str:
        """A few lines: run settings, headline metrics, order counts."""
        s, m = self.settings, self.metrics
        tz = self.tz
        st = self.orders["status"].value_counts() if len(self.orders) else pd.Series(dtype=int)
        counts = ", ".join(f"{k} {v}" for k, v in st.items()) or "none"
        synth = ", synthetic minute bars" if s.get("synthetic") else ""
        start, end = (time_text(s.get(k), tz, na="?") for k in ("start", "end"))
        num, pct = partial(number, **TEXT), partial(percent, **TEXT)
        lines = [
            f"Backtest {s.get('algorithm', '?')} on {', '.join(s.get('symbols', []))} "
            f"({s.get('frequency')}{synth}), {start} -> {end}, {int(m['sessions'])} sessions",
            f"  capital {num(m['start_value'])} -> {num(m['end_value'])}   total return {pct(m['total_return'])}"
            f"   CAGR {pct(m['cagr'])}",
            f"  Sharpe {num(m['sharpe'])}   Sortino {num(m['sortino'])}   max drawdown {pct(m['max_drawdown'])}"
            f"   exposure {pct(m['exposure'])}",
            f"  trades {int(m['trade_count'])}{_open_trades(self.trades)}   win rate {pct(m['win_rate'])}"
            f"   profit factor {num(m['profit_factor'])}   commission {num(m['total_commission'])}",
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


def _open_trades(trades: pd.DataFrame) -> str:
    """`` (+1 open)`` when round trips are still open at the end (the metrics count closed ones)."""
    n = int(trades["is_open"].sum()) if len(trades) else 0
    return f" (+{n} open)" if n else ""


