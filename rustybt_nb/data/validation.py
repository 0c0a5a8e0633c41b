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

import datetime as _dt
import math
import re
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

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
class Stamps(NamedTuple):
    """Parsed timestamps. ``idx`` holds the instants: naive, in one zone, or UTC when the
    values carry different zones (then ``wall`` gives each value's own wall-clock time,
    naive, and ``naive`` marks the values that had no zone, if any did not)."""

    idx: pd.DatetimeIndex
    wall: Callable[[], pd.DatetimeIndex] | None = None
    naive: np.ndarray | None = None
    #: the text the timestamps were read from (None for datetime input), and whether day first
    source: pd.Index | None = None
    dayfirst: bool = False

    def read_month_first(self) -> str | None:
        """A value of the text read as dates that could have been day first (``02/01/2020``
        read month first), or None."""
        if self.source is None or self.dayfirst:
            return None
        text = pd.Series(np.asarray(self.source, dtype=object)).astype(str)
        parts = text.str.extract(_DM_OR_MD)
        first = pd.to_numeric(parts[0], errors="coerce").to_numpy()
        second = pd.to_numeric(parts[1], errors="coerce").to_numpy()
        hits = np.flatnonzero((first <= 12) & (second <= 12) & (first != second))
        return str(text.iloc[hits[0]]) if len(hits) else None

    def local(self) -> pd.DatetimeIndex:
        """Each timestamp's own wall-clock time (naive): what daily dates are taken from."""
        if self.wall is not None:
            return self.wall()
        return self.idx.tz_localize(None) if self.idx.tz is not None else self.idx


_NS_PER_15_MIN = 15 * 60 * 10**9
_OFFSET = re.compile(r"(?:Z|([+-])(\d\d):?(\d\d)?)\s*$")
# d/m/y or m/d/y (any of / . - between the numbers): the first two numbers
_DM_OR_MD = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}(?:\D|$)")


def parse_datetimes(values: object) -> tuple[pd.DatetimeIndex | None, np.ndarray]:
    """Parse ``values`` into a DatetimeIndex (see :func:`parse_stamps` for the rules).
    Returns ``(index, bad_positions)``; index is None when nothing parses cleanly. When the
    values carry different time zones the index is in UTC (naive values read as UTC)."""
    stamps, bad, _ = parse_stamps(values)
    return (stamps.idx if stamps is not None else None), bad


