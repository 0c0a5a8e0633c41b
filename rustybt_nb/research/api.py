"""``sweep(...)`` and ``walk_forward(...)``: a :class:`~rustybt_nb.Backtest` and its
research run in one call (the same as ``Backtest(...).sweep(grid, ...)`` /
``.walk_forward(grid, ...)``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..backtest import Backtest
from .folds import WalkForwardResult, run_walk_forward
from .options import SETTINGS as _SETTINGS
from .sweeps import SweepResult, run_sweep

__all__ = ["sweep", "walk_forward"]

def sweep(strategy: Any, grid: Mapping[str, Any], *, maximize: str = "sharpe",
          constraint: Callable[[dict[str, Any]], Any] | None = None, method: str = "grid",
          n_samples: int | None = None, seed: int | None = None, client: Any = None,
          store: str | Path | None = None, resume: bool = False, progress: bool = True,
          **settings: Any) -> SweepResult:
    """Run ``strategy`` once per combination of ``grid`` and return every metric of every
    combination (:class:`~rustybt_nb.research.SweepResult`).

    ``grid`` maps parameter names to the values to try (lists, ranges); ``constraint(params)``
    returning false skips a combination (e.g. ``lambda p: p['fast'] < p['slow']``);
    ``method='random'`` draws ``n_samples`` combinations (reproducibly with ``seed``).
    ``client``: ``'serial'`` (this process), None (the current Dask client, else a local
    cluster started and closed here), a ``distributed.Client``, or a scheduler address.
    ``store``/``resume``: keep rows on disk as they finish and skip the stored ones. Other
    keyword arguments are the :class:`~rustybt_nb.Backtest` settings (``data``, ``start``,
    ``end``, ``capital_base`` ...)."""
    backtest = Backtest(strategy, **_settings(settings))
    return run_sweep(backtest, grid, maximize=maximize, constraint=constraint, method=method, n_samples=n_samples,
                     seed=seed, client=client, store=store, resume=resume, progress=progress)


def walk_forward(strategy: Any, grid: Mapping[str, Any], *, train: Any = "3Y", test: Any = "1Y",
                 anchored: bool = False, maximize: str = "sharpe",
                 constraint: Callable[[dict[str, Any]], Any] | None = None, method: str = "grid",
                 n_samples: int | None = None, seed: int | None = None, client: Any = None, progress: bool = True,
                 **settings: Any) -> WalkForwardResult:
    """Optimise ``grid`` on rolling (or ``anchored``) training windows of ``train`` and test
    the winner on the following ``test`` window, fold after fold
    (:class:`~rustybt_nb.research.WalkForwardResult`). Sweep options as in :func:`sweep`;
    other keyword arguments are the :class:`~rustybt_nb.Backtest` settings."""
    backtest = Backtest(strategy, **_settings(settings))
    return run_walk_forward(backtest, grid, train=train, test=test, anchored=anchored, maximize=maximize,
                            constraint=constraint, method=method, n_samples=n_samples, seed=seed, client=client,
                            progress=progress)


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in settings if k not in _SETTINGS]
    if unknown:
        from ..errors import did_you_mean

        raise TypeError(f"unexpected argument {unknown[0]!r}; the backtest settings are {', '.join(_SETTINGS)}."
                        f"{did_you_mean(unknown[0], _SETTINGS)} (parameters to try go in the grid)")
    return settings
