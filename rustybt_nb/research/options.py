"""The arguments of the research calls: which are backtest settings, and the check of the
options given to ``Backtest.sweep`` / ``Backtest.walk_forward`` (of the package it imports
only ``errors``, so ``Backtest`` can use it without an import circle)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["SETTINGS", "checked_options"]

#: The keyword arguments of ``Backtest`` (and so of ``sweep(...)`` / ``walk_forward(...)``).
SETTINGS = ("data", "start", "end", "capital_base", "data_frequency", "fill_model", "trail_reference", "same_bar",
            "slippage", "commission", "symbols", "max_leverage", "check_lookahead", "initialize", "handle_data",
            "before_trading_start", "analyze", "on_order_event", "on_trade")

_INTERNAL = ("backtest", "grid", "window", "shared", "label")


def checked_options(run: Callable[..., Any], options: dict[str, Any], method: str) -> dict[str, Any]:
    """``options`` of ``Backtest.<method>(grid, **options)``, refused with the fix when one
    is not an option of ``run`` (a backtest setting given to the method instead of to the
    ``Backtest``, or a misspelling)."""
    from ..errors import did_you_mean

    known = [p for p in inspect.signature(run).parameters if p not in _INTERNAL]
    for name in options:
        if name in known:
            continue
        if name in SETTINGS:
            fix = (f"`{name}` is a setting of the Backtest, not of .{method}(): give it to Backtest(..., {name}=...)"
                   + ("; for another span of the same bars, Backtest(...).between(start, end)."
                      f"{method}(grid, ...)" if name in ("start", "end") else ""))
            raise TypeError(fix)
        raise TypeError(f"Backtest.{method}() got an unexpected argument {name!r}; its options are "
                        f"{', '.join(known)}.{did_you_mean(name, known)}")
    return options
