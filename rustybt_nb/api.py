"""Zipline-style free functions bound to the running algorithm.

Inside a running backtest (``initialize``, ``handle_data``, scheduled functions,
``before_trading_start``), ``from rustybt_nb.api import order, symbol, ...`` calls the
running algorithm's methods. Outside a run they raise a clear error.
"""

from __future__ import annotations

import functools
from typing import Any

from .algorithm import TradingAlgorithm
from .errors import AlgorithmError
from .scheduling import date_rules, time_rules

_running: list[TradingAlgorithm] = []


def _push(algo: TradingAlgorithm) -> None:
    _running.append(algo)


def _pop(algo: TradingAlgorithm) -> None:
    if _running and _running[-1] is algo:
        _running.pop()


def get_algorithm() -> TradingAlgorithm:
    """The algorithm whose backtest is running now."""
    if not _running:
        raise AlgorithmError(
            "rustybt_nb.api functions work only while a backtest runs: call them from initialize/handle_data/"
            "scheduled functions of a strategy passed to run_algorithm(...) or a %%backtest cell"
        )
    return _running[-1]


def _bind(name: str):
    method = getattr(TradingAlgorithm, name)

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(get_algorithm(), name)(*args, **kwargs)

    call.__qualname__ = name
    return call


order = _bind("order")
order_value = _bind("order_value")
order_percent = _bind("order_percent")
order_target = _bind("order_target")
order_target_value = _bind("order_target_value")
order_target_percent = _bind("order_target_percent")
get_open_orders = _bind("get_open_orders")
get_order = _bind("get_order")
cancel_order = _bind("cancel_order")
modify_order = _bind("modify_order")
link_oco = _bind("link_oco")
symbol = _bind("symbol")
symbols = _bind("symbols")
sid = _bind("sid")
record = _bind("record")
schedule_function = _bind("schedule_function")
get_datetime = _bind("get_datetime")
set_slippage = _bind("set_slippage")
set_commission = _bind("set_commission")

__all__ = [
    "order", "order_value", "order_percent", "order_target", "order_target_value", "order_target_percent",
    "get_open_orders", "get_order", "cancel_order", "modify_order", "link_oco", "symbol", "symbols", "sid",
    "record", "schedule_function", "get_datetime", "set_slippage", "set_commission", "date_rules", "time_rules",
    "get_algorithm",
]
