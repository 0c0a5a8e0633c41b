"""The research layer: parameter sweeps and walk-forward optimisation, serial or on Dask.

- :func:`sweep` -- every combination of a grid (or a random sample), every metric per
  combination, errors as rows, a progress bar, Parquet store and resume
  (:class:`SweepResult`: ``table``, ``best``, ``heatmap``, ``result``, ``tweak``,
  ``deflated_sharpe``);
- :func:`walk_forward` -- optimise on a training window, test on the next, fold after fold
  (:class:`WalkForwardResult`: ``folds``, ``equity``, ``efficiency``, ``plot``).

Both run through one :class:`~rustybt_nb.Backtest` (also ``Backtest.sweep`` /
``Backtest.walk_forward``). Dask is imported only when a sweep runs on a cluster; the
engine never imports this package. Names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "sweep": ("rustybt_nb.research.api", "sweep"),
    "walk_forward": ("rustybt_nb.research.api", "walk_forward"),
    "SweepResult": ("rustybt_nb.research.sweeps", "SweepResult"),
    "WalkForwardResult": ("rustybt_nb.research.folds", "WalkForwardResult"),
    "deflated_sharpe": ("rustybt_nb.research.sweeps", "deflated_sharpe"),
    "Grid": ("rustybt_nb.research.grid", "Grid"),
}

__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .api import sweep, walk_forward  # noqa: F401
    from .folds import WalkForwardResult  # noqa: F401
    from .grid import Grid  # noqa: F401
    from .sweeps import SweepResult, deflated_sharpe  # noqa: F401


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rustybt_nb.research' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
