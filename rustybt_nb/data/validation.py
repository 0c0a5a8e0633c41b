"""Validation and normalisation of one asset's bars.

:func:`validate_bars` turns a user's frame into the shape the bar store expects, or
raises :class:`~rustybt_nb.errors.DataValidationError` with a message that names the
symbol, the problem, the offending rows (timestamp and row position, the first ten and
a count) and a line of pandas that fixes it. Nothing is repaired silently: unsorted or
duplicated timestamps, NaN prices and inconsistent OHLC are errors, not warnings.

Output shape (the contract with :class:`~rustybt_nb.data.bar_store.BarStore`):

* a :class:`pandas.DatetimeIndex` in nanoseconds, sorted, unique, unnamed. Daily bars are
  tz-naive midnight dates; minute bars are tz-aware UTC, taken as given (each bar is
  assumed to be labelled by its *end*, the Zipline convention: the 09:30-09:31 New York
  bar is stamped 09:31);
* float64 columns ``open, high, low, close, volume`` in that order, then any extra
  numeric columns (indicators, lower-cased names) in their original order;
* ``attrs``: ``symbol``, ``frequency``, ``close_only``, ``has_volume``, ``dropped_columns``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataValidationError, did_you_mean, fmt_list, near_matches

__all__ = ["DATE_COLUMNS", "SYMBOL_COLUMNS", "normalize_frequency", "validate_bars"]

PRICE_FIELDS = ("open", "high", "low", "close")
OHLCV = (*PRICE_FIELDS, "volume")
#: Column names (case-insensitive) that hold timestamps when the index does not.
DATE_COLUMNS = ("datetime", "timestamp", "date", "time", "dt")
#: Column names (case-insensitive) that hold the symbol of a long multi-asset frame.
SYMBOL_COLUMNS = ("symbol", "ticker", "asset")
_ADJ_CLOSE = {"adj_close", "adjclose", "adjusted_close", "adj_close_price"}
_SHOW_ROWS = 10

#: Every spelling of a bar frequency the package accepts (data frequency, history windows).
FREQUENCY_ALIASES = {
    "daily": "daily", "day": "daily", "d": "daily", "1d": "daily",
    "minute": "minute", "min": "minute", "m": "minute", "1m": "minute", "1min": "minute", "1t": "minute",
}


def normalize_frequency(frequency: str | None) -> str | None:
    """``'daily'``/``'minute'`` (or None) from a few common spellings (``'1d'``, ``'1m'``...)."""
    if frequency is None:
        return None
    key = str(frequency).strip().lower()
    if key in FREQUENCY_ALIASES:
        return FREQUENCY_ALIASES[key]
    raise ValueError(
        f"`frequency`={frequency!r} is not understood; use 'daily' or 'minute' "
        f"(or None to infer it from the timestamps).{did_you_mean(key, ['daily', 'minute'])}"
    )


def _norm_key(name: object) -> str:
    """Lower-case, trimmed, runs of spaces/dashes/dots as one underscore."""
    return re.sub(r"[\s\-.]+", "_", str(name).strip().lower()).strip("_")


# --------------------------------------------------------------------------- messages
def _fmt_ts(ts: pd.Timestamp) -> str:
    if pd.isna(ts):
        return "NaT"
    if ts.tzinfo is None and ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    return str(ts)


def _rows(labels: Sequence[object], positions: np.ndarray, row_numbers: np.ndarray | None) -> str:
    """'2018-01-03 (row 2), ... and 5 more (7 rows in total)' for the flagged positions."""
    positions = np.asarray(positions, dtype=np.int64)
    shown = []
    for p in positions[:_SHOW_ROWS]:
        row = int(row_numbers[p]) if row_numbers is not None else int(p)
        lab = labels[p]
        lab_s = _fmt_ts(lab) if isinstance(lab, pd.Timestamp) else repr(lab)
        shown.append(f"{lab_s} (row {row})")
    text = ", ".join(shown)
    if len(positions) > _SHOW_ROWS:
        text += f", ... and {len(positions) - _SHOW_ROWS} more"
    return f"{text} [{len(positions)} row{'s' if len(positions) != 1 else ''} in total]"


class _Ctx:
    """What the error messages need to know about the caller's frame."""

    def __init__(self, symbol: str, row_numbers: np.ndarray | None, date_col: str | None,
                 symbol_col: str | None) -> None:
        self.symbol = symbol
        self.row_numbers = row_numbers
        self.date_col = date_col
        self.symbol_col = symbol_col

    def fail(self, problem: str, fix: str, labels: Sequence[object] | None = None,
             positions: np.ndarray | None = None) -> DataValidationError:
        msg = f"Bad bars for symbol {self.symbol!r}: {problem}"
        if labels is not None and positions is not None and len(positions):
            msg += f"\n  offending rows: {_rows(labels, positions, self.row_numbers)}"
        msg += f"\n  fix: {fix}"
        return DataValidationError(msg)

    # pandas lines that refer to the user's own frame
    def sort_fix(self) -> str:
        if self.date_col is not None:
            keys = [self.symbol_col, self.date_col] if self.symbol_col else self.date_col
            return f"df = df.sort_values({keys!r})"
        return "df = df.sort_index()"

    def dedupe_fix(self) -> str:
        if self.date_col is not None:
            keys = [self.symbol_col, self.date_col] if self.symbol_col else [self.date_col]
            return f"df = df.drop_duplicates(subset={keys!r}, keep='last')"
        return "df = df[~df.index.duplicated(keep='last')]"


