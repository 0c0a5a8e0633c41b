"""Parameter grids: combinations numbered in grid order and generated lazily.

A grid maps parameter names to the values to try (a list, a ``range``, a numpy array or a
single value). Float values are rounded to 12 significant digits, so ``np.arange(0.1, 1, 0.1)``
gives 0.3 and 0.8, not 0.30000000000000004 and 0.7999999999999999 (in the table, the
heatmap and what the strategy receives). Combination ``k`` is decoded from ``k`` itself (the last parameter varies
fastest), so a sweep never holds all combinations as objects: it holds numbers, and the
parameters of a row are rebuilt from its number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Grid", "combinations"]


class Grid:
    """The values of each parameter, in order; ``size`` combinations."""

    def __init__(self, grid: Mapping[str, Any]) -> None:
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError(f"`grid` must be a non-empty dict of parameter name -> values to try, e.g. "
                             f"{{'fast': [5, 10, 20], 'slow': range(30, 101, 10)}}; got {grid!r}")
        self.names: list[str] = []
        self.values: list[list[Any]] = []
        for name, values in grid.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"`grid` keys must be parameter names, got {name!r}")
            if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
                values = [values]  # one fixed value
            values = [_tidy(v.item() if isinstance(v, np.generic) else v) for v in values]
            if not values:
                raise ValueError(f"`grid[{name!r}]` is empty: give at least one value to try")
            self.names.append(name)
            self.values.append(values)
        self.size = math.prod(len(v) for v in self.values)

    def params(self, k: int) -> dict[str, Any]:
        """The parameters of combination ``k`` (0 <= k < size)."""
        out = {}
        for name, values in zip(reversed(self.names), reversed(self.values)):
            k, j = divmod(k, len(values))
            out[name] = values[j]
        return {name: out[name] for name in self.names}

    def columns(self, ks: np.ndarray) -> dict[str, list[Any]]:
        """The parameter values of combinations ``ks``, one list per parameter (decoded
        with array arithmetic, without building a dict per combination)."""
        out: dict[str, list[Any]] = {}
        stride = 1
        for name, values in zip(reversed(self.names), reversed(self.values)):
            picks = (ks // stride) % len(values)
            out[name] = [values[j] for j in picks.tolist()]
            stride *= len(values)
        return {name: out[name] for name in self.names}

    def __repr__(self) -> str:
        shape = " x ".join(f"{n}[{len(v)}]" for n, v in zip(self.names, self.values))
        return f"Grid({shape} = {self.size} combinations)"


def _tidy(value: Any) -> Any:
    """A float rounded to 12 significant digits (floating-point steps of ``np.arange`` /
    ``np.linspace`` leave noise in the last digits); anything else as it is."""
    if type(value) is float and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


def combinations(grid: Grid, *, constraint: Callable[[dict[str, Any]], Any] | None = None, method: str = "grid",
                 n_samples: int | None = None, seed: int | None = None) -> Iterator[int]:
    """The numbers of the combinations to run, lazily: every one (``method='grid'``) or
    ``n_samples`` drawn without replacement (``'random'``, reproducible with ``seed``),
    skipping those for which ``constraint(params)`` is false."""
    if method not in ("grid", "random"):
        raise ValueError(f"`method` must be 'grid' or 'random', got {method!r}")
    if method == "grid":
        if n_samples is not None:
            raise ValueError("`n_samples` is for method='random'; a grid sweep runs every combination")
        order: Any = range(grid.size)
        limit = grid.size
    else:
        if n_samples is None or isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"method='random' needs `n_samples`, a positive int (how many combinations to draw), "
                             f"got {n_samples!r}")
        order = np.random.default_rng(seed).permutation(grid.size)  # 8 bytes a combination
        limit = n_samples
    taken = 0
    for k in order:
        if taken >= limit:
            return
        k = int(k)
        if constraint is not None and not constraint(grid.params(k)):
            continue
        taken += 1
        yield k
