"""The bar store: every asset's bars aligned on one timeline, as float64 arrays.

Layout. ``index`` is the sorted union of all assets' timestamps. For each asset and
field there is one contiguous ``float64`` array of ``len(index)`` values; a bar that an
asset does not have is NaN in its price fields and 0 in ``volume``. The derived field
``price`` is the close carried forward (the last traded price), as in Zipline.

Timestamps. Daily stores hold tz-naive, midnight-normalised session labels. Minute
stores hold tz-aware UTC timestamps labelling each bar by its *end* (the 09:30-09:31
bar is stamped 09:31 New York time), as Zipline does.

The store is read-only once built; the engine reads it through
:class:`rustybt_nb.data.portal.BarData`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..assets import Asset
from ..calendars import calendar_tz
from ..errors import SymbolNotFound, did_you_mean
from .times import bar_range

OHLCV = ("open", "high", "low", "close", "volume")
FREQUENCIES = ("daily", "minute")


class BarStore:
    """Aligned bars of one or more assets (see the module docstring for the layout)."""

    def __init__(
        self,
        index: pd.DatetimeIndex,
        columns: Mapping[str, Mapping[str, np.ndarray]],
        frequency: str = "daily",
        calendar: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> None:
        if frequency not in FREQUENCIES:
            raise ValueError(f"`frequency` must be one of {FREQUENCIES}, got {frequency!r}")
        self.index = index
        self.frequency = frequency
        self.calendar = calendar
        self.meta: dict[str, object] = dict(meta or {})
        symbols = list(columns)
        self.assets: tuple[Asset, ...] = tuple(Asset(s, i) for i, s in enumerate(symbols))
        self._by_symbol = {a.symbol: a for a in self.assets}
        n = len(index)
        self.arrays: list[dict[str, np.ndarray]] = []
        extra: list[str] = []
        for sym in symbols:
            cols = {}
            for field, values in columns[sym].items():
                arr = np.ascontiguousarray(values, dtype=np.float64)
                if arr.shape != (n,):
                    raise ValueError(f"column {sym}.{field} has shape {arr.shape}, expected ({n},)")
                cols[field] = arr
                if field not in OHLCV and field not in extra:
                    extra.append(field)
            for field in OHLCV:
                if field not in cols:
                    raise ValueError(f"asset {sym!r} lacks the {field!r} column")
            cols["price"] = _ffill(cols["close"])
            self.arrays.append(cols)
        self.extra_fields: tuple[str, ...] = tuple(extra)
        self.fields: tuple[str, ...] = (*OHLCV, "price", *self.extra_fields)
        # first and last bar (positions in ``index``) at which each asset has a close
        self.first_valid = np.empty(len(symbols), dtype=np.int64)
        self.last_valid = np.empty(len(symbols), dtype=np.int64)
        for i, cols in enumerate(self.arrays):
            ok = np.flatnonzero(~np.isnan(cols["close"]))
            self.first_valid[i] = ok[0] if len(ok) else n
            self.last_valid[i] = ok[-1] if len(ok) else -1

    # ------------------------------------------------------------------ build
    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pd.DataFrame],
        frequency: str = "daily",
        calendar: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> BarStore:
        """Align validated per-symbol frames (DatetimeIndex, lower-case columns) on the
        union of their timestamps. Use :func:`rustybt_nb.data.from_frame` for user data:
        it validates first."""
        if not frames:
            raise ValueError("`frames` is empty: give at least one symbol's bars")
        index = frames[next(iter(frames))].index
        for df in list(frames.values())[1:]:
            if not df.index.equals(index):
                index = index.union(df.index)
        columns: dict[str, dict[str, np.ndarray]] = {}
        for sym, df in frames.items():
            if not df.index.equals(index):
                hole = ~index.isin(df.index)  # only the inserted rows get 0 volume
                df = df.reindex(index)
                if "volume" in df:
                    df.loc[hole, "volume"] = 0.0
            columns[sym] = {c: df[c].to_numpy(dtype=np.float64, copy=False) for c in df.columns}
        return cls(index, columns, frequency=frequency, calendar=calendar, meta=meta)

    # ----------------------------------------------------------------- lookup
    def timestamp(self, i: int) -> pd.Timestamp:
        """``index[i]``, built several times faster than pandas' own indexing."""
        values = self.__dict__.get("_i8")
        if values is None:
            values = self._prepare_timestamps()
        if self._ts_fast:
            return _from_value_and_reso(values[i], self._reso, self._tz)
        ts = pd.Timestamp(self._dt64[i], tz="UTC" if self._tz is not None else None)
        return ts.tz_convert(self._tz) if self._tz is not None else ts

    def _prepare_timestamps(self) -> memoryview:
        index = self.index
        self._dt64 = index._data._ndarray  # datetime64 values (UTC when tz-aware)
        self._reso = index._data._creso
        self._tz = index.tz
        self._i8 = memoryview(np.ascontiguousarray(index.asi8))  # items read as Python ints (faster than numpy's)
        self._ts_fast = _from_value_and_reso is not None and all(
            _same_timestamp(_from_value_and_reso(self._i8[k], self._reso, self._tz), index[k])
            for k in {0, len(index) - 1} if len(index))
        return self._i8

    def __getstate__(self) -> dict:
        """Pickle without the timestamp cache (a memoryview; rebuilt on first use)."""
        state = dict(self.__dict__)
        for key in ("_i8", "_dt64", "_reso", "_tz", "_ts_fast", "_atr_cache"):
            state.pop(key, None)
        return state

    def atr(self, sid: int, window: int) -> np.ndarray:
        """The average true range of asset ``sid`` over ``window`` bars, one value per bar of
        the store: Wilder's smoothing (``ATR = (ATR_prev * (window - 1) + TR) / window``, the
        first value the mean of the first ``window`` true ranges) over the asset's own bars,
        where ``TR = max(high - low, |high - previous close|, |low - previous close|)`` (the
        first bar has no previous close: ``high - low``). NaN until the asset has ``window``
        true ranges; carried across bars where it has none. A value at bar ``i`` uses bars up
        to ``i`` only. Computed once per asset and window, then kept."""
        cache = self.__dict__.setdefault("_atr_cache", {})
        key = (sid, window)
        out = cache.get(key)
        if out is None:
            out = cache[key] = _average_true_range(self.arrays[sid], window)
        return out

    @property
    def symbols(self) -> list[str]:
        return [a.symbol for a in self.assets]

    def __len__(self) -> int:
        return len(self.index)

    def lookup(self, symbol: str | Asset) -> Asset:
        """The asset for ``symbol``; unknown symbols raise with near matches."""
        if isinstance(symbol, Asset):
            symbol = symbol.symbol
        try:
            return self._by_symbol[symbol]
        except (KeyError, TypeError):
            pass
        if isinstance(symbol, str) and symbol.upper() in self._by_symbol:
            return self._by_symbol[symbol.upper()]
        raise SymbolNotFound(
            f"symbol {symbol!r} is not in the backtest data; available symbols: "
            f"{', '.join(self.symbols)}.{did_you_mean(str(symbol), self.symbols)}"
        )

    def has(self, symbol: str | Asset) -> bool:
        sym = symbol.symbol if isinstance(symbol, Asset) else symbol
        return sym in self._by_symbol

    def column(self, asset: Asset | str, field: str) -> np.ndarray:
        a = self.lookup(asset)
        return self.arrays[a.sid][field]

    # ------------------------------------------------------------- transform
    def to_frame(self, symbol: str | Asset | None = None) -> pd.DataFrame:
        """One asset's bars as a DataFrame (rows where it has no bar are dropped)."""
        a = self.lookup(symbol if symbol is not None else self.assets[0])
        cols = {f: self.arrays[a.sid][f] for f in OHLCV + self.extra_fields if f in self.arrays[a.sid]}
        df = pd.DataFrame(cols, index=self.index)
        return df[~np.isnan(df["close"].to_numpy())]

    @property
    def tz(self) -> str:
        """The exchange's time zone, where naive user times on minute bars are read (see
        :mod:`rustybt_nb.data.times`): ``meta['tz']`` as the loader set it (the ``tz``
        given, New York for naive timestamps, else the calendar's zone), else the
        calendar's zone."""
        return str(self.meta.get("tz") or calendar_tz(self.calendar or "XNYS"))

    def bar_range(self, start: object = None, end: object = None) -> tuple[int, int]:
        """Positions (inclusive) of the first and last bar from ``start`` to ``end``, read
        with :func:`rustybt_nb.data.times.to_bar_time`; ValueError when none is selected."""
        return bar_range(self.index, start, end, frequency=self.frequency, tz=self.tz)

    def slice(self, start: object = None, end: object = None) -> BarStore:
        """A new store restricted to the bars from ``start`` to ``end`` (inclusive; either
        may be None; times as in :mod:`rustybt_nb.data.times`)."""
        if start is None and end is None:
            return self
        lo, hi = self.bar_range(start, end)
        return self._rows(slice(lo, hi + 1))

    def select(self, symbols: Sequence[str | Asset]) -> BarStore:
        """A new store of only ``symbols`` (in that order; unknown ones raise with near
        matches), without the rows where none of them has a bar."""
        assets = [self.lookup(s) for s in symbols]
        keep = np.zeros(len(self.index), dtype=bool)
        for a in assets:
            keep |= ~np.isnan(self.arrays[a.sid]["close"])
        return self._rows(keep, assets)

    def _rows(self, rows: slice | np.ndarray, assets: Sequence[Asset] | None = None) -> BarStore:
        cols = {a.symbol: {f: v[rows] for f, v in self.arrays[a.sid].items() if f != "price"}
                for a in (self.assets if assets is None else assets)}
        return BarStore(self.index[rows], cols, self.frequency, self.calendar, self.meta)

    def __repr__(self) -> str:
        if len(self.index):
            span = f"{self.index[0]} .. {self.index[-1]}"
        else:
            span = "empty"
        extra = f", extra fields {list(self.extra_fields)}" if self.extra_fields else ""
        synth = " (synthetic)" if self.meta.get("synthetic") else ""
        return (
            f"<BarStore {self.frequency}{synth}: {len(self.index)} bars x "
            f"{len(self.assets)} assets {self.symbols}, {span}{extra}>"
        )