# ----------------------------------------------------------------------- timestamps
def parse_datetimes(values: object) -> tuple[pd.DatetimeIndex | None, np.ndarray]:
    """Parse ``values`` into a DatetimeIndex, trying progressively looser rules.

    Tries: pandas' own inference (the format of the first value, e.g. ``%m/%d/%Y``,
    month first when ambiguous), then ``utc=True`` (mixed UTC offsets, as in exports
    that cross a DST change), then ``format='mixed'``. Integers of 8 digits are read
    as ``YYYYMMDD``; other numbers are refused (epoch units are ambiguous).
    Returns ``(index, bad_positions)``; index is None when nothing parses cleanly.
    """
    arr = pd.Index(values)
    n = len(arr)
    if pd.api.types.is_bool_dtype(arr.dtype):
        return None, np.arange(n)
    if pd.api.types.is_numeric_dtype(arr.dtype):
        v = arr.to_numpy()
        ok = np.isfinite(v.astype(np.float64))
        if ok.all() and (v == np.round(v)).all() and ((v >= 1_000_01_01) & (v <= 9999_12_31)).all():
            arr = pd.Index(v.astype(np.int64).astype(str))
            attempts: list[dict[str, object]] = [{"format": "%Y%m%d"}]
        else:
            return None, np.arange(n)
    else:
        attempts = [{}, {"utc": True}, {"format": "mixed"}, {"format": "mixed", "utc": True}]
    missing = np.asarray(pd.isna(arr))
    for kw in attempts:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(arr, **kw))
        except (ValueError, TypeError, OverflowError):
            continue
        bad = np.flatnonzero(np.asarray(idx.isna()))
        return (idx, bad) if not len(bad) else (None, bad)
    # locate the values that will not parse under the loosest rule
    try:
        coerced = pd.to_datetime(arr, format="mixed", utc=True, errors="coerce")
        bad = np.flatnonzero(np.asarray(pd.isna(coerced)))
    except (ValueError, TypeError, OverflowError):
        bad = np.arange(n)
    if not len(bad):
        bad = np.flatnonzero(missing) if missing.any() else np.arange(min(n, 1))
    return None, bad


def find_date_column(columns: Sequence[object]) -> tuple[object | None, object | None]:
    """``(date_or_datetime_column, separate_time_column)`` by name, case-insensitive.

    A ``Date`` column plus a ``Time`` column (common in minute CSV exports) are
    returned together so they can be combined; otherwise the first of
    ``datetime, timestamp, date, time, dt`` found wins.
    """
    by_key: dict[str, object] = {}
    for c in columns:
        by_key.setdefault(_norm_key(c), c)
    if "date" in by_key and "time" in by_key and "datetime" not in by_key and "timestamp" not in by_key:
        return by_key["date"], by_key["time"]
    for name in DATE_COLUMNS:
        if name in by_key:
            return by_key[name], None
    return None, None


