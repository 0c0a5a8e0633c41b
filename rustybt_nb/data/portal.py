"""``data`` as the strategy sees it: current values, history windows, tradability.

No look-ahead: while the strategy handles bar ``i`` every read ends at bar ``i``
(during ``before_trading_start`` it ends at the previous bar).

``history`` returns pandas objects like Zipline's: a Series for one asset and one field
(named after the asset), a DataFrame with assets as columns for several assets, with
fields as columns for one asset and several fields, and a (timestamp, asset)-indexed
DataFrame for several of both. The window holds the last ``bar_count`` bars up to and
including the current one; when the data starts later it holds fewer rows (never
NaN-padded). With minute data, ``'1d'`` windows aggregate minutes into sessions and
the last row is the current session so far.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..assets import Asset
from ..errors import HistoryWindowError, did_you_mean
from .bar_store import BarStore
from .validation import FREQUENCY_ALIASES, normalize_frequency


def _make_series_factory():
    """Fast constructors of a DatetimeIndex from datetime64 values and of a float Series
    on such an index, checked once against the public constructors; they fall back to
    the public ones if pandas internals differ. Returns ``(index, series)``."""
    try:
        from pandas._libs.internals import BlockPlacement
        from pandas.core.arrays import DatetimeArray
        from pandas.core.internals import SingleBlockManager
        from pandas.core.internals.blocks import NumpyBlock

        index_new = pd.DatetimeIndex._simple_new
        array_new = DatetimeArray._simple_new
        from_mgr = pd.Series._from_mgr
        set_attr = object.__setattr__

        templates: dict[Any, DatetimeArray] = {}  # dtype -> an empty array of it, to build others like it
        placements: dict[int, BlockPlacement] = {}  # length -> the (immutable) placement of a 1-block Series

        def index(dt_values: np.ndarray, dtype: Any) -> pd.DatetimeIndex:
            template = templates.get(dtype)
            if template is None:
                template = templates[dtype] = array_new(dt_values[:0], dtype=dtype)
            return index_new(template._from_backing_data(dt_values), None)

        def series(values: np.ndarray, idx: pd.DatetimeIndex, name: Any) -> pd.Series:
            # (values: a fresh 1-d float64 array; the block and manager without re-checking it)
            n = len(values)
            placement = placements.get(n)
            if placement is None:
                placement = placements[n] = BlockPlacement(slice(0, n))
            mgr = SingleBlockManager(NumpyBlock(values, placement, 1), idx)
            s = from_mgr(mgr, axes=mgr.axes)
            set_attr(s, "_name", name)  # pandas' own attribute behind Series.name
            return s

        for idx in (pd.date_range("2020-01-01", periods=3, freq="D"),
                    pd.date_range("2020-01-01 14:31", periods=3, freq="min", tz="UTC")):
            got = series(np.arange(3.0), index(idx._data._ndarray, idx.dtype), "x")
            want = pd.Series(np.arange(3.0), index=idx, name="x")
            pd.testing.assert_series_equal(got, want, check_freq=False)
            assert got.iloc[-2:].mean() == 1.5 and got.index.equals(idx) and got.index.dtype == idx.dtype
            again = series(np.arange(3.0), index(idx._data._ndarray, idx.dtype), "y")
            again.iloc[0] = 9.0  # series of the same length share a placement, never values
            assert got.iloc[0] == 0.0 and again.name == "y"
        return index, series
    except Exception:  # pragma: no cover - depends on the pandas version
        def slow_index(dt_values: np.ndarray, dtype: Any) -> pd.DatetimeIndex:
            tz = getattr(dtype, "tz", None)
            return pd.DatetimeIndex(dt_values).tz_localize(tz) if tz else pd.DatetimeIndex(dt_values)

        def slow_series(values: np.ndarray, idx: pd.DatetimeIndex, name: Any) -> pd.Series:
            return pd.Series(values, index=idx, name=name)

        return slow_index, slow_series


_factories = None


def _get_factories():
    global _factories
    if _factories is None:
        _factories = _make_series_factory()
    return _factories


def _index(dt_values: np.ndarray, dtype: Any) -> pd.DatetimeIndex:
    return _get_factories()[0](dt_values, dtype)


def _series(values: np.ndarray, dt_values: np.ndarray, dtype: Any, name: Any,
            index: pd.DatetimeIndex | None = None) -> pd.Series:
    """A float Series of ``values`` named ``name`` on ``index`` (built from ``dt_values``
    and ``dtype`` when not given)."""
    make_index, make_series = _get_factories()
    return make_series(values, make_index(dt_values, dtype) if index is None else index, name)


class BarData:
    """The ``data`` argument of ``handle_data`` and scheduled functions."""

    def __init__(self, store: BarStore, session_of_bar: np.ndarray, session_first_bar: np.ndarray,
                 session_labels: pd.DatetimeIndex) -> None:
        self._store = store
        self._i = -1
        self._mv = [{f: memoryview(a) for f, a in cols.items()} for cols in store.arrays]
        # asset (or its symbol) -> field -> the column as an array('d'), copied on first use by
        # ``current`` (indexing one is cheaper than indexing a memoryview or a numpy array)
        self._cur: dict[Asset, dict[str, array]] = {a: {} for a in store.assets}
        self._dt_values = store.index._data._ndarray  # datetime64 values of the index
        self._dtype = store.index.dtype
        self._session_of_bar = session_of_bar
        self._session_first_bar = session_first_bar
        self._session_labels = session_labels
        self._daily_cache: dict[tuple[int, str], np.ndarray] | None = None
        self._window: tuple[int, int] | None = None  # sessions of the last '1d' window of minute data
        self._window_index: pd.DatetimeIndex | None = None
        self._fields = set(store.fields) | {"last_traded"}
        self._added: list[str] = []  # fields of this run (add_field)
        self._label_indexes: dict[tuple[str, ...], pd.Index] = {}  # see _labels
        # asset -> per bar, whether it can trade (one more False at the end, read at bar -1),
        # built on first use by can_trade
        self._can: dict[Asset, tuple[bool, ...]] = {}
        self._arrays = {a: store.arrays[a.sid] for a in store.assets}  # asset (or symbol) -> its columns
        self._frequency = store.frequency
        self._make_index, self._make_series = _get_factories()
        self._many: dict[tuple[tuple[Any, ...], str], tuple[list[array], pd.Index]] = {}  # see _current_many

    def add_field(self, name: str, columns: dict[Asset, np.ndarray]) -> None:
        """Make ``name`` a field of this run (an indicator): ``columns[asset]`` holds its
        value at every bar of the store; assets without a column read NaN. The store's
        own columns are shared by every run on it and stay as they are."""
        n = len(self._store.index)
        for asset in self._store.assets:
            values = columns.get(asset)
            if values is None:
                values = np.full(n, np.nan)
            own = self._arrays[asset]
            if own is self._store.arrays[asset.sid]:  # (first field of this run: a dict of the run's own)
                own = self._arrays[asset] = dict(own)
            own[name] = values
            self._mv[asset.sid][name] = memoryview(values)
            self._cur[asset].pop(name, None)
        self._fields.add(name)
        self._added.append(name)

    @property
    def added_fields(self) -> list[str]:
        """The fields this run added (indicators), in the order they were added."""
        return list(self._added)

    # ----------------------------------------------------------- properties
    @property
    def current_dt(self) -> pd.Timestamp:
        return self._store.timestamp(max(self._i, 0))

    @property
    def current_session(self) -> pd.Timestamp:
        return self._session_labels[self._session_of_bar[max(self._i, 0)]]

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields readable with ``current`` / ``history`` (the data's, then this run's indicators)."""
        return (*self._store.fields, *self._added)

    # ----------------------------------------------------------- current
    def current(self, assets: Any, fields: Any) -> Any:
        """Value(s) at the current bar. ``price`` is the last traded close (carried
        forward); ``open/high/low/close`` are NaN and ``volume`` 0 when the asset has no
        bar now. Extra numeric columns of the data are fields too."""
        i = self._i
        if i >= 0:
            try:  # one asset (or symbol) and one field of the data: two lookups and an index
                return self._cur[assets][fields][i]
            except (KeyError, TypeError):  # anything else (lists, unknown names, last_traded)
                pass
        return self._current_slow(assets, fields)

    def _current_slow(self, assets: Any, fields: Any) -> Any:
        if type(fields) is str and (type(assets) is list or type(assets) is tuple) and self._i >= 0:
            many = self._current_many(assets, fields)
            if many is not None:
                return many
        multi_a = _is_list(assets)
        multi_f = _is_list(fields)
        if not multi_a and not multi_f and self._i >= 0 and type(fields) is str:
            cols = self._cur.get(assets) if isinstance(assets, str) else None
            if cols is not None and fields not in cols and fields in self._arrays[self._asset(assets)]:
                self._column(self._asset(assets), fields)  # current's fast path from now on
        alist = [self._asset(a) for a in (assets if multi_a else [assets])]
        flist = [self._field(f) for f in (fields if multi_f else [fields])]
        vals = {f: [self._value(a, f) for a in alist] for f in flist}
        if not multi_a and not multi_f:
            return vals[flist[0]][0]
        if "last_traded" in flist or not alist or not flist:  # a timestamp among the numbers, or nothing
            if multi_a and multi_f:
                return pd.DataFrame(vals, index=alist)
            if multi_a:
                return pd.Series(vals[flist[0]], index=alist, name=flist[0])
            return pd.Series({f: vals[f][0] for f in flist}, name=alist[0])
        if multi_a and multi_f:
            names = list(vals)  # each field once, as a dict of them would have it
            return pd.DataFrame(np.array([vals[f] for f in names], dtype=float).T, index=self._labels(alist),
                                columns=self._labels(names), copy=False)
        if multi_a:
            return pd.Series(np.array(vals[flist[0]], dtype=float), index=self._labels(alist), name=flist[0])
        names = list(vals)  # each field once, as a dict of them would have it
        return pd.Series(np.array([vals[f][0] for f in names], dtype=float), index=self._labels(names),
                         name=alist[0])

    def _current_many(self, assets: list[Any] | tuple[Any, ...], field: str) -> pd.Series | None:
        """``current(assets, field)`` for a list of assets and one numeric field: the same
        list of assets (a strategy's universe, read every bar) is resolved once; each call
        then gathers one value per asset. None for what the general path must answer
        (``last_traded``, no assets)."""
        key = (tuple(assets), field)
        got = self._many.get(key)
        if got is None:
            alist = [self._asset(a) for a in assets]
            if self._field(field) == "last_traded" or not alist:
                return None
            got = self._many[key] = ([self._column(a, field) for a in alist], self._labels(alist))
        columns, labels = got
        i = self._i
        return _series(np.array([c[i] for c in columns]), None, None, field, labels)

    def _column(self, asset: Asset, field: str) -> array:
        """``field`` of ``asset`` as an array('d'), cached (``current``'s fast path reads it)."""
        cols = self._cur[asset]
        col = cols.get(field)
        if col is None:
            col = cols[field] = array("d")
            col.frombytes(self._mv[asset.sid][field].cast("B"))
        return col

    def _value(self, asset: Asset, field: str) -> Any:
        i = self._i
        if i < 0:
            return pd.NaT if field == "last_traded" else (0.0 if field == "volume" else float("nan"))
        if field == "last_traded":
            close = self._store.arrays[asset.sid]["close"][: i + 1]
            ok = np.flatnonzero(~np.isnan(close))
            return self._store.index[ok[-1]] if len(ok) else pd.NaT
        return self._mv[asset.sid][field][i]

    def _asset(self, a: Any) -> Asset:
        if isinstance(a, Asset) and self._store.has(a):
            return self._store.assets[self._store.lookup(a).sid]
        if isinstance(a, (Asset, str)):
            return self._store.lookup(a)
        raise TypeError(f"expected an asset (from symbol('...')) or a symbol string, got {a!r} ({type(a).__name__})")

    def _field(self, f: Any) -> str:
        if not isinstance(f, str) or f not in self._fields:
            raise ValueError(
                f"unknown field {f!r}; readable fields are {sorted(self._fields)}."
                f"{did_you_mean(str(f), self._fields)}"
            )
        return f

    # ----------------------------------------------------------- can_trade
    def can_trade(self, assets: Any) -> Any:
        """True if the asset is listed at the current bar and has a known price."""
        try:  # one asset (or symbol) seen before: a tuple lookup
            return self._can[assets][self._i]
        except (KeyError, TypeError):
            return self._can_trade_slow(assets)

    def _tradable(self, asset: Asset) -> tuple[bool, ...]:
        """``can_trade`` of ``asset`` at every bar (listed, with a known price), plus a
        False for "before the first bar"."""
        got = self._can.get(asset)
        if got is None:
            store = self._store
            first, last = int(store.first_valid[asset.sid]), int(store.last_valid[asset.sid])
            price = store.arrays[asset.sid]["price"]
            ok = np.zeros(len(price) + 1, dtype=bool)
            if first >= 0:
                ok[first:last + 1] = ~np.isnan(price[first:last + 1])
            got = self._can[asset] = tuple(ok.tolist())
        return got

    def _can_trade_slow(self, assets: Any) -> Any:
        if _is_list(assets):
            names = list(dict.fromkeys(assets))  # each asset once, as a dict of them would have it
            if not names:
                return pd.Series({})
            return pd.Series(np.array([self.can_trade(a) for a in names], dtype=bool), index=self._labels(names))
        # anything else: the asset lookup's error, or an asset of the data (its bars, from now on by lookup)
        return self._tradable(self._asset(assets))[self._i]

    def is_stale(self, assets: Any) -> Any:
        """True if the asset has no bar at the current time but traded before."""
        if _is_list(assets):
            return pd.Series({a: self.is_stale(a) for a in assets})
        a = self._asset(assets)
        i = self._i
        return bool(i >= 0 and self._mv[a.sid]["close"][i] != self._mv[a.sid]["close"][i]
                    and self._mv[a.sid]["price"][i] == self._mv[a.sid]["price"][i])

    # ----------------------------------------------------------- history
    def history(self, assets: Any, fields: Any, bar_count: int, frequency: str) -> Any:
        """The last ``bar_count`` bars up to now (see the module docstring)."""
        i = self._i
        if type(assets) is Asset and type(fields) is str and type(bar_count) is int and bar_count > 0 and i >= 0 \
                and FREQUENCY_ALIASES.get(frequency) == self._frequency:  # one asset, one field, bars as stored
            cols = self._arrays.get(assets)
            col = cols.get(fields) if cols is not None else None
            if col is not None:
                lo = i - bar_count + 1
                if lo < 0:
                    lo = 0
                return self._make_series(col[lo:i + 1].copy(), self._make_index(self._dt_values[lo:i + 1], self._dtype),
                                         assets)
        return self._history(assets, fields, bar_count, frequency)

    def _history(self, assets: Any, fields: Any, bar_count: int, frequency: str) -> Any:
        if type(bar_count) is not int:
            if isinstance(bar_count, (np.integer,)) and not isinstance(bar_count, bool):
                bar_count = int(bar_count)
            else:
                raise TypeError(f"`bar_count` must be an int, got {bar_count!r}")
        if bar_count < 1:
            raise ValueError(f"`bar_count` must be >= 1, got {bar_count}")
        freq = FREQUENCY_ALIASES.get(frequency)  # ('1d' and '1m' as written: one lookup)
        if freq is None:
            try:
                freq = normalize_frequency(frequency)
            except ValueError:
                raise ValueError(f"`frequency` must be '1d' or '1m', got {frequency!r}") from None
        if freq == "minute" and self._store.frequency == "daily":
            raise HistoryWindowError(
                "minute history ('1m') needs minute data, but this backtest runs on daily bars; "
                "use '1d' or run with minute data (data_frequency='minute')"
            )
        i = self._i
        if i < 0:  # before the first bar of the data (before_trading_start of the first session)
            empty = pd.DatetimeIndex([], dtype=self._dtype)
            if not _is_list(assets) and not _is_list(fields):
                return pd.Series([], index=empty, dtype=float, name=self._asset(assets))
            return pd.DataFrame(index=empty, dtype=float)
        daily_from_minutes = freq == "daily" and self._store.frequency == "minute"
        if type(assets) is Asset and type(fields) is str:
            cols = self._arrays.get(assets)
            col = cols.get(fields) if cols is not None else None
            if col is not None:
                if daily_from_minutes:
                    s = int(self._session_of_bar[i])
                    s0 = max(0, s - bar_count + 1)
                    values = np.empty(s - s0 + 1)
                    values[:-1] = self._daily_field(assets, fields)[s0:s]
                    values[-1] = self._session_to_date(assets, fields)[i]
                    if self._window != (s0, s):  # the same sessions all day long: their index, built once
                        self._window = (s0, s)
                        self._window_index = _index(self._label_values[s0:s + 1], self._label_dtype)
                    # (windows of one session share that index object, as a frame's columns share theirs)
                    return _series(values, None, None, assets, self._window_index)
                lo = i - bar_count + 1
                if lo < 0:
                    lo = 0
                return _series(col[lo:i + 1].copy(), self._dt_values[lo:i + 1], self._dtype, assets)
        multi_a = _is_list(assets)
        multi_f = _is_list(fields)
        alist = [self._asset(a) for a in (assets if multi_a else [assets])]
        flist = [self._field(f) for f in (fields if multi_f else [fields])]
        if "last_traded" in flist:
            raise ValueError("`last_traded` is not available in history; use data.current(asset, 'last_traded')")
        if daily_from_minutes:
            index, get = self._daily_window(bar_count)
        else:
            lo = max(0, i - bar_count + 1)
            index = self._store.index[lo:i + 1]

            def get(a: Asset, f: str) -> np.ndarray:
                return self._arrays[a][f][lo:i + 1]

        if not multi_a and not multi_f:
            return pd.Series(get(alist[0], flist[0]), index=index, name=alist[0])
        if not multi_f and alist:
            return self._block_frame(alist, lambda a: get(a, flist[0]), index)
        if not multi_f:
            return pd.DataFrame({a: get(a, flist[0]) for a in alist}, index=index)
        if not multi_a:
            return self._block_frame(flist, lambda f: get(alist[0], f), index)
        anames = list(dict.fromkeys(alist))
        fnames = list(dict.fromkeys(flist))
        if not anames or not fnames or not (index.is_monotonic_increasing and index.is_unique):
            frames = {a: pd.DataFrame({f: get(a, f) for f in flist}, index=index) for a in alist}
            out = pd.concat(frames, names=["asset", index.name or "date"])
            return out.swaplevel(0, 1).sort_index(level=0, sort_remaining=False)
        # rows (date, asset) date by date, assets in the order given: (dates, assets, fields) -> 2-d
        values = np.stack([np.column_stack([get(a, f) for f in fnames]) for a in anames], axis=1)
        n, k = len(index), len(anames)  # (the product's codes directly: both levels are unique)
        codes = [np.repeat(np.arange(n), k), np.tile(np.arange(k), n)]
        rows = pd.MultiIndex(levels=[index, self._labels(anames)], codes=codes,
                             names=[index.name or "date", "asset"], verify_integrity=False)
        return pd.DataFrame(values.reshape(-1, len(fnames)), index=rows, columns=self._labels(fnames), copy=False)

    def _block_frame(self, names: list[Any], column: Any, index: pd.Index) -> pd.DataFrame:
        """A float frame of ``column(name)`` for each distinct name (first seen first, as a
        dict of columns would have it), as one 2-d block that the frame owns: a quarter of
        the cost of pandas' dict-of-columns constructor."""
        names = list(dict.fromkeys(names))
        values = np.column_stack([column(n) for n in names])
        return pd.DataFrame(values, index=index, columns=self._labels(names), copy=False)

    def _labels(self, names: list[Any]) -> pd.Index:
        """The index of these labels (field names, or assets, which pandas keeps as their
        symbols), built once per run: an Index is immutable, so the frames and series that
        use it can share it."""
        key = tuple(names)
        index = self._label_indexes.get(key)
        if index is None:
            index = self._label_indexes[key] = pd.Index(names)
        return index

    def _daily_window(self, bar_count: int):
        """Session bars built from minutes: completed sessions plus today so far."""
        i = self._i
        s = int(self._session_of_bar[i])
        s0 = max(0, s - bar_count + 1)
        index = self._session_labels[s0:s + 1]

        def get(a: Asset, f: str) -> np.ndarray:
            full = self._daily_field(a, f)[s0:s + 1].copy()
            full[-1] = self._session_to_date(a, f)[i]
            return full

        return index, get

    @property
    def _label_values(self) -> np.ndarray:
        return self._session_labels._data._ndarray  # datetime64 values of the session labels

    @property
    def _label_dtype(self) -> Any:
        return self._session_labels.dtype

    def _session_to_date(self, a: Asset, f: str) -> np.ndarray:
        """Per minute bar: field ``f`` aggregated over its session up to that bar
        (open = first open, high = running max, low = running min, volume = running sum,
        close and other fields = last value), built once per (asset, field)."""
        if self._daily_cache is None:
            self._daily_cache = {}
        key = (a.sid, f, "to_date")
        got = self._daily_cache.get(key)
        if got is not None:
            return got
        v = self._arrays[a][f]
        starts = self._session_first_bar
        ends = [*starts[1:].tolist(), len(v)]
        out = np.empty(len(v))
        for b, e in zip(starts.tolist(), ends):
            seg = v[b:e]
            if f == "volume":
                out[b:e] = np.nancumsum(seg)
            elif f == "high":
                out[b:e] = np.fmax.accumulate(seg)
            elif f == "low":
                out[b:e] = np.fmin.accumulate(seg)
            else:
                ok = ~np.isnan(seg)
                if not ok.any():
                    out[b:e] = np.nan
                    continue
                if f == "open":
                    first = int(np.argmax(ok))
                    out[b:e] = seg[first]
                    out[b:b + first] = np.nan
                else:  # last value so far (close, price, extra fields)
                    pos = np.where(ok, np.arange(len(seg)), -1)
                    np.maximum.accumulate(pos, out=pos)
                    out[b:e] = np.where(pos >= 0, seg[np.maximum(pos, 0)], np.nan)
        self._daily_cache[key] = out
        return out

    def _daily_field(self, a: Asset, f: str) -> np.ndarray:
        if self._daily_cache is None:
            self._daily_cache = {}
        key = (a.sid, f)
        got = self._daily_cache.get(key)
        if got is None:
            cols = self._arrays[a]
            starts = self._session_first_bar
            ends = [*list(starts[1:]), len(self._store.index)]
            got = np.array([_aggregate(f, cols, slice(int(b), int(e))) for b, e in zip(starts, ends)])
            self._daily_cache[key] = got
        return got

    def __repr__(self) -> str:
        return f"<BarData at {self.current_dt}>" if self._i >= 0 else "<BarData (before the first bar)>"


def _aggregate(field: str, cols: dict[str, np.ndarray], part: slice) -> float:
    v = cols[field][part]
    if field == "volume":
        return float(np.nansum(v))
    ok = v[~np.isnan(v)]
    if field in ("price",):
        return float(v[-1]) if len(v) else float("nan")
    if not len(ok):
        return float("nan")
    if field == "open":
        return float(ok[0])
    if field == "high":
        return float(ok.max())
    if field == "low":
        return float(ok.min())
    return float(ok[-1])  # close and extra fields: last value of the session


def _is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple, set, frozenset, pd.Index, np.ndarray)) or (
        isinstance(x, Iterable) and not isinstance(x, (str, bytes, Asset))
    )
