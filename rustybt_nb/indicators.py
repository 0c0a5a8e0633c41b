"""Indicators declared once per run and read per bar.

A strategy declares an indicator in ``initialize``::

    self.fast = self.indicator(sma, "close", n=self.params.fast)

``sma`` is any vectorised function: it receives one float64 numpy array per input (a
field of the bars such as ``'close'``, another indicator, or an array given as is) and
returns one array the length of the asset's bars, or several (a tuple, a 2-D array, a
DataFrame) for an indicator with several outputs. It runs once per run and asset over
the asset's whole bar history (so its warm-up uses bars before the run's ``start``); the
strategy then reads it at the cost of a plain field read: ``data.current(asset, name)``,
``data.history(asset, name, n, ...)``, or the returned :class:`Indicator` handle
(``ind[-1]`` is the value at the current bar, ``ind[-2]`` the one before).

``plot=`` says how ``result.plot()`` draws it: ``'overlay'`` on the price, ``'panel'``
in a row of its own below, ``'none'`` not at all, or None (default): on the price when
every value lies within half the lowest low and twice the highest high of the asset over
the run (averages, bands, trailing levels), else in the row below (oscillators).

Assumption the engine cannot see: a value at bar t depends only on bars up to t. A
function that looks ahead (a centred window, ``shift(-1)``) would leak the future into
the backtest; ``check_lookahead=True`` (a ``Backtest`` / ``run_algorithm`` setting)
recomputes every indicator on truncated prefixes of the bars and raises
:class:`~rustybt_nb.errors.LookAheadError` naming the indicator and the first bar whose
value changes when the bars after it are removed.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .assets import Asset
from .errors import IndicatorError, LookAheadError, did_you_mean

# fractions of the run's bars at which the look-ahead check cuts the data
LOOKAHEAD_CUTS = (0.1, 0.35, 0.6, 0.85)


class Indicator:
    """What ``indicator()`` returns: the name to read it by and, for reads in Python,
    ``ind[-1]`` (the current bar), ``ind[-k]`` (k - 1 bars ago; NaN before the first
    bar), ``ind[asset, -1]`` when it was computed for several assets, and
    ``float(ind)`` (the current value of a one-asset indicator)."""

    __slots__ = ("_column", "_columns", "_data", "_only", "assets", "name")

    def __init__(self, name: str, columns: dict[Asset, np.ndarray], data: Any) -> None:
        from array import array

        self.name = name
        self.assets = list(columns)
        self._columns = columns
        self._data = data
        self._only = self.assets[0] if len(self.assets) == 1 else None
        # one asset: its values as an array('d') plus a NaN read at index -1 (a read from
        # before the first bar), so ind[-k] is one addition and one index
        self._column = None
        if self._only is not None:
            self._column = array("d", columns[self._only].tobytes())
            self._column.append(float("nan"))

    def __getitem__(self, key: Any) -> float:
        column = self._column
        if column is not None:  # one asset: ind[-k], the common read, without a type test first
            try:
                if key < 0:
                    i = self._data._i + 1 + key
                    # (before the first bar: index -1, the NaN; written key - key - 1 so that a
                    # key that is not an integer fails there too)
                    return column[i if i >= 0 else key - key - 1]
            except TypeError:  # not a number (a tuple), or not an integer (column[-1.5]): _read says why
                pass
        return self._read(key)

    def _read(self, key: Any) -> float:
        if isinstance(key, tuple) and len(key) == 2:
            asset, ago = key
            column = self._columns.get(asset)
            if column is None:
                raise KeyError(f"indicator {self.name!r} is not computed for {asset!r}; it is for "
                               f"{[str(a) for a in self.assets]}")
        else:
            if self._only is None:
                raise IndexError(f"indicator {self.name!r} is computed for several assets "
                                 f"({len(self.assets)}): say which, e.g. {self.name}[asset, -1]")
            column, ago = self._columns[self._only], key
        if isinstance(ago, np.integer):
            ago = int(ago)
        if type(ago) is not int or ago >= 0:
            raise IndexError(f"indicator {self.name!r}: read it with a negative bar offset (ind[-1] is the current "
                             f"bar, ind[-2] the one before), got {ago!r}; there is no look into later bars")
        i = self._data._i + 1 + ago
        return float(column[i]) if i >= 0 else float("nan")

    def __float__(self) -> float:
        return self[-1]

    def __repr__(self) -> str:
        return f"Indicator({self.name!r}, assets={[str(a) for a in self.assets]})"


class IndicatorSpec:
    """How one output of an indicator was made (for the look-ahead check and the views)."""

    __slots__ = ("columns", "func", "inputs", "kwargs", "name", "output", "outputs", "plot")

    def __init__(self, name: str, func: Callable[..., Any], inputs: tuple[Any, ...], kwargs: dict[str, Any],
                 output: int, outputs: int, columns: dict[Asset, np.ndarray], plot: str = "auto") -> None:
        self.name, self.func, self.inputs, self.kwargs = name, func, inputs, kwargs
        self.output, self.outputs, self.columns, self.plot = output, outputs, columns, plot


PLOT_CHOICES = ("auto", "overlay", "panel", "none")


def checked_plot(plot: Any) -> str:
    """The ``plot=`` of ``indicator()``: how ``result.plot()`` draws it."""
    if plot is None:
        return "auto"
    if plot is False:
        return "none"
    if plot not in PLOT_CHOICES:
        raise IndicatorError(f"`plot`={plot!r}: use 'overlay' (on the price), 'panel' (a row of its own), "
                             "'none' (not drawn) or None (overlay when its values are in the price's range)")
    return plot


def overlays_price(values: np.ndarray, low: float, high: float) -> bool:
    """The automatic choice: an indicator goes on the price panel when every finite value
    lies within half the lowest low and twice the highest high of its asset over the run
    (moving averages, bands, stops), else on a panel of its own (oscillators, volumes)."""
    finite = values[np.isfinite(values)]
    if not len(finite) or not (high == high and low == low):
        return False
    return bool(finite.min() >= 0.5 * low and finite.max() <= 2.0 * high)


def compute(func: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict[str, Any], what: str,
            n: int) -> list[np.ndarray]:
    """``func(*arrays, **kwargs)`` as a list of float64 arrays of length ``n`` (one per
    output); clear errors for anything else."""
    return split_outputs(call(func, arrays, kwargs, what), what, n)


def call(func: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict[str, Any], what: str) -> Any:
    """``func(*arrays, **kwargs)``; an exception it raises becomes an :class:`IndicatorError` naming ``what``."""
    try:
        return func(*arrays, **kwargs)
    except Exception as exc:
        raise IndicatorError(f"{what}: the function raised {type(exc).__name__}: {exc}") from exc


def split_outputs(out: Any, what: str, n: int) -> list[np.ndarray]:
    """An indicator function's result as one float64 array per output."""
    import pandas as pd

    if isinstance(out, pd.DataFrame):
        parts = [out[c].to_numpy() for c in out.columns]
    elif isinstance(out, pd.Series):
        parts = [out.to_numpy()]
    elif isinstance(out, (tuple, list)) and out and all(hasattr(p, "__len__") for p in out):
        parts = [p.to_numpy() if isinstance(p, pd.Series) else p for p in out]
    else:
        arr = np.asarray(out) if out is not None else None
        if arr is not None and arr.ndim == 2:
            parts = [arr[:, k] for k in range(arr.shape[1])] if arr.shape[0] == n else list(arr)
        else:
            parts = [arr]
    result = []
    for k, part in enumerate(parts):
        label = what if len(parts) == 1 else f"{what}, output {k}"
        arr = None if part is None else np.asarray(part)
        if arr is None or arr.ndim != 1:
            shape = "None" if arr is None else f"shape {arr.shape}"
            raise IndicatorError(f"{label}: the function must return an array of one value per bar ({n}), got "
                                 f"{type(out).__name__} ({shape})")
        if arr.dtype.kind not in "biuf":
            raise IndicatorError(f"{label}: the values must be numbers, got dtype {arr.dtype} (e.g. {arr[:3]!r}); "
                                 "return floats (NaN where there is no value yet)")
        if len(arr) != n:
            raise IndicatorError(f"{label}: the function returned {len(arr)} values for {n} bars; an indicator "
                                 "has one value per bar of the asset (NaN during its warm-up), e.g. keep pandas' "
                                 "rolling(...) output as is instead of dropping its first NaNs")
        result.append(np.ascontiguousarray(arr, dtype=np.float64))
    return result


