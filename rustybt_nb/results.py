"""``BacktestResult``: everything a run produced, as plain pandas objects.

Frames: ``perf`` (one row per session: portfolio_value, returns, pnl, cash,
positions_value, then recorded values carried forward), ``orders`` (one row per order),
``order_events`` (the event log: every status change with its reason), ``fills``,
``positions`` (per session and asset held), ``trades`` (round trips; ``is_open`` marks
those still open at the end, valued at the last price), ``logs``, ``prices`` and
``indicators`` (the simulated bars and the run's indicators, long format); and
``metrics`` (a Series). ``save(path)`` writes a folder of Parquet files plus ``meta.json`` (no pickle)
and ``BacktestResult.load(path)`` reads it back equal (``equals``; every frame with its
dtypes). Two saves of two identical runs are the same bytes, file by file: the wall-clock
figures of ``run_info`` (``wall_seconds``, ``bars_per_second``) describe how fast the
run went, not what it did, and are not saved (a loaded result's ``run_info`` lacks them).

Recorded values (``record``): real numbers, booleans, strings, ``None`` and timestamps
(``pandas.Timestamp``, ``datetime.datetime``/``date``, ``numpy.datetime64``: all become
Timestamps) are kept as they are; any other object (a complex number, a duration, a
list, a set, an instance of your own class) is kept as its text (:func:`record_text`:
its ``repr``, without the memory address of a default repr and with a set's items sorted,
so that the same run gives the same text), so the result stays saveable and round-trips
exactly. Text that is not valid Unicode (lone surrogates) is kept with those code
points escaped.

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
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .finance.order import OrderEvent
from .formatting import TEXT, describe_order, number, order_description, percent, time_text

FRAMES = ("perf", "orders", "order_events", "fills", "positions", "trades", "logs", "prices", "indicators")
#: frames a result saved by an earlier version may lack (read as empty)
OPTIONAL_FRAMES = ("indicators",)
PERF_COLUMNS = ["portfolio_value", "returns", "pnl", "cash", "positions_value"]
EVENT_COLUMNS = list(OrderEvent._fields)
ORDER_COLUMNS = ["id", "asset", "style", "amount", "filled", "limit", "stop", "status", "reason", "created",
                 "closed_at", "avg_fill_price", "commission", "parent_id", "child_ids", "oco_ids", "role",
                 "trail_amount", "trail_percent", "limit_offset", "tif", "good_till", "tag", "created_bar",
                 "first_bar", "trail_atr", "atr_window"]
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


def _no_indicators() -> pd.DataFrame:
    return empty_frame(("dt", "bar", "asset"), {"bar": np.int64})


class BacktestResult:
    """The outcome of one backtest (see the module docstring). Any of ``orders``,
    ``order_events``, ``fills``, ``positions`` and ``prices`` may be passed as a builder
    (a function of no arguments returning the frame), called on first read."""

    orders = _Deferred("One row per order (ORDER_COLUMNS), in submission order.")
    order_events = _Deferred("The event log: one row per status change (or trailing move), with its reason.")
    fills = _Deferred("One row per fill: quantity, price, commission, and the position and cash after it.")
    positions = _Deferred("One row per session end and asset held: amount, cost basis, price, market value.")
    prices = _Deferred("The simulated bars of every asset (long format: dt, bar, asset, OHLCV), for charts.")
    indicators = _Deferred("The run's indicators over its bars (long format: dt, bar, asset, a column per "
                           "indicator).")

    def __init__(self, perf: pd.DataFrame, orders: Frame, order_events: Frame, fills: Frame,
                 positions: Frame, trades: pd.DataFrame, logs: pd.DataFrame, metrics: pd.Series,
                 settings: dict[str, Any], run_info: dict[str, Any], prices: Frame | None = None,
                 indicators: Frame | None = None) -> None:
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
        self.indicators = indicators if indicators is not None else _no_indicators

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
            descs.append(order_description(o["style"], o["role"], e.limit, e.stop) if e.order_id in retrailed
                         else describe_order(o, limit=e.limit, stop=e.stop))
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
        lines += [f"  note: {note}" for note in (self.run_info or {}).get("notes") or ()]  # why a metric is inf/NaN
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    # ---------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the result to folder ``path`` (Parquet frames + ``meta.json``); returns it.

        The folder is made if needed; a result saved there before is replaced (its
        ``meta.json`` goes first and the new one is written last, so a save that fails
        half-way leaves a folder that ``load`` refuses, never a mix of two results).
        ``run_info``'s wall-clock figures are not saved (see the module docstring), so two
        identical runs save identical bytes.

        Raises ``FileExistsError`` when ``path`` is a file, ``TypeError`` for a ``path``
        that is not a str or Path, ``OSError`` (the message naming the folder) when the
        folder cannot be written.
        """
        _need_pyarrow()
        folder = _folder_arg(path)
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(
                f"`path`={str(path)!r} is a file; save() writes a folder (Parquet frames + meta.json): "
                f"pass a folder path that is not taken, e.g. {str(folder.with_suffix('')) + '_result'!r}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "meta.json").unlink(missing_ok=True)
        except OSError as exc:
            raise type(exc)(f"cannot save the result to {str(folder)!r}: {exc.strerror or exc} "
                            "(a part of the path is a file, or the folder is not writable); "
                            "fix: pass another `path`") from None
        json_columns: dict[str, list[str]] = {}
        dtypes: dict[str, dict[str, str]] = {}
        frames = {name: getattr(self, name) for name in FRAMES}
        frames["metrics"] = self.metrics.to_frame()
        for name, frame in frames.items():
            encoded: list[str] = []
            if name != "metrics":
                frame, encoded = _encode_objects(frame)
            if encoded:
                json_columns[name] = encoded
            kept = _unit_dtypes(frame)
            if kept:
                dtypes[name] = kept
            try:
                frame.to_parquet(folder / f"{name}.parquet")
            except OSError as exc:
                raise type(exc)(f"cannot write {str(folder / f'{name}.parquet')!r}: {exc}") from None
            except Exception as exc:  # pyarrow refusing a value
                raise ValueError(f"cannot save frame {name!r} of the result to {str(folder)!r}: "
                                 f"{type(exc).__name__}: {exc}") from None
        run_info = {k: v for k, v in self.run_info.items() if k not in UNSAVED_RUN_INFO}
        meta = {"format": FORMAT, "version": VERSION, "json_columns": json_columns,
                "settings": _jsonable(self.settings), "run_info": _jsonable(run_info)}
        if dtypes:
            meta["dtypes"] = dtypes
        temp = folder / "meta.json.partial"
        try:
            temp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
            temp.replace(folder / "meta.json")
        except OSError as exc:
            raise type(exc)(f"cannot write {str(folder / 'meta.json')!r}: {exc}") from None
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BacktestResult:
        """Read a result written by :meth:`save`.

        Raises ``FileNotFoundError`` when the folder, its ``meta.json`` or one of its
        frames is missing, and ``ValueError`` when a file is damaged (``meta.json`` that
        is not JSON or not a saved result, a Parquet file that cannot be read) — each
        naming the file and the fix.
        """
        _need_pyarrow()
        folder = _folder_arg(path)
        meta_file = folder / "meta.json"
        if not folder.exists():
            raise FileNotFoundError(f"`path`={str(path)!r} does not exist (absolute path "
                                    f"{str(folder.absolute())!r}): pass a folder written by result.save()")
        if not folder.is_dir():
            raise FileNotFoundError(f"`path`={str(path)!r} is a file, not a folder: pass the folder that "
                                    "result.save() wrote (it holds meta.json and the .parquet frames)")
        if not meta_file.exists():
            raise FileNotFoundError(
                f"{meta_file} not found: `path` must be a folder written by result.save() (a save that did not "
                "finish leaves none); fix: save the result again")
        meta = _read_meta(meta_file)
        names = (*FRAMES, "metrics")
        missing = [f"{name}.parquet" for name in names
                   if name not in OPTIONAL_FRAMES and not (folder / f"{name}.parquet").is_file()]
        if missing:
            raise FileNotFoundError(
                f"the saved result in {str(folder)!r} lacks {', '.join(missing)} (files were removed or the "
                "folder was copied in part); fix: copy the whole folder, or save the result again")
        frames = {name: _read_frame(folder / f"{name}.parquet") for name in names
                  if name not in OPTIONAL_FRAMES or (folder / f"{name}.parquet").is_file()}
        for name, kept in meta.get("dtypes", {}).items():
            if name in frames:
                frames[name] = _restore_dtypes(frames[name], kept)
        for name, cols in meta.get("json_columns", {}).items():
            if name not in frames:
                continue
            try:
                frames[name] = _decode_objects(frames[name], cols)
            except (KeyError, TypeError, ValueError) as exc:  # (json.JSONDecodeError is a ValueError)
                raise ValueError(f"{str(folder / f'{name}.parquet')!r} is damaged: its column(s) {cols} do "
                                 f"not hold the JSON text save() wrote ({exc}); fix: save the result again"
                                 ) from None
        for name in ("orders", "trades"):
            df = frames[name]
            for col in ("child_ids", "oco_ids", "order_ids"):
                if col in df:
                    df[col] = df[col].map(lambda v: [int(x) for x in v] if v is not None else [])
        metrics_frame = frames.pop("metrics")
        if metrics_frame.shape[1] != 1:
            raise ValueError(f"{str(folder / 'metrics.parquet')!r} is damaged (it has {metrics_frame.shape[1]} "
                             "columns, save() writes one); fix: save the result again")
        metrics = metrics_frame.iloc[:, 0].rename("metrics")
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


FORMAT = "rustybt_nb.BacktestResult"
VERSION = 1
#: ``run_info`` keys that are not saved: how fast the run went, not what it did.
UNSAVED_RUN_INFO = ("wall_seconds", "bars_per_second")


def _folder_arg(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a folder path (a str or pathlib.Path), got {type(path).__name__}: "
                        f"{path!r}")
    folder = Path(path)
    if not str(path).strip():
        raise ValueError("`path`='' is empty: pass a folder path, e.g. 'results/my_run'")
    return folder


def _read_meta(meta_file: Path) -> dict[str, Any]:
    """``meta.json`` of a saved result, or a ValueError that says what is wrong with it."""
    damaged = f"{str(meta_file)!r} is damaged"
    fix = "fix: save the result again (or restore the folder from a copy)"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{damaged}: it is not UTF-8 text; {fix}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{damaged}: it is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}); "
                         f"{fix}") from None
    except OSError as exc:
        raise type(exc)(f"cannot read {str(meta_file)!r}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{str(meta_file)!r} does not describe a saved BacktestResult (no \"format\": "
                         f"{FORMAT!r}); `path` must be a folder written by result.save()")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{str(meta_file)!r} is of format version {version!r}; this rustybt_nb reads version "
                         f"{VERSION}: upgrade rustybt_nb to load it")
    bad = [k for k, kind in (("settings", dict), ("run_info", dict), ("json_columns", dict)) if
           not isinstance(meta.get(k, {}), kind)] + [k for k in ("settings", "run_info") if k not in meta]
    if bad:
        raise ValueError(f"{damaged}: {', '.join(repr(k) for k in dict.fromkeys(bad))} missing or not an "
                         f"object; {fix}")
    return meta