def _timestamps(df: pd.DataFrame, ctx: _Ctx) -> tuple[pd.DatetimeIndex, list[object]]:
    """The frame's timestamps (index or date column) and the columns they used up."""
    index = df.index
    if isinstance(index, pd.DatetimeIndex):
        if index.hasnans:
            bad = np.flatnonzero(np.asarray(index.isna()))
            raise ctx.fail(f"{len(bad)} missing timestamps (NaT) in the index.",
                           "df = df[df.index.notna()]", index, bad)
        return index, []
    date_col, time_col = find_date_column(list(df.columns))
    used: list[object] = []
    if date_col is not None:
        values = df[date_col]
        used = [date_col]
        if time_col is not None:
            values = df[date_col].astype(str) + " " + df[time_col].astype(str)
            used.append(time_col)
        source = f"column {date_col!r}" + (f" + {time_col!r}" if time_col is not None else "")
        fix = (f"parse it yourself, e.g. df[{date_col!r}] = pd.to_datetime(df[{date_col!r}], "
               "format='%d/%m/%Y'), or drop the bad rows")
    elif pd.api.types.is_object_dtype(index.dtype) or pd.api.types.is_string_dtype(index.dtype):
        values = index
        source = "the index"
        fix = "parse it yourself, e.g. df.index = pd.to_datetime(df.index, format='%d/%m/%Y')"
    else:
        cols = [str(c) for c in df.columns]
        raise ctx.fail(
            f"the index is not datetime-like (it is a {type(index).__name__} of dtype {index.dtype}) "
            f"and no date column was found among the columns {fmt_list(cols)} (looked for "
            f"{', '.join(DATE_COLUMNS)}, case-insensitive).",
            "give the frame a DatetimeIndex, e.g. df.index = pd.to_datetime(df.index) or "
            "df = df.set_index(pd.to_datetime(df['Date'])); epoch numbers need a unit: "
            "pd.to_datetime(df.index, unit='s')",
        )
    parsed, bad = parse_datetimes(values)
    if parsed is None:
        labels = list(pd.Index(values)) if len(bad) else []
        raise ctx.fail(
            f"could not parse the timestamps in {source} ({len(bad)} value(s) are not dates).",
            fix, labels, bad,
        )
    return parsed, used


def _localize(idx: pd.DatetimeIndex, frequency: str, tz: str | None, ctx: _Ctx) -> pd.DatetimeIndex:
    """Daily: naive midnight dates (local wall date of aware input). Minute: UTC."""
    if frequency == "daily":
        if idx.tz is not None:
            idx = idx.tz_localize(None)
        if not idx.is_normalized:  # (normalize() copies and infers a frequency even when nothing changes)
            idx = idx.normalize()
        return idx.as_unit("ns")
    if idx.tz is None:
        zone = tz or "America/New_York"
        local = idx.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        bad = np.flatnonzero(np.asarray(local.isna()))
        if len(bad):
            raise ctx.fail(
                f"{len(bad)} tz-naive minute timestamps do not exist or are ambiguous in {zone} "
                "(a daylight-saving change).",
                "give tz-aware timestamps, e.g. df.index = df.index.tz_localize('UTC'), or pass the "
                "zone the data was recorded in with tz=...",
                idx, bad,
            )
        idx = local
    return idx.tz_convert("UTC").as_unit("ns")


def infer_frequency(idx: pd.DatetimeIndex) -> str:
    """'daily' when every timestamp is a midnight (in its own zone), else 'minute'."""
    if idx.tz is None:  # the same test without building a normalised copy (and inferring its freq)
        return "daily" if idx.is_normalized else "minute"
    return "daily" if bool((idx == idx.normalize()).all()) else "minute"


