"""Commission models (Zipline names). A model charges each fill; the charge may depend
on what the order already paid (minimums and per-order fees are paid once)."""

from __future__ import annotations

from .execution import check_cost


class CommissionModel:
    """Base class: :meth:`calculate` returns the commission for one fill."""

    def calculate(self, order, fill_qty: float, fill_price: float) -> float:
        return 0.0

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class NoCommission(CommissionModel):
    """No commission."""


class PerShare(CommissionModel):
    """``cost`` per share, at least ``min_trade_cost`` per order (Zipline semantics: the
    minimum is reached over the order's fills, not charged on every fill)."""

    def __init__(self, cost: float = 0.001, min_trade_cost: float = 0.0) -> None:
        self.cost = check_cost("cost", cost, "PerShare")
        self.min_trade_cost = check_cost("min_trade_cost", min_trade_cost, "PerShare")

    def calculate(self, order, fill_qty, fill_price):
        additional = abs(fill_qty) * self.cost
        if order.commission == 0:
            return max(self.min_trade_cost, additional)
        total = abs(order.filled) * self.cost + additional
        if total < self.min_trade_cost:
            return 0.0
        return total - order.commission


class PerTrade(CommissionModel):
    """A flat ``cost`` per order, charged on its first fill."""

    def __init__(self, cost: float = 0.0) -> None:
        self.cost = check_cost("cost", cost, "PerTrade")

    def calculate(self, order, fill_qty, fill_price):
        return self.cost if order.filled == 0 else 0.0


class PerDollar(CommissionModel):
    """``cost`` per dollar traded (0.0015 = 0.15 %)."""

    def __init__(self, cost: float = 0.0015) -> None:
        self.cost = check_cost("cost", cost, "PerDollar")

    def calculate(self, order, fill_qty, fill_price):
        return abs(fill_qty) * fill_price * self.cost


__all__ = ["CommissionModel", "NoCommission", "PerShare", "PerTrade", "PerDollar"]