def parse_stamps(values: object) -> tuple[Stamps | None, np.ndarray, str | None]:
    """Parse ``values``, trying progressively looser rules.

    Tries: pandas' own inference (the format of the first value, e.g. ``%m/%d/%Y``,
    month first when ambiguous), then ``utc=True`` (mixed UTC offsets, as in exports
    that cross a DST change), then the same day first (a column whose first dates read
    either way but a later one only day first, ``13/01/2020``: the one format that reads
    every value), then ``format='mixed'`` (each value on its own). Integers of 8 digits are
    read as ``YYYYMMDD``; other numbers are refused (epoch units are ambiguous).

    Values with different zones (offsets that change with DST, or naive values next to
    aware ones) keep each value's own wall time and zone (:class:`Stamps`), so the rule
    of :mod:`rustybt_nb.data.times` applies to each: a naive value is local time, an aware
    one is taken as given.

    Returns ``(stamps, bad_positions, problem)``: stamps is None when the values do not
    parse cleanly; then either ``bad_positions`` lists the values that do not parse, or
    ``problem`` says why the column cannot be read one way (dates that read both day first
    and month first in one column of mixed formats; ``bad_positions`` are those rows).
    """
    arr = pd.Index(values)
    n = len(arr)
    if pd.api.types.is_bool_dtype(arr.dtype):
        return None, np.arange(n), None
    if pd.api.types.is_numeric_dtype(arr.dtype):
        if pd.api.types.is_complex_dtype(arr.dtype):
            return None, np.arange(n), None
        v = arr.to_numpy()
        ok = np.isfinite(v.astype(np.float64))
        if ok.all() and (v == np.round(v)).all() and ((v >= 1_000_01_01) & (v <= 9999_12_31)).all():
            arr = pd.Index(v.astype(np.int64).astype(str))
            attempts: list[dict[str, object]] = [{"format": "%Y%m%d"}]
        else:
            return None, np.arange(n), None
    else:
        attempts = [{}, {"utc": True}, {"dayfirst": True}, {"dayfirst": True, "utc": True},
                    {"format": "mixed"}, {"format": "mixed", "utc": True}]
    missing = np.asarray(pd.isna(arr))
    for kw in attempts:
        try:
            idx = _to_datetime(arr, **kw)
        except (ValueError, TypeError, OverflowError):
            continue
        bad = np.flatnonzero(np.asarray(idx.isna()))
        if len(bad):
            return None, bad, None
        if kw.get("format") == "mixed":
            conflict = _day_month_conflict(arr)
            if conflict is not None:
                return None, conflict, (
                    "the dates mix formats, and some of them can only be day first (a first number "
                    "above 12) while others read either way, so each would be read differently")
        text = arr if kw.get("format") != "%Y%m%d" and pd.api.types.is_string_dtype(arr.dtype) else None
        dayfirst = bool(kw.get("dayfirst"))
        if not kw.get("utc"):
            return Stamps(idx, source=text, dayfirst=dayfirst), bad, None
        strings = pd.api.types.infer_dtype(arr, skipna=False) == "string"
        if strings and kw.get("format") != "mixed":
            # one format with an offset (%z): every value is aware; wall times only when asked
            return Stamps(idx, wall=_lazy(partial(_walls_from_offsets, arr, idx)), source=text,
                          dayfirst=dayfirst), bad, None
        try:
            return _each_zone(arr)._replace(source=text), bad, None
        except (ValueError, TypeError, OverflowError):
            return Stamps(idx, source=text), bad, None
    # locate the values that will not parse under the loosest rule
    try:
        coerced = _to_datetime(arr, format="mixed", utc=True, errors="coerce")
        bad = np.flatnonzero(np.asarray(pd.isna(coerced)))
    except (ValueError, TypeError, OverflowError):
        bad = np.arange(n)
    if not len(bad):
        bad = np.flatnonzero(missing) if missing.any() else np.arange(min(n, 1))
    return None, bad, None


def _to_datetime(arr: pd.Index, **kw: object) -> pd.DatetimeIndex:
    """``pd.to_datetime`` without its warnings (every attempt that is not taken warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.DatetimeIndex(pd.to_datetime(arr, **kw))


def _lazy(make: Callable[[], pd.DatetimeIndex]) -> Callable[[], pd.DatetimeIndex]:
    cache: list[pd.DatetimeIndex] = []

    def get() -> pd.DatetimeIndex:
        if not cache:
            cache.append(make())
        return cache[0]
    return get


def _walls_from_offsets(arr: pd.Index, utc: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Wall times of aware strings: the UTC instants plus each string's own offset."""
    offsets = np.empty(len(arr), dtype=np.int64)
    cache: dict[str, int] = {}
    for k, text in enumerate(arr):
        key = text[-6:]
        off = cache.get(key)
        if off is None:
            m = _OFFSET.search(key)
            if m is not None:
                off = 0 if m.group(1) is None else \
                    (1 if m.group(1) == "+" else -1) * (int(m.group(2)) * 60 + int(m.group(3) or 0)) * 60 * 10**9
                cache[key] = off
            else:  # a zone name or another spelling: ask pandas about this one value (UTC if it cannot say)
                try:
                    delta = pd.Timestamp(text).utcoffset()
                except (ValueError, TypeError, OverflowError):
                    delta = None
                off = int(delta / pd.Timedelta(1, "ns")) if delta is not None else 0
        offsets[k] = off
    return pd.DatetimeIndex(utc.tz_localize(None).as_unit("ns").asi8 + offsets)


def _each_zone(arr: pd.Index) -> Stamps:
    """Values of different zones, one by one: each value's own wall time, which had no
    zone, and the instants (UTC; the naive values' wall times as if UTC, until they
    are placed in the zone of the data by the caller)."""
    stamps = [pd.Timestamp(x) for x in arr]
    naive = np.array([t.tzinfo is None for t in stamps], dtype=bool)
    wall = pd.DatetimeIndex([t.tz_localize(None) if t.tzinfo is not None else t for t in stamps]).as_unit("ns")
    utc = pd.DatetimeIndex([t.tz_convert("UTC") if t.tzinfo is not None else t.tz_localize("UTC")
                            for t in stamps]).as_unit("ns")
    return Stamps(utc, wall=lambda: wall, naive=naive if naive.any() else None)


