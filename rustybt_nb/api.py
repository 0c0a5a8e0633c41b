"""Zipline-style free functions bound to the running algorithm.

Inside a running backtest (``initialize``, ``handle_data``, scheduled functions,
``before_trading_start``), ``from rustybt_nb.api import order, symbol, ...`` calls the
running algorithm's methods (the algorithm module keeps which one that is:
:func:`rustybt_nb.algorithm.get_algorithm`). Outside a run they raise a clear error.
"""

from __future__ import annotations

import functools
from typing import Any

from .algorithm import TradingAlgorithm, get_algorithm
from .scheduling import date_rules, time_rules


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
indicator = _bind("indicator")

__all__ = [
    "order", "order_value", "order_percent", "order_target", "order_target_value", "order_target_percent",
    "get_open_orders", "get_order", "cancel_order", "modify_order", "link_oco", "symbol", "symbols", "sid",
    "record", "schedule_function", "get_datetime", "set_slippage", "set_commission", "indicator", "date_rules",
    "time_rules",
    "get_algorithm",
]
