"""Build a :class:`~rustybt_nb.data.bar_store.BarStore` from user data.

Entry points: :func:`from_frame` (one DataFrame, single- or multi-asset),
:func:`from_frames` (``{symbol: DataFrame}``), :func:`load_csv` and :func:`load_parquet`.
:mod:`rustybt_nb.data.sources` picks among them (and the samples) for whatever
``data=`` a backtest is given.

Every asset's bars go through :func:`~rustybt_nb.data.validation.validate_bars`, so
bad data fails early with a message naming the symbol, the rows and the fix.

Store metadata (``store.meta``) written here:

``source``       ``'frame'``, ``'frames'``, the file path, or ``'sample:...'``
``synthetic``    False (True only for synthetic minute samples)
``adjusted``     None for user data (unknown); True/False for samples
``has_volume``   True when every asset has a volume column
``close_only``   True when any asset was close-only (flat bars: open = high = low = close)
``close_only_symbols`` / ``symbols_without_volume``  the assets concerned
``tz``           minute stores: the zone naive times are read in (naive timestamps of the
                 data, and a user's naive ``start``/``end``/``good_till``): ``tz=`` if given,
                 New York for naive input, else the calendar's zone
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..calendars import calendar_tz
from ..errors import DataValidationError, did_you_mean, fmt_list
from .bar_store import BarStore
from .validation import (
    SYMBOL_COLUMNS,
    _norm_key,
    find_date_column,
    normalize_frequency,
    parse_datetimes,
    validate_bars,
)

__all__ = ["CSV_SUFFIXES", "DEFAULT_SYMBOL", "PARQUET_SUFFIXES", "from_frame", "from_frames", "load_csv",
           "load_parquet"]

#: Symbol given to a single-asset frame that names none (see :func:`from_frame`).
DEFAULT_SYMBOL = "ASSET"
_FIELD_KEYS = {"open", "high", "low", "close", "volume", "price", "adj_close", "adjclose", "adjusted_close"}
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")

# one asset's raw rows: (symbol, frame, row numbers in the user's frame, symbol column name)
_Piece = tuple[str, pd.DataFrame, "np.ndarray | None", "str | None"]


# ----------------------------------------------------------------------------- helpers
def _default_symbol(df: pd.DataFrame | pd.Series) -> str:
    """``attrs['symbol']``, then ``attrs['name']``, then a str ``name`` attribute, else 'ASSET'."""
    for key in ("symbol", "name"):
        val = df.attrs.get(key)
        if isinstance(val, str) and val.strip():
            return val.strip()
    name = df.name if isinstance(df, pd.Series) else vars(df).get("name")
    if isinstance(name, str) and name.strip() and name.strip().lower() not in {"close", "price"}:
        return name.strip()
    return DEFAULT_SYMBOL


def _symbol_column(df: pd.DataFrame) -> object | None:
    """The column of a long frame that holds symbols (``symbol``/``ticker``/``asset``)."""
    if isinstance(df.columns, pd.MultiIndex):
        return None
    for col in df.columns:
        if _norm_key(col) in SYMBOL_COLUMNS:
            return col
    return None


def _select(available: list[str], wanted: str | Sequence[str] | None) -> list[str]:
    """The requested symbols of a multi-asset frame (exact, else case-insensitive)."""
    if wanted is None:
        return available
    wanted_list = [wanted] if isinstance(wanted, str) else list(wanted)
    upper = {s.upper(): s for s in available}
    out = []
    for w in wanted_list:
        if w in available:
            out.append(w)
        elif str(w).upper() in upper:
            out.append(upper[str(w).upper()])
        else:
            raise ValueError(
                f"`symbol`={w!r} is not in the data; it holds {fmt_list(available)}."
                f"{did_you_mean(str(w), available)}"
            )
    return out


def _split_rows_multiindex(df: pd.DataFrame) -> pd.DataFrame:
    """A frame indexed by (timestamp, symbol) rows, as a long frame with both as columns."""
    names = list(df.index.names)
    date_level = None
    for i in range(df.index.nlevels):
        level = df.index.get_level_values(i)
        if isinstance(level, pd.DatetimeIndex):
            date_level = i
            break
    new_names = []
    for i, name in enumerate(names):
        if i == date_level:
            new_names.append(name if name is not None else "date")
        elif name is None or _norm_key(name) not in SYMBOL_COLUMNS:
            new_names.append("symbol" if date_level is not None else name or f"level_{i}")
        else:
            new_names.append(name)
    out = df.copy()
    out.index = out.index.set_names(new_names)
    return out.reset_index()


def _split_wide(df: pd.DataFrame, symbol: str | Sequence[str] | None) -> list[_Piece]:
    """Columns ``(symbol, field)`` or ``(field, symbol)``: find the field level, split."""
    if df.columns.nlevels != 2:
        raise DataValidationError(
            f"multi-asset columns must have 2 levels (symbol, field), got {df.columns.nlevels}; "
            "fix: flatten the extra levels, e.g. df.columns = df.columns.droplevel(0)"
        )
    hits = [sum(_norm_key(v) in _FIELD_KEYS for v in df.columns.get_level_values(i).unique())
            for i in range(2)]
    if max(hits) == 0:
        raise DataValidationError(
            "cannot tell which column level holds the fields: neither level has open/high/low/close/"
            f"volume names (level 0: {fmt_list(df.columns.levels[0])}, level 1: "
            f"{fmt_list(df.columns.levels[1])}); fix: name the fields, e.g. "
            "df.columns = df.columns.set_levels(['open', 'high', 'low', 'close', 'volume'], level=1)"
        )
    field_level = int(np.argmax(hits))
    sym_level = 1 - field_level
    symbols = [str(s) for s in dict.fromkeys(df.columns.get_level_values(sym_level))]
    raw = {str(s): s for s in dict.fromkeys(df.columns.get_level_values(sym_level))}
    pieces: list[_Piece] = []
    for sym in _select(symbols, symbol):
        sub = df.xs(raw[sym], axis=1, level=sym_level)
        # a row where this asset has no price at all is a hole in the wide layout, not bad data
        price_cols = [c for c in sub.columns if _norm_key(c) in _FIELD_KEYS - {"volume"}]
        vol_cols = [c for c in sub.columns if _norm_key(c) == "volume"]
        keep = np.ones(len(sub), dtype=bool)
        if price_cols:
            empty = np.array(sub[price_cols].isna().all(axis=1), dtype=bool)
            for vc in vol_cols:
                v = pd.to_numeric(sub[vc], errors="coerce")
                empty &= (v.isna() | (v == 0)).to_numpy()
            keep = ~empty
        rows = np.flatnonzero(keep)
        pieces.append((sym, sub.iloc[rows], rows, None))
    return pieces


def _split_long(df: pd.DataFrame, sym_col: object, symbol: str | Sequence[str] | None) -> list[_Piece]:
    """One row per (symbol, timestamp): group the rows by the symbol column."""
    col = df[sym_col]
    bad = np.flatnonzero(col.isna().to_numpy())
    if len(bad):
        raise DataValidationError(
            f"the symbol column {sym_col!r} has {len(bad)} missing values (rows "
            f"{', '.join(str(int(b)) for b in bad[:10])}); fix: df = df.dropna(subset=[{sym_col!r}])"
        )
    groups = df.groupby(col.astype(str), sort=False).indices
    pieces: list[_Piece] = []
    for sym in _select(list(groups), symbol):
        rows = np.asarray(groups[sym])
        pieces.append((sym, df.iloc[rows], rows, str(sym_col)))
    return pieces


def _pieces(df: pd.DataFrame | pd.Series, symbol: str | Sequence[str] | None) -> list[_Piece]:
    if isinstance(df, pd.Series):
        name = symbol if isinstance(symbol, str) else _default_symbol(df)
        return [(name, df.to_frame(name="close"), None, None)]
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame, got {type(df).__name__}")
    if isinstance(df.index, pd.MultiIndex) and df.index.nlevels == 2:
        df = _split_rows_multiindex(df)
    if isinstance(df.columns, pd.MultiIndex):
        return _split_wide(df, symbol)
    sym_col = _symbol_column(df)
    if sym_col is not None:
        return _split_long(df, sym_col, symbol)
    if symbol is not None and not isinstance(symbol, str):
        raise TypeError(f"`symbol` must be a str for a single-asset frame, got {symbol!r}")
    return [(symbol.strip() if isinstance(symbol, str) else _default_symbol(df), df, None, None)]


def _resolve_calendar(calendar: str) -> str:
    """Canonical exchange_calendars name for ``calendar`` (aliases such as 'NYSE' resolve)."""
    if not isinstance(calendar, str):
        raise TypeError(f"`calendar` must be a calendar name such as 'XNYS' or '24/7', got {calendar!r}")
    import exchange_calendars as xcals

    names = xcals.get_calendar_names(include_aliases=True)
    if calendar in names:
        return xcals.resolve_alias(calendar)
    if calendar.upper() in names:
        return xcals.resolve_alias(calendar.upper())
    raise ValueError(
        f"`calendar`={calendar!r} is not an exchange_calendars name (e.g. 'XNYS', 'XLON', '24/7')."
        f"{did_you_mean(calendar, names)}"
    )


def _has_weekend_dates(dates: pd.DatetimeIndex) -> bool:
    """Whether any of the (naive, midnight) daily dates is a Saturday or a Sunday: the
    weekday from the day count (1970-01-01 was a Thursday), without pandas' field
    accessor, which builds each date's calendar fields."""
    days = dates.to_numpy().astype("datetime64[D]").view(np.int64)
    return bool(((days + 3) % 7 >= 5).any())