def output_names(name: str | Sequence[str] | None, func: Callable[..., Any], k: int, labels: list[Any] | None
                 ) -> list[str]:
    """The names of an indicator's ``k`` outputs: ``name`` (a str for one output; a
    prefix or a list of ``k`` names for several), else the function's name."""
    if name is not None and not isinstance(name, str):
        names = list(name)
        if len(names) != k or not all(isinstance(x, str) and x for x in names):
            raise IndicatorError(f"`name`={name!r}: give one name per output ({k}) as text, or one prefix")
        return names
    base = name or getattr(func, "__name__", None) or "indicator"
    if base == "<lambda>":
        raise IndicatorError("a lambda has no name to read the indicator by: pass name='...'")
    if k == 1:
        return [base]
    suffixes = [str(x) for x in labels] if labels and len(labels) == k else [str(j) for j in range(k)]
    return [f"{base}_{s}" for s in suffixes]


def first_difference(full: np.ndarray, part: np.ndarray) -> int | None:
    """Index of the first value of ``part`` that differs from ``full`` (NaN equals NaN;
    a relative tolerance of 1e-9 for the float noise of recomputation), or None."""
    head = full[: len(part)]
    same = np.isclose(head, part, rtol=1e-9, atol=0.0, equal_nan=True)
    if same.all():
        return None
    return int(np.argmin(same))


