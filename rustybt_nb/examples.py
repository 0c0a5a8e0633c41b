"""Small example strategies used by the demo (``python -m rustybt_nb``) and the docs."""

from __future__ import annotations

from .algorithm import TradingAlgorithm
from .finance.execution import BracketOrder, MarketOrder, TrailingStopOrder


class SmaCrossBracket(TradingAlgorithm):
    """Trend entries with protection: when the fast moving average crosses above the
    slow one while flat, buy with a bracket (stop-loss and take-profit around the
    signal close); a trailing stop variant is selected with ``exit='trailing'``."""

    params = {"symbol": "AAPL", "fast": 20, "slow": 50, "fraction": 0.95, "stop_pct": 0.04, "target_pct": 0.08,
              "exit": "bracket", "trail_pct": 0.05}

    def initialize(self, context):
        context.asset = self.symbol(self.params.symbol)
        context.prev_fast_above = None

    def handle_data(self, context, data):
        p = self.params
        closes = data.history(context.asset, "close", p.slow, "1d")
        if len(closes) < p.slow:
            return
        fast = closes.iloc[-p.fast:].mean()
        slow = closes.mean()
        above = bool(fast > slow)
        crossed_up = context.prev_fast_above is False and above
        context.prev_fast_above = above
        flat = context.portfolio.positions[context.asset].amount == 0
        if crossed_up and flat and not self.get_open_orders(context.asset):
            price = data.current(context.asset, "close")
            shares = int(context.portfolio.portfolio_value * p.fraction / price)
            if p.exit == "trailing":
                self.order(context.asset, shares, style=MarketOrder())
                self.order(context.asset, -shares, style=TrailingStopOrder(trail_percent=p.trail_pct))
            else:
                self.order(context.asset, shares, style=BracketOrder(
                    entry_style=MarketOrder(),
                    stop_loss_price=price * (1 - p.stop_pct),
                    take_profit_price=price * (1 + p.target_pct),
                ))
        self.record(fast=fast, slow=slow)
