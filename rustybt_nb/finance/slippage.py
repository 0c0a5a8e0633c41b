"""Slippage models (Zipline names) and the per-bar volume cap.

A model does two things: it caps how much of an asset can fill on one bar
(``volume_limit`` x bar volume, shared by all orders on that asset and bar; ``None`` =
no cap) and it moves the rule price against the trader. Limit-type orders never fill
beyond their limit after slippage (the price is capped at the limit).
"""

from __future__ import annotations

import math
from typing import Any

from .execution import check_cost, check_price


def _check_volume_limit(volume_limit: Any) -> float | None:
    if volume_limit is None:
        return None
    v = check_price("volume_limit", volume_limit)
    if v > 1:
        raise ValueError(f"`volume_limit` is a fraction of bar volume in (0, 1], got {volume_limit!r}; "
                         f"did you mean {volume_limit / 100!r}?")
    return v


class SlippageModel:
    """Base class. Subclasses override :meth:`slipped_price`."""

    volume_limit: float | None = None

    def __init__(self, volume_limit: float | None = None) -> None:
        self.volume_limit = _check_volume_limit(volume_limit)

    def capacity(self, bar_volume: float, already_filled: float) -> float:
        """Shares that may still fill on this bar (``inf`` when uncapped)."""
        if self.volume_limit is None:
            return math.inf
        if bar_volume != bar_volume:  # NaN: the data has no volume
            return math.inf
        return max(0.0, math.floor(self.volume_limit * bar_volume) - already_filled)

    def slipped_price(self, price: float, is_buy: bool, fill_qty: float, bar_volume: float,
                      filled_on_bar: float) -> float:
        return price

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class NoSlippage(SlippageModel):
    """Fills at the rule price. Optional ``volume_limit`` caps each bar's fills."""


class FixedSlippage(SlippageModel):
    """Buys pay ``spread / 2`` more, sells receive ``spread / 2`` less."""

    def __init__(self, spread: float = 0.0, volume_limit: float | None = None) -> None:
        super().__init__(volume_limit)
        self.spread = check_cost("spread", spread, "FixedSlippage")

    def slipped_price(self, price, is_buy, fill_qty, bar_volume, filled_on_bar):
        half = self.spread / 2.0
        return price + half if is_buy else price - half


class FixedBasisPointsSlippage(SlippageModel):
    """Moves the price by ``basis_points`` (1 bp = 0.01 %); caps fills at
    ``volume_limit`` of bar volume (default 10 %, as Zipline)."""

    def __init__(self, basis_points: float = 5.0, volume_limit: float | None = 0.1) -> None:
        super().__init__(volume_limit)
        self.basis_points = check_cost("basis_points", basis_points, "FixedBasisPointsSlippage")

    def slipped_price(self, price, is_buy, fill_qty, bar_volume, filled_on_bar):
        f = self.basis_points / 10_000.0
        return price * (1 + f) if is_buy else price * (1 - f)


class VolumeShareSlippage(SlippageModel):
    """Zipline's volume-share model: at most ``volume_limit`` of each bar's volume
    fills; the price moves by ``price_impact x share^2`` where ``share`` is the fraction
    of the bar's volume taken so far (capped at ``volume_limit``)."""

    def __init__(self, volume_limit: float = 0.025, price_impact: float = 0.1) -> None:
        super().__init__(volume_limit)
        self.price_impact = check_cost("price_impact", price_impact, "VolumeShareSlippage")

    def slipped_price(self, price, is_buy, fill_qty, bar_volume, filled_on_bar):
        if not bar_volume or bar_volume != bar_volume:
            return price
        share = min((filled_on_bar + abs(fill_qty)) / bar_volume, self.volume_limit or 1.0)
        impact = self.price_impact * share * share * price
        return price + impact if is_buy else price - impact


__all__ = ["SlippageModel", "NoSlippage", "FixedSlippage", "FixedBasisPointsSlippage", "VolumeShareSlippage"]