def check_lookahead(specs: list[IndicatorSpec], data_columns: Callable[[Asset, Any], np.ndarray],
                    cuts: list[int], label_of: Callable[[int], str]) -> None:
    """Recompute each indicator on the bars up to each cut and compare with its values.

    ``data_columns(asset, input)`` gives the input column (a field, an indicator's full
    values, or a given array) of an asset over every bar. Raises
    :class:`LookAheadError` at the first indicator whose values change."""
    for spec in specs:
        if spec.output:  # (one computation checks every output)
            continue
        for asset in spec.columns:
            full_inputs = [data_columns(asset, x) for x in spec.inputs]
            for cut in cuts:
                prefix = [np.asarray(x)[: cut + 1] for x in full_inputs]
                what = f"indicator {spec.name!r} of {asset}"
                parts = compute(spec.func, prefix, spec.kwargs, what, cut + 1)
                outputs = spec_outputs(specs, spec)
                for out_spec, part in zip(outputs, parts):
                    bad = first_difference(out_spec.columns[asset], part)
                    if bad is not None:
                        full, cut_value = out_spec.columns[asset][bad], part[bad]
                        raise LookAheadError(
                            f"indicator {out_spec.name!r} of {asset} looks ahead: its value at {label_of(bad)} (bar "
                            f"{bad}) is {_shown(full)} with all the bars but {_shown(cut_value)} when the "
                            f"bars after {label_of(cut)} are removed; a value at a bar must depend only on bars up to "
                            "it (no centred windows, no shift(-k)). Fix the function, or compute it on the past only."
                        )
    return None


def _shown(value: float) -> str:
    return "NaN" if value != value else f"{value:g}"


def spec_outputs(specs: list[IndicatorSpec], first: IndicatorSpec) -> list[IndicatorSpec]:
    """The specs of every output made by the same call as ``first``."""
    start = specs.index(first)
    return specs[start:start + first.outputs]


_STATELESS = (types.FunctionType, types.BuiltinFunctionType, np.ufunc)


