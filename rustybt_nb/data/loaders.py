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
``midnight_minutes``  True on a minute store made (``frequency='minute'``) from timestamps
                 that are all midnights: daily bars read as minute bars, which
                 :func:`~rustybt_nb.data.sources.open_data` (``data=`` of a backtest) refuses
"""

from __future__ import annotations

import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..calendars import calendar_tz
from ..errors import DataValidationError, did_you_mean, fmt_list
from .bar_store import BarStore
from .validation import (
    _DM_OR_MD,
    SYMBOL_COLUMNS,
    _norm_key,
    find_date_column,
    normalize_frequency,
    parse_stamps,
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
        if all(f.attrs["midnights"] for f in frames.values()):
            meta["midnight_minutes"] = True
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
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a str or pathlib.Path, got {type(path).__name__}: {path!r}")
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"`path` must be a str or Path, got {type(path).__name__}")
    if "://" in p:  # URLs go straight to pandas
        return p
    if not os.path.exists(p):
        raise FileNotFoundError(f"{what} file not found: {p!r} (absolute path {os.path.abspath(p)!r})")
    return p


def _file_error(path: str, problem: str, fix: str) -> DataValidationError:
    """The house style for a file that cannot be read: the file, the problem, the fix."""
    return DataValidationError(f"Cannot load {path!r}: {problem}\n  fix: {fix}")


def _split_kwargs(kwargs: dict[str, Any], read_kwargs: Mapping[str, Any] | None, reader: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(read_kwargs, from_frame_kwargs)`` checked before the file is read."""
    if read_kwargs is not None and not isinstance(read_kwargs, Mapping):
        raise TypeError(f"`read_kwargs` must be a dict of {reader} options, e.g. {{'sep': ';'}}, "
                        f"got {type(read_kwargs).__name__}: {read_kwargs!r}")
    kw = {k: kwargs.pop(k) for k in ("frequency", "calendar", "tz") if k in kwargs}
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)}; pass pandas options via "
                        "read_kwargs={...}")
    return dict(read_kwargs or {}), kw


_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
_MAGIC = {  # first bytes of files that are not text, and what they are
    b"PAR1": "a Parquet file",
    b"PK\x03\x04": "a zip archive (or an Excel .xlsx workbook, which is one)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook",
    b"\x1f\x8b": "a gzip-compressed file",
    b"BZh": "a bzip2-compressed file",
    b"\xfd7zXZ": "an xz-compressed file",
    b"%PDF": "a PDF document",
}