def _day_month_conflict(arr: pd.Index) -> np.ndarray | None:
    """Positions of the d/m/y dates that only read day first, when the same column also
    holds dates that read either way (or only month first): read one by one, these
    would be read day first and the others month first. None when there is no conflict."""
    parts = pd.Series(np.asarray(arr, dtype=object)).astype(str).str.extract(_DM_OR_MD)
    first = pd.to_numeric(parts[0], errors="coerce").to_numpy()
    second = pd.to_numeric(parts[1], errors="coerce").to_numpy()
    day_first = first > 12
    if not day_first.any():
        return None
    either = (first <= 12) & (second <= 12)
    month_first = second > 12
    if either.any() or month_first.any():
        return np.flatnonzero(day_first)
    return None


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


def _timestamps(df: pd.DataFrame, ctx: _Ctx) -> tuple[Stamps, list[object]]:
    """The frame's timestamps (index or date column) and the columns they used up."""
    index = df.index
    if isinstance(index, pd.DatetimeIndex):
        if index.hasnans:
            bad = np.flatnonzero(np.asarray(index.isna()))
            raise ctx.fail(f"{len(bad)} missing timestamps (NaT) in the index.",
                           "df = df[df.index.notna()]", index, bad)
        return Stamps(index), []
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
        order_fix = (f"parse it yourself, e.g. df[{date_col!r}] = pd.to_datetime(df[{date_col!r}], "
                     "format='mixed', dayfirst=True) if the dates are day first (dayfirst=False if month first)")
    elif pd.api.types.is_object_dtype(index.dtype) or pd.api.types.is_string_dtype(index.dtype):
        values = index
        source = "the index"
        fix = "parse it yourself, e.g. df.index = pd.to_datetime(df.index, format='%d/%m/%Y')"
        order_fix = ("parse it yourself, e.g. df.index = pd.to_datetime(df.index, format='mixed', dayfirst=True) "
                     "if the dates are day first (dayfirst=False if month first)")
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
    parsed, bad, problem = parse_stamps(values)
    if parsed is None:
        labels = list(pd.Index(values)) if len(bad) else []
        if problem is not None:
            raise ctx.fail(f"cannot read the timestamps in {source} one way: {problem}.", order_fix, labels, bad)
        raise ctx.fail(
            f"could not parse the timestamps in {source} ({len(bad)} value(s) are not dates).",
            fix, labels, bad,
        )
    return parsed, used


def _localize(stamps: Stamps, frequency: str, tz: str | None, ctx: _Ctx) -> pd.DatetimeIndex:
    """Daily: naive midnight dates (local wall date of aware input). Minute: UTC (naive
    input read in ``tz``; with values of different zones, each by its own)."""
    idx = stamps.idx
    if frequency == "daily":
        if stamps.wall is not None:
            idx = stamps.wall()
        if idx.tz is not None:
            idx = idx.tz_localize(None)
        if not idx.is_normalized:  # (normalize() copies and infers a frequency even when nothing changes)
            idx = idx.normalize()
        return idx.as_unit("ns")
    if stamps.naive is not None:  # naive values next to aware ones: the naive ones are local time
        return _localize_some(stamps, tz or "America/New_York", ctx)
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


def _localize_some(stamps: Stamps, zone: str, ctx: _Ctx) -> pd.DatetimeIndex:
    """UTC instants of values some of which were naive: those read in ``zone``."""
    naive = stamps.naive
    values = stamps.idx.tz_convert("UTC").as_unit("ns").asi8.copy()
    local = stamps.wall()[naive].tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    bad = np.flatnonzero(np.asarray(local.isna()))
    if len(bad):
        rows = np.flatnonzero(naive)[bad]
        raise ctx.fail(
            f"{len(bad)} tz-naive minute timestamps (next to tz-aware ones) do not exist or are ambiguous "
            f"in {zone} (a daylight-saving change).",
            "give every timestamp its UTC offset, or pass the zone the naive ones were recorded in with tz=...",
            stamps.wall(), rows,
        )
    values[naive] = local.tz_convert("UTC").as_unit("ns").asi8
    return pd.DatetimeIndex(values.view("M8[ns]")).tz_localize("UTC")