class IndicatorCache:
    """Indicator outputs kept between the runs of one sweep batch (see
    ``Backtest.reusing_indicators``): a run that declares the same function on the same
    input columns with equal arguments reuses the outputs instead of calling the function
    again (a 10 x 10 grid of two moving averages computes 20 of them, not 200).

    Assumes what ``indicator()`` documents: the function's outputs depend only on its
    inputs and arguments. Inputs are matched by identity (the data's own columns, or the
    outputs of a cached indicator, which live as long as the cache; an array the strategy
    passes matches only itself); a call with an argument that cannot be hashed is made
    every time. At most ``max_bytes`` of outputs are kept (later ones are computed, not
    kept)."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self._entries: dict[Any, tuple[list[np.ndarray], Any]] = {}

    def key(self, func: Callable[..., Any], columns: list[np.ndarray], kwargs: dict[str, Any]) -> Any:
        """The cache key of a call, or None when it cannot be cached: only plain and
        built-in functions and numpy ufuncs are (a bound method or a callable object carries
        state, e.g. ``self.params``, that may differ between runs while it compares equal)."""
        if type(func) not in _STATELESS:
            return None
        try:
            # (the type with the value: 1, 1.0 and True are equal keys but not equal arguments)
            key = (func, tuple(map(id, columns)), tuple(sorted((k, type(v), v) for k, v in kwargs.items())))
            hash(key)
        except TypeError:
            return None
        return key

    def get(self, key: Any, columns: list[np.ndarray]) -> Any:
        entry = self._entries.get(key)
        if entry is None or any(a is not b for a, b in zip(entry[0], columns)):
            return None
        self.hits += 1
        return entry[1]

    def put(self, key: Any, columns: list[np.ndarray], made: tuple[list[np.ndarray], Any]) -> None:
        size = sum(part.nbytes for part in made[0])
        if self.nbytes + size <= self.max_bytes:
            self._entries[key] = (list(columns), made)  # (the inputs kept alive: their ids stay theirs)
            self.nbytes += size


# ------------------------------------------------------------------ a run's indicators
def declare(sim: Any, func: Any, inputs: tuple[Any, ...], name: Any, asset: Any, kwargs: dict[str, Any],
            plot: Any) -> Any:
    """Compute an indicator of the simulation ``sim`` over every bar of its asset(s) and
    make each output a field of the run (``BarData.add_field``); its handle(s)."""
    if not callable(func):
        raise IndicatorError(f"`func` must be a function of arrays (e.g. an SMA), got {func!r}")
    plot = checked_plot(plot)
    data, store = sim.data, sim.store
    assets = list(store.assets) if asset is None else \
        [store.lookup(a) for a in (asset if isinstance(asset, (list, tuple)) else [asset])]
    n = len(store.index)
    label = name if isinstance(name, str) else getattr(func, "__name__", "indicator")
    outputs: list[list[np.ndarray]] = []
    labels: list[Any] | None = None
    cache = sim.indicator_cache
    for a in assets:
        what = f"indicator {label!r} of {a}"
        columns = [input_column(data, a, x, k, label) for k, x in enumerate(inputs)]
        key = cache.key(func, columns, kwargs) if cache is not None else None
        made = cache.get(key, columns) if key is not None else None
        if made is None:
            raw = call(func, columns, kwargs, what)
            made = split_outputs(raw, what, n), list(raw.columns) if hasattr(raw, "columns") else None
            if key is not None:
                cache.put(key, columns, made)
        parts, raw_labels = made
        if labels is None:
            labels = raw_labels
        outputs.append(parts)
    k = len(outputs[0])
    names = output_names(name, func, k, labels)
    for out_name in names:
        if out_name in data._fields:  # (the data's fields, last_traded and this run's indicators)
            raise IndicatorError(f"indicator name {out_name!r} is taken (a field of the data or an indicator "
                                 f"of this run: {list(data.fields)}); pass name='...'")
    handles = []
    for j, out_name in enumerate(names):
        columns = {a: outputs[m][j] for m, a in enumerate(assets)}
        data.add_field(out_name, columns)
        sim.indicators.append(IndicatorSpec(out_name, func, inputs, kwargs, j, k, columns, plot))
        handles.append(Indicator(out_name, columns, data))
    return handles[0] if k == 1 else tuple(handles)


def input_column(data: Any, asset: Asset, x: Any, k: int, label: str) -> np.ndarray:
    """Input ``k`` of indicator ``label`` for ``asset``: a field of the run, another
    indicator, or an array of one value per bar."""
    if isinstance(x, Indicator):
        column = x._columns.get(asset)
        if column is None:
            raise IndicatorError(f"indicator {label!r}: input {k} is indicator {x.name!r}, which is not computed "
                                 f"for {asset}")
        return column
    if isinstance(x, str):
        cols = data._arrays[asset]
        if x not in cols:
            fields = list(data.fields)
            raise IndicatorError(f"indicator {label!r}: input {k} {x!r} is not a field; fields are {fields}."
                                 f"{did_you_mean(x, fields)}")
        return cols[x]
    arr = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    n = len(data._store.index)
    if arr.ndim != 1 or len(arr) != n or arr.dtype.kind not in "biuf":
        raise IndicatorError(f"indicator {label!r}: input {k} must be a field name, an indicator or an array of "
                             f"{n} numbers (one per bar of the data), got {type(x).__name__} "
                             f"{'of shape ' + str(arr.shape) if arr.ndim else ''}")
    return arr.astype(np.float64, copy=False)


def check_run(sim: Any) -> None:
    """:func:`check_lookahead` for the indicators of the simulation ``sim``, cut at
    :data:`LOOKAHEAD_CUTS` of its bars; bars named by date on daily data, by the
    exchange's time on minute data."""
    if not sim.indicators:
        return
    store, index = sim.store, sim.store.index
    span = sim.hi - sim.lo
    cuts = sorted({sim.lo + int(span * f) for f in LOOKAHEAD_CUTS} - {sim.hi})

    def label(i: int) -> str:
        if store.frequency == "daily":
            return str(index[i].date())
        return str(index[i].tz_convert(store.tz)) if index.tz is not None else str(index[i])

    check_lookahead(sim.indicators, lambda a, x: input_column(sim.data, a, x, 0, ""), cuts, label)
