"""``tweak(...)``: a :class:`~rustybt_nb.analytics.TweakPanel` for a strategy and its
settings in one call (see :mod:`rustybt_nb.analytics.tweak_panel`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backtest import Backtest
from .tweak_panel import TweakPanel

__all__ = ["tweak"]


def tweak(strategy: Any = None, *, data: Any = "AAPL", start: Any = None, end: Any = None,
          capital_base: float = 100_000, data_frequency: str | None = None, fill_model: str = "ohlc",
          trail_reference: str = "high_low", same_bar: str = "stop_first", slippage: Any = None,
          commission: Any = None, symbols: Any = None, initialize: Callable[..., Any] | None = None,
          handle_data: Callable[..., Any] | None = None, before_trading_start: Callable[..., Any] | None = None,
          analyze: Callable[..., Any] | None = None, **controls: Any) -> TweakPanel:
    """A live panel that re-runs ``strategy`` as its parameters move (see
    :mod:`rustybt_nb.analytics.tweak_panel`). The settings are those of :class:`~rustybt_nb.Backtest`; other keyword
    arguments override the controls of parameters (``fast=(2, 30, 1)``)."""
    backtest = Backtest(strategy, data=data, start=start, end=end, capital_base=capital_base,
                        data_frequency=data_frequency, fill_model=fill_model, trail_reference=trail_reference,
                        same_bar=same_bar, slippage=slippage, commission=commission, symbols=symbols,
                        initialize=initialize, handle_data=handle_data, before_trading_start=before_trading_start,
                        analyze=analyze)
    return TweakPanel(backtest, **controls)