def _head(path: str, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _check_csv_file(p: str, read_kwargs: dict[str, Any]) -> None:
    """Refuse, with the fix, a CSV path that is a folder, empty, or not text."""
    if "://" in p:
        return
    if os.path.isdir(p):
        inside = sorted(n for n in os.listdir(p) if n.lower().endswith(CSV_SUFFIXES))
        example = f", e.g. {os.path.join(p, inside[0])!r}" if inside else ""
        raise _file_error(p, "it is a folder, not a CSV file.", f"give the path of a CSV file{example}")
    if os.path.getsize(p) == 0:
        raise _file_error(p, "the file is empty (0 bytes).",
                          "check the export or download that wrote it; a backtest needs at least one bar")
    if p.lower().endswith(_COMPRESSED) or read_kwargs.get("compression") not in (None, "infer"):
        return  # pandas decompresses it; failures are caught when reading
    head = _head(p)
    if "encoding" not in read_kwargs and head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _file_error(p, "it is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8.",
                          "read_kwargs={'encoding': 'utf-16'}, or save the file as UTF-8")
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            if kind == "a Parquet file":
                fix = "load it with rustybt_nb.data.load_parquet(path), or name it .parquet"
            elif "compressed" in kind:
                fix = (f"name it for its compression (e.g. {os.path.basename(p)}.gz) or pass "
                       "read_kwargs={'compression': 'gzip'} (or 'bz2', 'xz')")
            elif "Excel" in kind:
                fix = "read it with pandas (df = pd.read_excel(path)) and pass the frame, or save the sheet as CSV"
            else:
                fix = "export the bars as CSV text"
            raise _file_error(p, f"it is {kind}, not CSV text.", fix)
    if "encoding" not in read_kwargs and b"\x00" in head:
        raise _file_error(p, f"it holds binary data, not CSV text (a NUL byte at offset {head.index(0)}).",
                          "check that the path is the CSV export you meant")


def _first_lines(p: str, read_kwargs: dict[str, Any], n: int = 3) -> list[str]:
    """The first lines of a plain-text file, for messages ([] when it is compressed or a URL)."""
    if "://" in p or p.lower().endswith(_COMPRESSED):
        return []
    try:
        with open(p, encoding=read_kwargs.get("encoding") or "utf-8", errors="replace") as f:
            return [f.readline().rstrip("\r\n") for _ in range(n)]
    except (OSError, LookupError):
        return []


_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_DATA_NAME = re.compile(r"^\s*[+-]?(\d+([.,]\d+)*|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T][\d:.]+)?)\s*$")


def _read_csv(p: str, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    """``pandas.read_csv`` with every failure (and the silent misreads of a wrong
    separator, a missing header or rows longer than the header) said in the house style."""
    kw = dict(read_kwargs)
    if p.lower().endswith(".tsv") and "sep" not in kw and "delimiter" not in kw:
        kw["sep"] = "\t"
    _check_csv_file(p, kw)
    enc = kw.get("encoding")
    try:
        df = pd.read_csv(p, **kw)
    except UnicodeError as exc:
        bad = getattr(exc, "object", b"")[getattr(exc, "start", 0):getattr(exc, "start", 0) + 1]
        byte = f" (byte 0x{bad[0]:02x} cannot be decoded)" if isinstance(bad, bytes) and bad else ""
        if enc:
            raise _file_error(p, f"it is not valid {enc} text{byte}.",
                              "pass the file's own encoding in read_kwargs={'encoding': ...}") from None
        raise _file_error(
            p, f"it is not UTF-8 text{byte}, e.g. a file saved by Excel in a Western European encoding.",
            "pass its encoding: read_kwargs={'encoding': 'latin-1'} (or 'cp1252', the Windows default), "
            "or save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise _file_error(p, "it holds no columns (only blank lines or whitespace).",
                          "check the export or download that wrote it") from None
    except pd.errors.ParserError as exc:
        m = _RAGGED.search(str(exc))
        if m:
            want, line, got = m.groups()
            raise _file_error(
                p, f"line {line} has {got} fields but the header has {want} (a ragged row: a stray separator, "
                "or a comma inside a number or a text field without quotes).",
                f"correct line {line} of the file, or leave such lines out with "
                "read_kwargs={'on_bad_lines': 'skip'}") from None
        raise _file_error(p, f"pandas could not read it as CSV ({str(exc).strip()}).",
                          "check the file, or pass read_kwargs={...} that describe it (sep, quotechar, ...)"
                          ) from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise _file_error(p, f"it could not be read ({type(exc).__name__}: {exc}).",
                          "check that the file is complete and of the kind its name says "
                          "(.csv, or .csv.gz/.zip/... for compressed files)") from None
    except (TypeError, ValueError) as exc:
        if read_kwargs:
            raise ValueError(f"pandas.read_csv refused `read_kwargs`={read_kwargs!r} for {p!r}: {exc}") from None
        raise _file_error(p, f"pandas could not read it as CSV ({exc}).", "check the file") from None
    _check_csv_shape(df, p, kw)
    return df


def _check_csv_shape(df: pd.DataFrame, p: str, kw: dict[str, Any]) -> None:
    """A frame read with the default options that shows the file needed others."""
    told = {k for k in ("sep", "delimiter", "header", "names", "index_col", "usecols") if k in kw}
    cols = [str(c) for c in df.columns]
    if not told & {"sep", "delimiter", "header", "names"} and len(cols) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if sep in cols[0]:
                lines = _first_lines(p, kw)
                data = lines[1] if len(lines) > 1 else ""
                extra, notes = "", []
                if re.search(r"\d,\d", data):
                    extra, notes = ", 'decimal': ','", ["decimal commas"]
                if re.match(r"\s*\d{1,2}\.\d{1,2}\.\d{2,4}\b", data):  # 31.01.2020: European, day first
                    extra += f", 'parse_dates': [{cols[0].split(sep)[0]!r}], 'dayfirst': True"
                    notes.append("day-first dates")
                raise _file_error(
                    p, f"its fields are separated by {name} ({sep!r}), not commas, so the header "
                    f"{cols[0]!r} was read as one column.",
                    f"load_csv(path, read_kwargs={{'sep': {sep!r}{extra}}})"
                    + (f" (the file has {' and '.join(notes)})" if notes else ""))
    if not told & {"header", "names"} and len(cols) >= 2 and all(_DATA_NAME.match(c) for c in cols):
        lines = _first_lines(p, kw, 1)
        first = lines[0] if lines else ",".join(cols)
        base = ["date", "open", "high", "low", "close", "volume"] if len(cols) >= 5 else ["date", "close", "volume"]
        names = base[: len(cols)] + [f"col{k}" for k in range(len(base), len(cols))]
        raise _file_error(
            p, f"it has no header row: its first line ({first!r}) is data, and its values were taken "
            "as the column names.",
            f"add a header line such as {','.join(names)!r} at the top of the file (naming the columns as they "
            f"are), or pass read_kwargs={{'header': None, 'names': {names!r}}}")
    if not told & {"index_col", "names"} and not isinstance(df.index, pd.RangeIndex):
        raise _file_error(
            p, f"its data rows have more fields than its header ({len(cols)} names), so pandas took the "
            "first field(s) of each row as row labels and every value moved one column left (often a "
            "separator at the end of each data line).",
            "read_kwargs={'index_col': False} if each data line ends with a separator; otherwise "
            "give the header a name for every column")


def _check_parquet_file(p: str) -> None:
    """Refuse, with the fix, a Parquet path that is empty, text, or not Parquet."""
    if "://" in p:
        return
    if os.path.isdir(p):
        for _root, _dirs, files in os.walk(p):
            if any(not f.startswith(("_", ".")) for f in files):
                return
        raise _file_error(p, "it is a folder with no Parquet files in it.",
                          "give the path of a .parquet file, or of a folder of Parquet files (a dataset)")
    if os.path.getsize(p) == 0:
        raise _file_error(p, "the file is empty (0 bytes).", "check the export or copy that wrote it")
    head = _head(p)
    if head.startswith(b"PAR1"):
        return
    text = b"\x00" not in head
    if text:
        try:
            first = head.decode("utf-8").splitlines()[0]
        except (UnicodeDecodeError, IndexError):
            text = False
    if text:
        raise _file_error(p, f"it is a text file (its first line: {first[:80]!r}), not Parquet.",
                          "load it with rustybt_nb.data.load_csv(path), or name it .csv")
    kind = next((k for m, k in _MAGIC.items() if head.startswith(m)), "of another kind or damaged")
    raise _file_error(p, f"it is not a Parquet file (those start with 'PAR1'); it is {kind}.",
                      "check the path, or write the frame again with df.to_parquet(path)")


def _read_parquet(p: str, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    _check_parquet_file(p)
    try:
        return pd.read_parquet(p, **read_kwargs)
    except ImportError:
        raise
    except Exception as exc:  # pyarrow's errors (ArrowInvalid, ArrowIOError...) and OSError
        if read_kwargs and isinstance(exc, TypeError):
            raise ValueError(f"pandas.read_parquet refused `read_kwargs`={read_kwargs!r} for {p!r}: "
                             f"{exc}") from None
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _file_error(p, f"it could not be read as Parquet ({text}); the file is damaged, e.g. cut short "
                          "by an interrupted copy.",
                          "write it again (df.to_parquet(path)) or copy it again") from None


def _stem_symbol(path: str) -> str:
    name = Path(path.rstrip("/")).name
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.upper() or DEFAULT_SYMBOL


def _finish_file(df: pd.DataFrame, path: str, symbol: str | Sequence[str] | None,
                 kw: dict[str, Any]) -> BarStore:
    """Promote a date-like first column to the index, name the asset, build. Errors about
    the bars name the file."""
    if not isinstance(df.index, pd.DatetimeIndex) and not isinstance(df.columns, pd.MultiIndex):
        date_col, _ = find_date_column(list(df.columns))
        if date_col is None and len(df.columns) > 1:
            first = df.columns[0]
            if not pd.api.types.is_numeric_dtype(df[first].dtype):
                parsed, _, problem = parse_stamps(df[first])
                if parsed is not None and parsed.wall is None and not _DM_OR_MD.match(str(df[first].iloc[0])):
                    df = df.drop(columns=[first]).set_axis(parsed.idx, axis=0)
                elif parsed is not None or problem is not None:
                    # as written (read again), for values of several zones and for the messages about
                    # dates that read day first or month first
                    df = df.set_index(first)
    multi = isinstance(df.columns, pd.MultiIndex) or isinstance(df.index, pd.MultiIndex) or (
        _symbol_column(df) is not None
    )
    if symbol is None and not multi:
        symbol = _stem_symbol(path)
    try:
        return _build(_pieces(df, symbol), source=path, frequency=kw.get("frequency"),
                      calendar=kw.get("calendar"), tz=kw.get("tz"))
    except DataValidationError as exc:
        raise DataValidationError(f"{exc}\n  file: {path!r}") from None


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
    frame saved with ``df.to_csv()``). Dates are read in the one format that reads
    them all, inferred from the first value: US ``%m/%d/%Y`` when every date reads
    month first (the choice when all are ambiguous), day first when some date only
    reads day first (``13/01/2020``: the whole column is then day first). For a
    day-first file whose dates all read either way, pass
    ``read_kwargs={'parse_dates': [<date column>], 'dayfirst': True}``. Times with
    different UTC offsets (an export from a tz-aware frame across DST) are each read
    with their own offset: daily bars keep their local dates.

    The separator is a comma (a tab for ``.tsv``). A file whose header reads as one
    column holding ``;``, tabs or ``|``, a file without a header row, and one whose
    data rows are longer than its header are refused, with the ``read_kwargs`` that
    read it (``{'sep': ';'}`` ...): the file is not guessed at. ``symbol`` defaults to the file
    name's stem upper-cased (``aapl.csv`` -> ``'AAPL'``) unless the file has a symbol
    column. ``read_kwargs`` go to :func:`pandas.read_csv`; ``frequency``, ``calendar``
    and ``tz`` go to :func:`from_frame`. ``store.meta['source']`` is the path.

    Raises
    ------
    FileNotFoundError
        The file does not exist (the message shows the absolute path).
    DataValidationError
        The file cannot be read as bars: a folder, an empty file, binary data (a Parquet
        or Excel file...), text that is not UTF-8 (the fix names ``read_kwargs={'encoding':
        ...}``), a ragged row (the line), the layouts above; or bad bars (as for
        :func:`from_frame`, with the file named).
    """
    p = _check_path(path, "CSV")
    read, kw = _split_kwargs(dict(from_frame_kwargs), read_kwargs, "pandas.read_csv")
    return _finish_file(_read_csv(p, read), p, symbol, kw)


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
    DataValidationError
        The path cannot be read as Parquet (empty, a text/CSV file, another kind of file,
        damaged; a folder without Parquet files), or bad bars (the file named).
    """
    p = _check_path(path, "Parquet")
    read, kw = _split_kwargs(dict(from_frame_kwargs), read_kwargs, "pandas.read_parquet")
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "load_parquet needs the pyarrow package to read Parquet files: pip install pyarrow"
        ) from exc
    return _finish_file(_read_parquet(p, read), p, symbol, kw)
