"""The notebook layer: setup, the ``%%backtest`` magic, rich display, figures and tables.

Start a notebook with::

    from rustybt_nb.analytics import setup_notebook
    setup_notebook()          # or: %load_ext rustybt_nb

Names (each loaded on first use, so importing this package is cheap):

- :func:`setup_notebook` -- magics, display formatters, plotly renderer, progress bars;
- :func:`load_ipython_extension` -- what ``%load_ext rustybt_nb`` runs;
- :func:`run_backtest_cell` -- the function behind ``%%backtest``;
- :func:`plot_result`, :func:`plot_order_timeline`, :func:`plot_trailing_stops` -- plotly
  figures of a result (also ``result.plot()``, ``result.plot_order_timeline()``,
  ``result.plot_trailing_stops()``);
- :func:`partial_fills`, :func:`partial_fill_table`, :func:`orders_table` -- tables
  (:func:`plot_partial_fills`: the partial-fill table as a plotly figure);
- :func:`tweak` -- a live panel that re-runs a backtest as its parameters move
  (:class:`TweakPanel`; also ``Backtest.tweak()`` and ``%%backtest --tweak``).

The engine never imports this package (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "setup_notebook": ("rustybt_nb.analytics.setup", "setup_notebook"),
    "SetupRecord": ("rustybt_nb.analytics.setup", "SetupRecord"),
    "run_backtest_cell": ("rustybt_nb.analytics.magics", "run_backtest_cell"),
    "BacktestMagics": ("rustybt_nb.analytics.magics", "BacktestMagics"),
    "display_result": ("rustybt_nb.analytics.display", "display_result"),
    "result_html": ("rustybt_nb.analytics.display", "result_html"),
    "order_html": ("rustybt_nb.analytics.display", "order_html"),
    "make_progress": ("rustybt_nb.analytics.progress", "make_progress"),
    "plot_result": ("rustybt_nb.analytics.equity", "plot_result"),
    "plot_order_timeline": ("rustybt_nb.analytics.timeline", "plot_order_timeline"),
    "plot_trailing_stops": ("rustybt_nb.analytics.trailing", "plot_trailing_stops"),
    "partial_fills": ("rustybt_nb.analytics.tables", "partial_fills"),
    "partial_fill_table": ("rustybt_nb.analytics.tables", "partial_fill_table"),
    "orders_table": ("rustybt_nb.analytics.tables", "orders_table"),
    "plot_partial_fills": ("rustybt_nb.analytics.tables", "plot_partial_fills"),
    "tweak": ("rustybt_nb.analytics.tweaking", "tweak"),
    "TweakPanel": ("rustybt_nb.analytics.tweak_panel", "TweakPanel"),
}

__all__ = [*_LAZY, "load_ipython_extension"]

if TYPE_CHECKING:  # pragma: no cover
    from .display import display_result, order_html, result_html  # noqa: F401
    from .equity import plot_result  # noqa: F401
    from .magics import BacktestMagics, run_backtest_cell  # noqa: F401
    from .progress import make_progress  # noqa: F401
    from .setup import SetupRecord, setup_notebook  # noqa: F401
    from .tables import orders_table, partial_fill_table, partial_fills, plot_partial_fills  # noqa: F401
    from .timeline import plot_order_timeline  # noqa: F401
    from .trailing import plot_trailing_stops  # noqa: F401
    from .tweak_panel import TweakPanel  # noqa: F401
    from .tweaking import tweak  # noqa: F401


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%%backtest`` / ``%backtest`` magics and the rich display of results
    and orders on ``ipython`` (``%load_ext rustybt_nb`` calls this)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rustybt_nb.analytics' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