def _build(pieces: list[_Piece], *, frequency: str | None, calendar: str | None, tz: str | None,
           source: str) -> BarStore:
    """Validate each asset's rows, agree on one frequency and calendar, build the store."""
    freq = normalize_frequency(frequency)
    if not pieces:
        raise DataValidationError("no symbols to load: the data selects no assets")
    seen: set[str] = set()
    frames: dict[str, pd.DataFrame] = {}
    for sym, raw, rows, sym_col in pieces:
        if sym in seen:
            raise DataValidationError(f"symbol {sym!r} appears twice; give each asset one frame")
        seen.add(sym)
        frames[sym] = validate_bars(raw, sym, freq, tz=tz, _row_numbers=rows, _symbol_col=sym_col)
    freqs = {s: f.attrs["frequency"] for s, f in frames.items()}
    if len(set(freqs.values())) > 1:
        raise DataValidationError(
            f"the assets mix daily and minute timestamps ({freqs}); fix: pass frequency='daily' or "
            "frequency='minute' (daily bars must be midnight timestamps)"
        )
    freq = next(iter(freqs.values()))
    if calendar is not None:
        cal = _resolve_calendar(calendar)
    elif freq == "minute":
        cal = "XNYS"
    else:
        cal = "24/7" if any(_has_weekend_dates(f.index) for f in frames.values()) else "XNYS"
    # every asset gets every extra field, so data.current(asset, 'sma10') never KeyErrors
    extras: list[str] = []
    for f in frames.values():
        extras += [c for c in f.columns[5:] if c not in extras]
    no_volume = [s for s, f in frames.items() if not f.attrs["has_volume"]]
    close_only = [s for s, f in frames.items() if f.attrs["close_only"]]
    dropped = {s: f.attrs["dropped_columns"] for s, f in frames.items() if f.attrs["dropped_columns"]}
    for s, f in frames.items():
        missing = [c for c in extras if c not in f.columns]
        if missing:
            frames[s] = f.assign(**{c: np.nan for c in missing})
    meta: dict[str, Any] = {
        "source": source,
        "synthetic": False,
        "adjusted": None,
        "has_volume": not no_volume,
        "close_only": bool(close_only),
        "symbols_without_volume": no_volume,
        "close_only_symbols": close_only,
    }
    if dropped:
        meta["dropped_columns"] = dropped
    if freq == "minute":  # where naive times are read: the zone naive timestamps were read in, else the calendar's
        naive = any(f.attrs["naive_minutes"] for f in frames.values())
        meta["tz"] = tz or ("America/New_York" if naive else calendar_tz(cal))
    return BarStore.from_frames(frames, frequency=freq, calendar=cal, meta=meta)