# --------------------------------------------------------------------------- columns
def _numeric(series: pd.Series, name: object, labels: Sequence[object], ctx: _Ctx) -> np.ndarray:
    """A column as float64; non-numeric values are an error naming the column."""
    if pd.api.types.is_bool_dtype(series.dtype):
        raise ctx.fail(f"column {name!r} holds booleans, not numbers.",
                       f"check that {name!r} is the column you meant")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = np.flatnonzero(np.asarray(coerced.isna() & series.notna()))
    if len(bad):
        examples = ", ".join(repr(series.iloc[p]) for p in bad[:3])
        raise ctx.fail(
            f"column {name!r} holds non-numeric values (e.g. {examples}).",
            f"df[{name!r}] = pd.to_numeric(df[{name!r}], errors='coerce'), then drop the NaN rows "
            f"with df = df.dropna(subset=[{name!r}])",
            labels, bad,
        )
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def _map_columns(df: pd.DataFrame, ctx: _Ctx, skip: list[object]) -> tuple[dict[str, object], list[object]]:
    """Map canonical field -> the user's column; also list the extra (candidate) columns."""
    mapping: dict[str, object] = {}
    extras: list[object] = []
    seen: dict[str, object] = {}
    for col in df.columns:
        if any(col is s or col == s for s in skip):
            continue
        key = _norm_key(col)
        if key in seen:
            raise ctx.fail(
                f"columns {seen[key]!r} and {col!r} have the same name once lower-cased.",
                f"drop or rename one of them, e.g. df = df.drop(columns=[{col!r}])",
            )
        seen[key] = col
        if key in OHLCV or key == "price" or key in _ADJ_CLOSE:
            mapping[key if key not in _ADJ_CLOSE else "adj_close"] = col
        else:
            extras.append(col)
    return mapping, extras


def _missing_columns_error(found: list[object], missing: list[str], ctx: _Ctx, note: str = "") -> Exception:
    found_s = [str(c) for c in found]
    hints = "".join(
        f" For {m!r}:{did_you_mean(m, found_s)}" for m in missing if did_you_mean(m, found_s)
    )
    renames = {}
    for m in missing:
        close = [c for c in near_matches(m, found_s) if c not in renames]
        if close:
            renames[close[0]] = m
    example = renames or {"Last": "close"}
    return ctx.fail(
        f"missing required column(s) {fmt_list(missing)}; found {fmt_list(found_s)}.{note}{hints}",
        f"rename the columns, e.g. df = df.rename(columns={example!r}); a frame needs "
        "open, high, low, close (volume optional), or a single close/price column for close-only data",
    )


