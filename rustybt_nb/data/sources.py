"""Whatever a backtest is given as ``data=`` -> a :class:`BarStore`: the one dispatcher.

``run_algorithm``, :class:`rustybt_nb.Backtest` and ``%%backtest`` all load their bars
through :func:`open_data`; :func:`as_bar_store` is the same plus a cut to ``start``/``end``.

Accepted: a :class:`BarStore` (as is); a DataFrame or Series (:func:`from_frame`); a
``{symbol: DataFrame}`` dict (:func:`from_frames`); a path (str or ``os.PathLike``) ending
in ``.csv`` (also ``.csv.gz`` ...) or ``.parquet``/``.pq``; a sample name or a list of
sample names (:func:`~rustybt_nb.data.samples.load_sample`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import did_you_mean
from .bar_store import BarStore
from .loaders import CSV_SUFFIXES, PARQUET_SUFFIXES, from_frame, from_frames, load_csv, load_parquet
from .samples import load_sample
from .validation import normalize_frequency

__all__ = ["as_bar_store", "open_data"]


def open_data(data: Any, *, frequency: str | None = None, symbols: str | Sequence[str] | None = None,
              start: Any = None, end: Any = None) -> BarStore:
    """The bars ``data`` names (see the module docstring), not cut to ``start``/``end``:
    a backtest simulates from ``start`` but its strategy's ``data.history`` may look
    further back. The exception is minute bars of the samples, which are synthesised
    for the sessions from ``start`` to ``end`` only (the last 12 months without them).

    ``frequency``: ``'daily'``/``'minute'`` (aliases such as ``'1m'`` accepted) or None
    for the data's own; a store of the other frequency raises, and so does a frame, dict
    or file of daily bars (every timestamp a midnight) given ``'minute'``. ``'daily'`` on
    bars stamped with a time of day reads them as session dates (daily bars stamped at
    the close); several bars on one day are then refused as duplicates.
    ``symbols``: with sample names, the samples to load instead; with a frame or file,
    the symbol(s) to keep (or, for a single-asset frame, its name); with a dict or a
    store, the symbols to keep.

    Raises ``TypeError`` for a ``data`` of none of the accepted kinds and ``ValueError``
    (or :class:`~rustybt_nb.errors.DataValidationError`) for data that cannot be loaded,
    each naming the argument and the fix.
    """
    freq = normalize_frequency(frequency)
    wanted = [symbols] if isinstance(symbols, str) else (list(symbols) if symbols is not None else None)
    if isinstance(data, BarStore):
        if freq is not None and data.frequency != freq:
            raise ValueError(
                f"`data` is a {data.frequency} BarStore but frequency={freq!r} was asked for; run with "
                f"data_frequency={data.frequency!r} (the data's own) or build a {freq} store")
        return data.select(wanted) if wanted else data
    if isinstance(data, pd.DataFrame | pd.Series):
        return _own_frequency(from_frame(data, _frame_symbol(wanted), frequency=freq), "a DataFrame")
    if isinstance(data, Mapping):
        return _own_frequency(from_frames(_subset(data, wanted) if wanted else data, frequency=freq),
                              "a dict of DataFrames")
    if isinstance(data, str | os.PathLike) and _is_file_name(data):
        path = os.fspath(data)
        load = load_csv if str(path).lower().endswith(CSV_SUFFIXES) else load_parquet
        return _own_frequency(load(path, _frame_symbol(wanted), frequency=freq), f"the file {path!r}")
    if isinstance(data, str) or (isinstance(data, list | tuple) and data and all(isinstance(x, str) for x in data)):
        names = wanted or ([data] if isinstance(data, str) else list(data))
        if (freq or "daily") == "minute":
            return load_sample(names, frequency="minute", start=start, end=end)
        return load_sample(names, frequency="daily")
    raise TypeError(
        f"`data` must be a BarStore, a pandas DataFrame, a dict of {{symbol: DataFrame}}, a path to a "
        f".csv or .parquet file, or a sample name such as 'AAPL' or 'TestBrackets' (see "
        f"rustybt_nb.data.list_samples()); got {type(data).__name__}: {_short_repr(data)}")


def as_bar_store(data: Any, *, frequency: str | None = None, symbol: str | Sequence[str] | None = None,
                 start: Any = None, end: Any = None) -> BarStore:
    """:func:`open_data` (``symbol`` is its ``symbols``), cut to the bars from ``start`` to
    ``end`` (inclusive; times as in :mod:`rustybt_nb.data.times`)."""
    return open_data(data, frequency=frequency, symbols=symbol, start=start, end=end).slice(start, end)


def _own_frequency(store: BarStore, what: str) -> BarStore:
    """Refuse daily bars read as minute bars because a minute frequency was asked for:
    a store of the other frequency is refused the same way (``data.frequency != freq``)."""
    if store.meta.get("midnight_minutes"):
        raise ValueError(
            f"`data` ({what}) holds daily bars (every timestamp is a midnight) but "
            f"frequency='minute' was asked for; run with data_frequency='daily' (the data's own), or give "
            "minute bars stamped with their time of day (the end of each bar, e.g. 09:31)")
    return store


def _is_file_name(data: str | os.PathLike[str]) -> bool:
    """A path to load (rather than a sample name); refuses other file types."""
    text = os.fspath(data)
    low = str(text).lower()
    if low.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        return True
    if isinstance(data, os.PathLike) or "/" in text or os.sep in text or os.path.isfile(text):
        raise ValueError(
            f"`data`={text!r} looks like a file, but only CSV ({', '.join(CSV_SUFFIXES)}) and "
            f"Parquet ({', '.join(PARQUET_SUFFIXES)}) files can be loaded; read it with pandas and "
            "pass the DataFrame instead")
    return False


def _frame_symbol(wanted: list[str] | None) -> str | list[str] | None:
    if not wanted:
        return None
    return wanted[0] if len(wanted) == 1 else wanted


def _subset(frames: Mapping[Any, Any], wanted: list[str]) -> dict[Any, Any]:
    keys = [str(k) for k in frames]
    missing = [s for s in wanted if s not in keys]
    if missing:
        raise ValueError(f"`symbols`: {missing[0]!r} is not in the data; it has {', '.join(keys)}."
                         f"{did_you_mean(missing[0], keys)}")
    by_name = {str(k): k for k in frames}
    return {by_name[s]: frames[by_name[s]] for s in wanted}


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