# ------------------------------------------------------------------------------ public
def from_frame(
    df: pd.DataFrame | pd.Series,
    symbol: str | Sequence[str] | None = None,
    *,
    frequency: str | None = None,
    calendar: str | None = None,
    tz: str | None = None,
) -> BarStore:
    """Build a bar store from one DataFrame of bars.

    Layouts understood (column names are case-insensitive):

    * single asset: a DatetimeIndex (or a ``date``/``datetime``/``timestamp``/``time``
      column) and ``open, high, low, close[, volume]`` plus optional numeric extras
      (indicators such as ``sma10``, kept as fields under lower-cased names);
      or a single ``close``/``price`` column (close-only: flat bars). A Series is
      taken as close-only prices.
    * long multi-asset: a ``symbol``/``ticker``/``asset`` column, one row per symbol and
      timestamp (or a (timestamp, symbol) row MultiIndex);
    * wide multi-asset: 2-level columns ``(symbol, field)`` or ``(field, symbol)`` (the
      level holding the OHLCV names is detected). Rows where an asset has no price at
      all (NaN prices, NaN/0 volume) are holes, not errors.

    Multi-asset data is aligned on the union of timestamps; an asset's missing bars are
    NaN prices and 0 volume.

    Parameters
    ----------
    symbol:
        Single asset: the symbol to use. Default: ``df.attrs['symbol']``, then
        ``df.attrs['name']``, then a str ``df.name`` attribute (a Series' name unless it
        is 'close'/'price'), else ``'ASSET'``. Multi-asset: a symbol or list of symbols
        to keep (default: all).
    frequency:
        ``'daily'``, ``'minute'`` or None to infer (all timestamps at midnight -> daily).
    calendar:
        exchange_calendars name stored on the store. None infers: minute -> ``'XNYS'``;
        daily -> ``'24/7'`` if any bar falls on a Saturday or Sunday, else ``'XNYS'``.
    tz:
        Zone of tz-naive minute timestamps (default ``'America/New_York'``); minute stores
        are UTC and assume each bar is labelled by its end (09:31 for the first NYSE bar;
        shift start-labelled data with ``df.index += pd.Timedelta('1min')``).

    Raises
    ------
    DataValidationError
        For bad bars (see :func:`~rustybt_nb.data.validation.validate_bars`).
    """
    return _build(_pieces(df, symbol), frequency=frequency, calendar=calendar, tz=tz, source="frame")