# ------------------------------------------------------------------------ entry point
def validate_bars(
    df: pd.DataFrame,
    symbol: str = "ASSET",
    frequency: str | None = None,
    *,
    tz: str | None = None,
    _row_numbers: np.ndarray | None = None,
    _symbol_col: str | None = None,
) -> pd.DataFrame:
    """Check one asset's bars and return them cleaned (see the module docstring).

    Parameters
    ----------
    df:
        One asset's bars. Timestamps come from a DatetimeIndex, or from a column named
        ``datetime``/``timestamp``/``date``/``time`` (case-insensitive; a ``Date`` plus a
        ``Time`` column are combined), or from a string index that parses as dates.
        Column names are matched case-insensitively. ``open, high, low, close`` are
        required, except that a frame whose only price column is ``close`` or ``price``
        (or, failing both, ``adj close``) is accepted as close-only data: open, high and
        low are set to the close (flat bars, ``attrs['close_only']``). ``adj close`` is
        otherwise ignored (it is not interchangeable with an unadjusted close). A
        ``price`` column next to ``close`` is dropped: the store derives ``price`` itself.
        Without a ``volume`` column volume is NaN and ``attrs['has_volume']`` is False.
        ``attrs['naive_minutes']`` tells that minute timestamps were tz-naive (read in ``tz``).
        Other numeric columns are kept as float64 fields under lower-cased names;
        non-numeric ones are dropped (listed in ``attrs['dropped_columns']``).
    symbol:
        Used in error messages and stored in ``attrs['symbol']``.
    frequency:
        ``'daily'``, ``'minute'`` or None to infer: every timestamp at midnight (in
        its own time zone) means daily, anything else minute. Daily timestamps become
        tz-naive dates (aware ones keep their local date); minute ones become UTC.
    tz:
        Zone of tz-naive *minute* timestamps (default ``'America/New_York'``). Ignored
        for daily data and for tz-aware timestamps.
    _row_numbers, _symbol_col:
        Internal: used by the loaders so that messages about one asset of a long
        multi-asset frame quote row numbers of the whole frame and sort/dedupe fixes
        that include the symbol column.

    Raises
    ------
    DataValidationError
        Empty frame; missing columns; unparseable or non-datetime index; non-numeric
        OHLCV values; NaN/inf prices; non-positive prices; ``high < low``; ``high`` below
        the open or close, ``low`` above them; negative or NaN volume in a volume column;
        unsorted or duplicated timestamps (after daily normalisation). Nothing is sorted,
        deduplicated or dropped for you.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame(name=df.name if df.name is not None and not isinstance(df.name, int) else "close")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame, got {type(df).__name__}")
    frequency = normalize_frequency(frequency)
    ctx = _Ctx(str(symbol), _row_numbers, None, _symbol_col)
    if isinstance(df.columns, pd.MultiIndex):
        raise ctx.fail(
            "the columns are a MultiIndex; validate_bars takes one asset's bars.",
            "use rustybt_nb.data.from_frame(df), which splits (symbol, field) column pairs",
        )
    if len(df) == 0:
        raise ctx.fail(
            f"the frame is empty (0 rows; columns {fmt_list([str(c) for c in df.columns])}).",
            "check the file or the filter that produced it; a backtest needs at least one bar",
        )

    # -- columns first (a frame with no price column is the most common mistake)
    date_col, time_col = (None, None) if isinstance(df.index, pd.DatetimeIndex) else \
        find_date_column(list(df.columns))
    skip = [c for c in (date_col, time_col) if c is not None]
    if _symbol_col is not None:
        skip.append(_symbol_col)
    mapping, extras = _map_columns(df, ctx, skip)
    found = [c for c in df.columns if not any(c is s or c == s for s in skip)]
    close_only = False
    dropped: list[object] = []
    if "close" not in mapping and "price" in mapping:
        mapping["close"] = mapping.pop("price")
    elif "price" in mapping:
        dropped.append(mapping.pop("price"))
    have_ohl = [f for f in ("open", "high", "low") if f in mapping]
    if "close" not in mapping:
        if "adj_close" in mapping and not have_ohl:
            mapping["close"] = mapping.pop("adj_close")
        else:
            note = (" An 'adj close' column is not used as the close next to unadjusted open/high/low."
                    if "adj_close" in mapping else "")
            raise _missing_columns_error(found, ["close"] + [f for f in ("open", "high", "low")
                                                              if f not in mapping], ctx, note)
    if "adj_close" in mapping:
        dropped.append(mapping.pop("adj_close"))
    if not have_ohl:
        close_only = True
    elif len(have_ohl) < 3:
        raise _missing_columns_error(found, [f for f in ("open", "high", "low") if f not in mapping], ctx)
    ctx.date_col = str(date_col) if date_col is not None else None

    # -- timestamps
    raw_idx, _ = _timestamps(df, ctx)
    freq = frequency or infer_frequency(raw_idx)
    naive_minutes = freq == "minute" and raw_idx.tz is None
    idx = _localize(raw_idx, freq, tz, ctx)
    labels = idx

    # -- numbers
    cols: dict[str, np.ndarray] = {}
    for field in PRICE_FIELDS:
        if field in mapping:
            cols[field] = _numeric(df[mapping[field]], mapping[field], labels, ctx)
    has_volume = "volume" in mapping
    if has_volume:
        cols["volume"] = _numeric(df[mapping["volume"]], mapping["volume"], labels, ctx)
    extra_cols: dict[str, np.ndarray] = {}
    for col in extras:
        s = df[col]
        key = str(col).strip().lower()
        if _norm_key(col) in SYMBOL_COLUMNS or not (
            pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)
        ):
            dropped.append(col)
            continue
        extra_cols[key] = s.to_numpy(dtype=np.float64, na_value=np.nan)

    # -- timestamp order (after the daily normalisation, which can create duplicates)
    ivals = idx.asi8
    if len(ivals) > 1:
        down = np.flatnonzero(ivals[1:] < ivals[:-1]) + 1
        if len(down):
            raise ctx.fail(
                f"timestamps are not sorted ascending ({len(down)} row(s) earlier than the row before).",
                ctx.sort_fix(), labels, down,
            )
        dup = np.flatnonzero(idx.duplicated(keep=False))
        if len(dup):
            extra = " after rounding to dates for daily data" if freq == "daily" and not \
                bool((raw_idx == raw_idx.normalize()).all()) else ""
            raise ctx.fail(
                f"duplicate timestamps{extra} ({len(dup)} rows share a timestamp with another row).",
                ctx.dedupe_fix() + "  (keeps the last row of each timestamp)",
                labels, dup,
            )

    # -- prices
    present = [mapping[f] for f in PRICE_FIELDS if f in mapping]
    # Clean data passes one test per column (NaN, inf and <= 0 all fail ``> 0`` or ``< inf``);
    # only a failure stacks the columns to look for the offending rows.
    price_cols = [cols[f] for f in PRICE_FIELDS if f in cols]
    clean = all(bool(((c > 0) & (c < np.inf)).all()) for c in price_cols)
    block = None if clean else np.column_stack(price_cols)
    nan_rows = np.zeros(0, dtype=np.intp) if clean else np.flatnonzero(np.isnan(block).any(axis=1))
    if len(nan_rows):
        which = [mapping[f] for f in PRICE_FIELDS if f in cols and np.isnan(cols[f]).any()]
        raise ctx.fail(
            f"NaN (missing) prices in {fmt_list(which)}.",
            f"df = df.dropna(subset={present!r})", labels, nan_rows,
        )
    inf_rows = nan_rows if clean else np.flatnonzero(np.isinf(block).any(axis=1))
    if len(inf_rows):
        raise ctx.fail(
            "infinite prices (inf or -inf).",
            f"df = df.replace([np.inf, -np.inf], np.nan).dropna(subset={present!r})",
            labels, inf_rows,
        )
    nonpos = nan_rows if clean else np.flatnonzero((block <= 0).any(axis=1))
    if len(nonpos):
        raise ctx.fail(
            "non-positive prices (every price must be > 0).",
            f"df = df[(df[{present!r}] > 0).all(axis=1)]", labels, nonpos,
        )
    if close_only:
        for f in ("open", "high", "low"):
            cols[f] = cols["close"]  # (copied into the output with the other columns)
    else:
        o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
        hn, ln, on, cn = mapping["high"], mapping["low"], mapping["open"], mapping["close"]
        rows = np.flatnonzero(h < lo)
        if len(rows):
            raise ctx.fail(f"high < low ({hn!r} below {ln!r}).",
                           f"fix the source, or drop the rows: df = df[df[{hn!r}] >= df[{ln!r}]]",
                           labels, rows)
        rows = np.flatnonzero((h < o) | (h < c))
        if len(rows):
            raise ctx.fail(
                f"high below the open or the close ({hn!r} < max({on!r}, {cn!r})).",
                f"fix the source, or widen the high: df[{hn!r}] = df[[{on!r}, {hn!r}, {cn!r}]].max(axis=1)",
                labels, rows)
        rows = np.flatnonzero((lo > o) | (lo > c))
        if len(rows):
            raise ctx.fail(
                f"low above the open or the close ({ln!r} > min({on!r}, {cn!r})).",
                f"fix the source, or widen the low: df[{ln!r}] = df[[{on!r}, {ln!r}, {cn!r}]].min(axis=1)",
                labels, rows)

    # -- volume
    if has_volume:
        v = cols["volume"]
        vn = mapping["volume"]
        rows = np.flatnonzero(np.isnan(v))
        if len(rows):
            raise ctx.fail(
                f"NaN volume in {vn!r} (NaN volume is only allowed when there is no volume column).",
                f"df[{vn!r}] = df[{vn!r}].fillna(0), or drop the column if volume is unknown: "
                f"df = df.drop(columns=[{vn!r}])",
                labels, rows)
        rows = np.flatnonzero(np.isinf(v) | (v < 0))
        if len(rows):
            raise ctx.fail(f"negative or infinite volume in {vn!r}.",
                           f"df = df[(df[{vn!r}] >= 0) & np.isfinite(df[{vn!r}])]", labels, rows)
    else:
        cols["volume"] = np.full(len(idx), np.nan)

    for key in extra_cols:
        if key in OHLCV:
            raise ctx.fail(f"extra column {key!r} clashes with a bar field.",
                           "rename it, e.g. df = df.rename(columns={...})")
    # The one copy of the data: every field a row of one block, which becomes the frame
    # without a consolidating copy (and whose rows the bar store then uses as they are).
    fields = [*OHLCV, *extra_cols]
    out_block = np.empty((len(fields), len(idx)))
    for k, f in enumerate(fields):
        out_block[k] = cols[f] if k < len(OHLCV) else extra_cols[f]
    out = pd.DataFrame(out_block.T, index=pd.DatetimeIndex(idx, name=None), columns=fields, copy=False)
    out.attrs = {
        "symbol": str(symbol),
        "frequency": freq,
        "close_only": close_only,
        "has_volume": has_volume,
        "dropped_columns": [str(c) for c in dropped],
        "naive_minutes": naive_minutes,
    }
    return out