try:  # pandas' constructor of a Timestamp from its int64 value and resolution (checked per store)
    from pandas._libs.tslibs.timestamps import Timestamp as _Timestamp

    _from_value_and_reso = _Timestamp._from_value_and_reso
except (ImportError, AttributeError):  # pragma: no cover - depends on the pandas version
    _from_value_and_reso = None


def _same_timestamp(got: object, want: pd.Timestamp) -> bool:
    return (type(got) is type(want) and got == want and got.unit == want.unit  # type: ignore[attr-defined]
            and got.tz == want.tz)  # type: ignore[attr-defined]


def _average_true_range(columns: Mapping[str, np.ndarray], window: int) -> np.ndarray:
    high, low, close = columns["high"], columns["low"], columns["close"]
    have = np.flatnonzero(~np.isnan(close))
    out = np.full(len(close), np.nan)
    if len(have) < window:
        return out
    h, lo, c = high[have], low[have], close[have]
    prev = np.empty_like(c)
    prev[0] = np.nan
    prev[1:] = c[:-1]
    with np.errstate(invalid="ignore"):
        tr = np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))
    atr = np.full(len(tr), np.nan)
    seeded = tr[window - 1:].copy()
    seeded[0] = tr[:window].mean()  # the first value: a simple mean; then Wilder's recursion
    atr[window - 1:] = pd.Series(seeded).ewm(alpha=1.0 / window, adjust=False).mean().to_numpy()
    out[have] = atr
    return _ffill(out)


def _ffill(values: np.ndarray) -> np.ndarray:
    """Carry the last non-NaN value forward (leading NaNs stay NaN)."""
    mask = np.isnan(values)
    if not mask.any():
        return values.copy()
    idx = np.where(~mask, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    out[mask & (np.cumsum(~mask) == 0)] = np.nan
    return out