def from_frames(
    frames: Mapping[str, pd.DataFrame | pd.Series],
    *,
    frequency: str | None = None,
    calendar: str | None = None,
    tz: str | None = None,
) -> BarStore:
    """Build a bar store from ``{symbol: single-asset DataFrame}``.

    Each frame is validated like :func:`from_frame`'s single-asset layout and the
    assets are aligned on the union of their timestamps (missing bars: NaN prices, 0
    volume). The dict order is the asset order. Other arguments as in :func:`from_frame`.
    """
    if not isinstance(frames, Mapping):
        raise TypeError(f"`frames` must be a dict of {{symbol: DataFrame}}, got {type(frames).__name__}")
    if not frames:
        raise ValueError("`frames` is empty: give at least one {symbol: DataFrame} pair")
    pieces: list[_Piece] = []
    for sym, df in frames.items():
        if not isinstance(df, pd.DataFrame | pd.Series):
            raise TypeError(f"`frames[{sym!r}]` must be a DataFrame, got {type(df).__name__}")
        if isinstance(df, pd.Series):
            df = df.to_frame(name="close")
        pieces.append((str(sym), df, None, None))
    return _build(pieces, frequency=frequency, calendar=calendar, tz=tz, source="frames")


def _check_path(path: str | os.PathLike[str], what: str) -> str:
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"`path` must be a str or Path, got {type(path).__name__}")
    if "://" in p:  # URLs go straight to pandas
        return p
    if not os.path.exists(p):
        raise FileNotFoundError(f"{what} file not found: {p!r} (absolute path {os.path.abspath(p)!r})")
    return p