def _all_midnights(stamps: Stamps) -> bool:
    """Whether every timestamp is a midnight in its own zone (the first two looked at first)."""
    head = Stamps(stamps.idx[:2], wall=(lambda: stamps.wall()[:2]) if stamps.wall is not None else None)
    return infer_frequency(head) == "daily" and infer_frequency(stamps) == "daily"


def infer_frequency(idx: pd.DatetimeIndex | Stamps) -> str:
    """'daily' when every timestamp is a midnight (in its own zone), else 'minute'."""
    if isinstance(idx, Stamps):
        if idx.wall is None:
            idx = idx.idx
        elif not bool((idx.idx.as_unit("ns").asi8 % _NS_PER_15_MIN == 0).all()):
            return "minute"  # (no UTC offset moves a time off the quarter hours: not midnights anywhere)
        else:
            idx = idx.wall()
    if idx.tz is None:  # the same test without building a normalised copy (and inferring its freq)
        return "daily" if idx.is_normalized else "minute"
    return "daily" if bool((idx == idx.normalize()).all()) else "minute"


# --------------------------------------------------------------------------- columns
def _numeric(series: pd.Series, name: object, labels: Sequence[object], ctx: _Ctx) -> np.ndarray:
    """A column as float64; values that are not real numbers are an error naming the column
    and the rows (booleans, timestamps, durations, periods, complex numbers, text)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):  # judged by what it holds
        series = pd.Series(np.asarray(series), index=series.index)
        dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ctx.fail(f"column {name!r} holds booleans, not numbers.",
                       f"check that {name!r} is the column you meant")
    kind = _not_a_number_kind(dtype)
    if kind is not None:
        rows = np.arange(len(series))
        if pd.api.types.is_complex_dtype(dtype):
            values = series.to_numpy()
            rows = np.flatnonzero(values.imag != 0) if (values.imag != 0).any() else rows
        raise ctx.fail(
            f"column {name!r} holds {kind} (dtype {dtype}), not real numbers.",
            _kind_fix(kind, name), labels, rows)
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.asarray(series, dtype=object)
    kinds = [_value_kind(v) for v in values]
    odd = np.flatnonzero(np.array([k is not None for k in kinds], dtype=bool))
    if len(odd):
        kind = kinds[odd[0]]
        examples = ", ".join(repr(values[p]) for p in odd[:3])
        raise ctx.fail(f"column {name!r} holds {kind}, not real numbers (e.g. {examples}).",
                       _kind_fix(kind, name), labels, odd)
    try:
        coerced = pd.to_numeric(series, errors="coerce")
        out = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    except (OverflowError, TypeError, ValueError):  # a number beyond float64 (or an odd object)
        out = np.array([_as_float(v) for v in values], dtype=np.float64)
        coerced = pd.Series(out, index=series.index)
    bad = np.flatnonzero(np.asarray(coerced.isna() & series.notna()))
    if len(bad):
        examples = ", ".join(repr(series.iloc[p]) for p in bad[:3])
        raise ctx.fail(
            f"column {name!r} holds non-numeric values (e.g. {examples}).",
            f"df[{name!r}] = pd.to_numeric(df[{name!r}], errors='coerce'), then drop the NaN rows "
            f"with df = df.dropna(subset=[{name!r}])",
            labels, bad,
        )
    return out


def _not_a_number_kind(dtype: object) -> str | None:
    """What a column of this dtype holds when it is not real numbers (None: numbers or text)."""
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamps"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "durations (timedeltas)"
    if isinstance(dtype, pd.PeriodDtype):
        return "periods"
    if isinstance(dtype, pd.IntervalDtype):
        return "intervals"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex numbers"
    if isinstance(dtype, pd.SparseDtype):
        return _not_a_number_kind(dtype.subtype)
    return None


def _value_kind(value: object) -> str | None:
    """What one value of an object column is, when it is not a real number or text."""
    if isinstance(value, bool | np.bool_):
        return "booleans"
    if isinstance(value, _dt.datetime | _dt.date | np.datetime64):
        return "timestamps" if value is not pd.NaT else None
    if isinstance(value, _dt.timedelta | np.timedelta64):
        return "durations (timedeltas)"
    if isinstance(value, complex | np.complexfloating):
        return "complex numbers"
    return None


def _kind_fix(kind: str, name: object) -> str:
    if kind == "complex numbers":
        return (f"give real numbers: df[{name!r}] = np.real(df[{name!r}]) if the imaginary parts are noise, "
                f"or check that {name!r} is the column you meant")
    return (f"check that {name!r} is the column you meant: it holds {kind}, the prices are elsewhere "
            "(rename the columns, e.g. df = df.rename(columns={...}))")


def _as_float(value: object) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (OverflowError, TypeError, ValueError):
        return math.nan if not isinstance(value, int) else (math.inf if value > 0 else -math.inf)
    return f


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
        Text dates are read in one format when one format reads them all (month first
        when ambiguous, day first when some value only reads day first, e.g.
        ``13/01/2020``; see :func:`parse_stamps`); a column of mixed formats in which
        some dates only read day first and others read either way is refused.
        Timestamps of different zones in one column (offsets that change with DST,
        naive values next to aware ones) are each read by the rule of
        :mod:`rustybt_nb.data.times`: an aware value as given, a naive one as local time
        (``tz`` on minute bars; the date as written on daily bars).
        Column names are matched case-insensitively. ``open, high, low, close`` are
        required, except that a frame whose only price column is ``close`` or ``price``
        (or, failing both, ``adj close``) is accepted as close-only data: open, high and
        low are set to the close (flat bars, ``attrs['close_only']``). ``adj close`` is
        otherwise ignored (it is not interchangeable with an unadjusted close). A
        ``price`` column next to ``close`` is dropped: the store derives ``price`` itself.
        Without a ``volume`` column volume is NaN and ``attrs['has_volume']`` is False.
        ``attrs['naive_minutes']`` tells that minute timestamps were tz-naive (read in ``tz``);
        ``attrs['midnights']`` that minute bars were asked for timestamps that are all midnights.
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

        Prices, volume and numeric extra columns must hold real numbers: a column of
        timestamps, durations, periods, intervals, booleans or complex numbers is refused
        (naming the column and the rows), never cast.
    _row_numbers, _symbol_col:
        Internal: used by the loaders so that messages about one asset of a long
        multi-asset frame quote row numbers of the whole frame and sort/dedupe fixes
        that include the symbol column.

    Raises
    ------
    DataValidationError
        Empty frame; missing columns; unparseable or non-datetime index; non-numeric
        OHLCV values (also timestamps, durations, complex numbers); complex extra columns;
        NaN/inf prices; non-positive prices; ``high < low``; ``high`` below the open or close,
        ``low`` above them; negative or NaN volume in a volume column;
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
    stamps, _ = _timestamps(df, ctx)
    raw_idx = stamps.idx
    freq = frequency or infer_frequency(stamps)
    naive_minutes = freq == "minute" and (raw_idx.tz is None or stamps.naive is not None)
    idx = _localize(stamps, freq, tz, ctx)
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
        if _not_a_number_kind(s.dtype) is not None:  # complex numbers: refused, not cut to their real part
            _numeric(s, col, labels, ctx)
        extra_cols[key] = s.to_numpy(dtype=np.float64, na_value=np.nan)

    # -- timestamp order (after the daily normalisation, which can create duplicates)
    ivals = idx.asi8
    if len(ivals) > 1:
        down = np.flatnonzero(ivals[1:] < ivals[:-1]) + 1
        if len(down):
            mixed = "" if stamps.naive is None or freq != "minute" else (
                f" The timestamps mix tz-naive and tz-aware values: the naive ones are read as "
                f"{tz or 'America/New_York'} time (tz=...), the aware ones as given; give every value "
                "its UTC offset if that is not what they mean.")
            example = stamps.read_month_first()
            if example is not None:
                mixed += (f" Dates such as {example!r} read either way and are read month first; if they are "
                          "day first, parse them yourself with pd.to_datetime(..., dayfirst=True) (for a CSV: "
                          "read_kwargs={'parse_dates': [<the date column>], 'dayfirst': True}).")
            raise ctx.fail(
                f"timestamps are not sorted ascending ({len(down)} row(s) earlier than the row before).{mixed}",
                ctx.sort_fix(), labels, down,
            )
        dup = np.flatnonzero(idx.duplicated(keep=False))
        if len(dup):
            extra = " after rounding to dates for daily data" if freq == "daily" and \
                infer_frequency(stamps) == "minute" else ""
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
        "midnights": frequency == "minute" and _all_midnights(stamps),
    }
    return out