def _read_frame(file: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except OSError as exc:
        if isinstance(exc, PermissionError | IsADirectoryError):
            raise type(exc)(f"cannot read {str(file)!r}: {exc}") from None
        raise ValueError(f"{str(file)!r} is damaged: it cannot be read as Parquet ({exc}); "
                         "fix: save the result again (or restore the folder from a copy)") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid ...)
        raise ValueError(f"{str(file)!r} is damaged: it cannot be read as Parquet ({type(exc).__name__}: {exc}); "
                         "fix: save the result again (or restore the folder from a copy)") from None


def _in_seconds(dtype: Any) -> bool:
    return (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)) and \
        np.datetime_data(getattr(dtype, "base", dtype))[0] == "s"


def _unit_dtypes(df: pd.DataFrame) -> dict[str, Any]:
    """Datetime and duration columns (and index) in seconds: Parquet stores them in
    milliseconds, so their dtype is kept in meta.json and put back on load."""
    kept: dict[str, Any] = {}
    columns = {str(c): str(df[c].dtype) for c in df.columns if _in_seconds(df[c].dtype)}
    if columns:
        kept["columns"] = columns
    if _in_seconds(df.index.dtype):
        kept["index"] = str(df.index.dtype)
    return kept


def _restore_dtypes(df: pd.DataFrame, kept: Any) -> pd.DataFrame:
    try:
        if "index" in kept:
            df.index = df.index.astype(kept["index"])
        for name, dtype in kept.get("columns", {}).items():
            if name in df.columns:
                df[name] = df[name].astype(dtype)
    except (AttributeError, TypeError, ValueError):  # (a damaged entry: the frame stays as read)
        pass
    return df


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
        values = np.empty(len(df), dtype=object)  # (filled item by item: no inference turns NaT into NaN
        for k, v in enumerate(df[c]):              # and no list becomes a row of a 2-d array)
            values[k] = _unjson(json.loads(v))
        df[c] = pd.Series(values, index=df.index, dtype=object)
    return df