def _stem_symbol(path: str) -> str:
    name = Path(path.rstrip("/")).name
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.upper() or DEFAULT_SYMBOL


def _finish_file(df: pd.DataFrame, path: str, symbol: str | Sequence[str] | None,
                 kwargs: dict[str, Any]) -> BarStore:
    """Promote a date-like first column to the index, name the asset, build."""
    if not isinstance(df.index, pd.DatetimeIndex) and not isinstance(df.columns, pd.MultiIndex):
        date_col, _ = find_date_column(list(df.columns))
        if date_col is None and len(df.columns) > 1:
            first = df.columns[0]
            if not pd.api.types.is_numeric_dtype(df[first].dtype):
                parsed, _ = parse_datetimes(df[first])
                if parsed is not None:
                    df = df.drop(columns=[first]).set_axis(parsed, axis=0)
    multi = isinstance(df.columns, pd.MultiIndex) or isinstance(df.index, pd.MultiIndex) or (
        _symbol_column(df) is not None
    )
    if symbol is None and not multi:
        symbol = _stem_symbol(path)
    kw = {k: kwargs.pop(k) for k in ("frequency", "calendar", "tz") if k in kwargs}
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)}; pass pandas options via "
                        "read_kwargs={...}")
    return _build(_pieces(df, symbol), source=path, frequency=kw.get("frequency"),
                  calendar=kw.get("calendar"), tz=kw.get("tz"))


def load_csv(
    path: str | os.PathLike[str],
    symbol: str | Sequence[str] | None = None,
    *,
    read_kwargs: Mapping[str, Any] | None = None,
    **from_frame_kwargs: Any,
) -> BarStore:
    """Load bars from a CSV file (any layout :func:`from_frame` understands).

    Timestamps come from a ``date``/``datetime``/``timestamp``/``time`` column (also a
    ``Date`` + ``Time`` pair), or from the first column when it parses as dates (a
    frame saved with ``df.to_csv()``). Formats are inferred from the first value,
    including US ``%m/%d/%Y`` (month first when ambiguous; pass
    ``read_kwargs={'parse_dates': [...], 'dayfirst': True}`` or pre-parse for day-first files).
    ``symbol`` defaults to the file name's stem upper-cased (``aapl.csv`` -> ``'AAPL'``)
    unless the file has a symbol column. ``read_kwargs`` go to :func:`pandas.read_csv`;
    ``frequency``, ``calendar`` and ``tz`` go to :func:`from_frame`.
    ``store.meta['source']`` is the path.

    Raises
    ------
    FileNotFoundError
        The file does not exist (the message shows the absolute path).
    """
    p = _check_path(path, "CSV")
    df = pd.read_csv(p, **dict(read_kwargs or {}))
    return _finish_file(df, p, symbol, dict(from_frame_kwargs))


def load_parquet(
    path: str | os.PathLike[str],
    symbol: str | Sequence[str] | None = None,
    *,
    read_kwargs: Mapping[str, Any] | None = None,
    **from_frame_kwargs: Any,
) -> BarStore:
    """Load bars from a Parquet file or dataset directory (needs ``pyarrow``).

    The saved index (a DatetimeIndex, or a (timestamp, symbol) MultiIndex) and
    2-level columns survive the round trip; otherwise a date column is used as in
    :func:`load_csv`. ``symbol`` defaults to the stem upper-cased for single-asset
    files. ``read_kwargs`` go to :func:`pandas.read_parquet`.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ImportError
        pyarrow is not installed (``pip install pyarrow``).
    """
    p = _check_path(path, "Parquet")
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "load_parquet needs the pyarrow package to read Parquet files: pip install pyarrow"
        ) from exc
    df = pd.read_parquet(p, **dict(read_kwargs or {}))
    return _finish_file(df, p, symbol, dict(from_frame_kwargs))
