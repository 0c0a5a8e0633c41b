"""rustybt_nb — a Jupyter-native, event-driven backtester with full order management.

``import rustybt_nb`` is cheap: the engine (and pandas) load on first use of a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "TradingAlgorithm": ("rustybt_nb.algorithm", "TradingAlgorithm"),
    "Param": ("rustybt_nb.algorithm", "Param"),
    "Backtest": ("rustybt_nb.backtest", "Backtest"),
    "run_algorithm": ("rustybt_nb.backtest", "run_algorithm"),
    "diff": ("rustybt_nb.comparison", "diff"),
    "ResultDiff": ("rustybt_nb.comparison", "ResultDiff"),
    "BacktestResult": ("rustybt_nb.results", "BacktestResult"),
    "load_sample": ("rustybt_nb.data", "load_sample"),
    "from_frame": ("rustybt_nb.data", "from_frame"),
    "setup_notebook": ("rustybt_nb.analytics.setup", "setup_notebook"),
    "load_ipython_extension": ("rustybt_nb.analytics", "load_ipython_extension"),
    "LookAheadError": ("rustybt_nb.errors", "LookAheadError"),
    "IndicatorError": ("rustybt_nb.errors", "IndicatorError"),
}

__all__ = [*_LAZY, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .algorithm import Param, TradingAlgorithm  # noqa: F401
    from .analytics import load_ipython_extension  # noqa: F401
    from .analytics.setup import setup_notebook  # noqa: F401
    from .backtest import Backtest, run_algorithm  # noqa: F401
    from .comparison import ResultDiff, diff  # noqa: F401
    from .data import from_frame, load_sample  # noqa: F401
    from .errors import IndicatorError, LookAheadError  # noqa: F401
    from .results import BacktestResult  # noqa: F401


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rustybt_nb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