def _is_list_column(col: pd.Series) -> bool:
    return any(isinstance(v, list) for v in col.head(50))


# ============================================================ recorded text
def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not storable as UTF-8 (Parquet, JSON)
        return False
    return True


def valid_text(value: Any) -> Any:
    """A str that UTF-8 can store (lone surrogates escaped as ``\\udxxx``); other values as they are."""
    if isinstance(value, str) and not _utf8(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def record_text(value: Any, _seen: frozenset[int] = frozenset()) -> str:
    """The text an object is kept as (a recorded value, a setting): its ``repr``, made the
    same for the same value in every run: without the memory address of a default repr
    (``<Thing object>``), and with the items of a set sorted (their order changes with the
    interpreter's hash seed)."""
    if id(value) in _seen:
        return "..."
    seen = _seen | {id(value)}
    kind = type(value)
    if kind in (set, frozenset):
        if not value:
            return f"{kind.__name__}()"
        body = "{" + ", ".join(sorted(record_text(x, seen) for x in value)) + "}"
        return body if kind is set else f"frozenset({body})"
    if kind is list:
        return "[" + ", ".join(record_text(x, seen) for x in value) + "]"
    if kind is tuple:
        return "(" + ", ".join(record_text(x, seen) for x in value) + ("," if len(value) == 1 else "") + ")"
    if kind is dict:
        return "{" + ", ".join(f"{record_text(k, seen)}: {record_text(x, seen)}" for k, x in value.items()) + "}"
    return valid_text(_ADDRESS.sub("", repr(value)))


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
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if obj is None or isinstance(obj, (int, bool)):
        return obj
    if isinstance(obj, str):
        return valid_text(obj)
    return record_text(obj)


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


