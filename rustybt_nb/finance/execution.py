"""Execution styles: how an order should be executed.

A style is a plain description passed as ``order(asset, amount, style=...)``; the order
book turns it into one or more :class:`~rustybt_nb.finance.order.Order` objects.
Constructors validate their arguments and raise ``ValueError``/``TypeError`` that name
the argument, show the value and say the fix. Prices are used exactly as given (no tick
rounding).

Time in force: every style takes ``time_in_force='GTC'`` (default, good till canceled),
``'DAY'`` (expires at the end of the session in which the order first can fill) or
``'GTD'`` with ``good_till=`` a timestamp (expires after the last bar at or before it).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

TIME_IN_FORCE = ("GTC", "DAY", "GTD")
TRAIL_REFERENCES = ("high_low", "close")
#: The largest share count an order may have: amounts and fills are booked as float64, which
#: counts whole shares exactly only below 2**53. A larger (finite) amount is rejected.
MAX_SHARES = 2**53 - 1


def too_many_shares(amount: float) -> str:
    """The rejection reason of an amount beyond :data:`MAX_SHARES`."""
    return (f"amount {amount:g} is more shares than an order can book exactly (at most {MAX_SHARES:,}, "
            "2**53 - 1: larger counts are not exact as float64)")


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, short (a huge int is described, not printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of {len(str(value)) if value.bit_length() < 14_000 else 'over 4,000'} digits"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def check_amount(name: str, value: Any) -> int:
    """A share count given by the user (an order's ``amount``, an OCO leg's amount) as an
    int: a number, finite and within the float range (``TypeError`` / ``ValueError`` naming
    ``name`` otherwise), rounded when within 1e-4 of a whole number and otherwise truncated
    toward zero, as Zipline does. Whether that many shares can be booked (at most
    :data:`MAX_SHARES`) is the order book's question: a larger amount is rejected."""
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise TypeError(f"`{name}` must be a number of shares, got {shown(value)} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"`{name}` is {shown(value)}, beyond the range of a float; "
                         f"an order books at most {MAX_SHARES:,} shares") from None
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number of shares, got {shown(value)} ({type(value).__name__})") from None
    if v != v:
        raise ValueError(f"`{name}` is NaN; check the calculation that produced it")
    if math.isinf(v):
        raise ValueError(f"`{name}` must be a finite number of shares, got {shown(value)}; "
                         "check the calculation that produced it")
    near = round(v)
    if abs(v - near) < 1e-4:
        v = near
    return int(v)  # toward zero, as Zipline


def check_price(name: str, value: Any, *, allow_none: bool = False, positive: bool = True) -> float | None:
    """Validate a price-like argument; return it as float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"`{name}` must be a number, got {value!r} ({type(value).__name__}); "
            f"pass a float such as {name}=101.5"
        )
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"`{name}` must be a finite number, got {shown(value)}; "
                         "check the calculation that produced it")
    if positive and v <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value!r}; prices and distances are positive numbers")
    return v


def check_cost(name: str, value: Any, model: str) -> float:
    """Validate a cost model's parameter: a finite number >= 0 (a negative commission or
    slippage would pay the trader for trading); return it as float."""
    v = check_price(name, value, positive=False)
    if v < 0:
        raise ValueError(f"{model}: `{name}` must be >= 0, got {value!r}; costs are charged, never paid to "
                         f"the strategy (use 0 for none)")
    return v


def _check_tif(time_in_force: str, good_till: Any) -> tuple[str, Any]:
    tif = str(time_in_force).upper() if isinstance(time_in_force, str) else time_in_force
    if tif not in TIME_IN_FORCE:
        raise ValueError(f"`time_in_force` must be one of {TIME_IN_FORCE}, got {time_in_force!r}")
    if tif == "GTD" and good_till is None:
        raise ValueError("`time_in_force='GTD'` needs `good_till=` (a timestamp such as '2012-06-30')")
    if tif != "GTD" and good_till is not None:
        raise ValueError(f"`good_till` is only used with time_in_force='GTD' (got time_in_force={tif!r})")
    if good_till is not None and _not_a_time(good_till):
        raise ValueError(f"`good_till`={good_till!r} is not a time; pass a date or time such as '2012-06-30' "
                         "or '2012-06-30 15:00' (a str, pandas.Timestamp, datetime or numpy.datetime64)")
    return tif, good_till


def _not_a_time(value: Any) -> bool:
    """True for values that are certainly not a time: numbers and missing values (NaT, NaN)."""
    if isinstance(value, (bool, int, float)):
        return True
    try:
        return bool(value != value)
    except Exception:  # (an array-like: the order book's time rule names it)
        return False


class ExecutionStyle:
    """Base class of execution styles."""

    kind = "base"

    def __init__(self, *, time_in_force: str = "GTC", good_till: Any = None, exchange: str | None = None):
        self.time_in_force, self.good_till = _check_tif(time_in_force, good_till)
        self.exchange = exchange

    # Zipline-compatible accessors
    def get_limit_price(self, is_buy: bool) -> float | None:
        return getattr(self, "limit_price", None)

    def get_stop_price(self, is_buy: bool) -> float | None:
        return getattr(self, "stop_price", None)

    def _fields(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._fields().items() if v is not None)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._fields() == other._fields()  # type: ignore[attr-defined]

    __hash__ = object.__hash__


class MarketOrder(ExecutionStyle):
    """Fill at the next bar's open ("ohlc" fill model) or close ("close" model)."""

    kind = "market"


class LimitOrder(ExecutionStyle):
    """Buy at ``limit_price`` or lower / sell at ``limit_price`` or higher."""

    kind = "limit"

    def __init__(self, limit_price: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.limit_price = check_price("limit_price", limit_price)

    def _fields(self) -> dict[str, Any]:
        return {"limit_price": self.limit_price}


class StopOrder(ExecutionStyle):
    """Becomes a market order once the price reaches ``stop_price`` (buy: at or above;
    sell: at or below)."""

    kind = "stop"

    def __init__(self, stop_price: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.stop_price = check_price("stop_price", stop_price)

    def _fields(self) -> dict[str, Any]:
        return {"stop_price": self.stop_price}


class StopLimitOrder(ExecutionStyle):
    """Becomes a limit order at ``limit_price`` once ``stop_price`` is reached."""

    kind = "stop_limit"

    def __init__(self, limit_price: float, stop_price: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.limit_price = check_price("limit_price", limit_price)
        self.stop_price = check_price("stop_price", stop_price)

    def _fields(self) -> dict[str, Any]:
        return {"limit_price": self.limit_price, "stop_price": self.stop_price}


class TrailingStopOrder(ExecutionStyle):
    """A stop that follows the price by ``trail_amount`` (price units), ``trail_percent``
    (a fraction: 0.05 = 5 %) or ``trail_atr`` (a multiple of the asset's average true
    range over ``atr_window`` bars, kept by the engine: Wilder's smoothing, from the bars up
    to the current one).

    The level starts at the last close minus the trail (sell) / plus the trail (buy);
    on every bar it is first checked as a stop, then moved toward the price — from the
    bar's high (sell) / low (buy), or from the close with ``trail_reference='close'`` —
    and never loosened. An ATR trail is the ATR of the bar the level is set from (so its
    distance breathes with volatility, but the level itself still never loosens).
    """

    kind = "trailing_stop"

    def __init__(
        self,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        *,
        trail_atr: float | None = None,
        atr_window: int = 14,
        trail_reference: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if sum(x is not None for x in (trail_amount, trail_percent, trail_atr)) != 1:
            raise ValueError(
                "give exactly one of `trail_amount` (price units, e.g. 2.5), `trail_percent` "
                "(a fraction, e.g. 0.05 for 5 %) or `trail_atr` (a multiple of the ATR, e.g. 3); got "
                f"trail_amount={trail_amount!r}, trail_percent={trail_percent!r}, trail_atr={trail_atr!r}"
            )
        self.trail_amount = check_price("trail_amount", trail_amount, allow_none=True)
        self.trail_percent = check_price("trail_percent", trail_percent, allow_none=True)
        self.trail_atr = check_price("trail_atr", trail_atr, allow_none=True)
        if isinstance(atr_window, bool) or not isinstance(atr_window, int) or atr_window < 1:
            raise ValueError(f"`atr_window` must be a whole number of bars >= 1 (14 is usual), got {atr_window!r}")
        self.atr_window = atr_window if self.trail_atr is not None else None
        if self.trail_percent is not None and self.trail_percent >= 1:
            raise ValueError(
                f"`trail_percent` is a fraction below 1 (0.05 = 5 %), got {trail_percent!r}; "
                f"did you mean {trail_percent / 100!r}?"
            )
        if trail_reference is not None and trail_reference not in TRAIL_REFERENCES:
            raise ValueError(f"`trail_reference` must be one of {TRAIL_REFERENCES}, got {trail_reference!r}")
        self.trail_reference = trail_reference

    def _fields(self) -> dict[str, Any]:
        return {"trail_amount": self.trail_amount, "trail_percent": self.trail_percent, "trail_atr": self.trail_atr,
                "atr_window": self.atr_window}


class TrailingStopLimitOrder(TrailingStopOrder):
    """A trailing stop that becomes a limit order when triggered. The limit is the
    stop minus ``limit_offset`` (sell) / plus it (buy); it moves with the stop and is
    frozen once the stop triggers."""

    kind = "trailing_stop_limit"

    def __init__(
        self,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        limit_offset: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(trail_amount, trail_percent, **kw)
        self.limit_offset = check_price("limit_offset", limit_offset, positive=False)
        if self.limit_offset < 0:
            raise ValueError(
                f"`limit_offset` must be >= 0 (the distance from the stop to the limit), got {limit_offset!r}"
            )

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "limit_offset": self.limit_offset}


class BracketOrder(ExecutionStyle):
    """An entry with a protective stop-loss and a take-profit exit.

    ``entry_style`` is the entry's style (market, limit, stop or stop-limit);
    ``entry_price`` alone means a limit entry at that price; with ``entry_style`` it is
    the reference price used to validate the bracket's geometry (long: stop < entry <
    target; short: the reverse). The exits are held until the entry is completely
    filled, then work from the next bar as one-cancels-other and reduce-only orders.

    The stop-loss leg is ``stop_loss_style`` — a ``StopOrder``, ``StopLimitOrder``,
    ``TrailingStopOrder`` or ``TrailingStopLimitOrder`` — or ``stop_loss_price``, the
    shorthand for ``StopOrder(stop_loss_price)``; the take-profit leg is
    ``take_profit_style`` (a ``LimitOrder``) or ``take_profit_price``. A trailing
    stop-loss starts at the entry's reference ∓ its trail — the entry's limit (limit
    entry) or stop (stop and stop-limit entries), else the close of the bar the bracket is
    placed on — stays there while the entry waits and on the bar it fills, and trails from
    the next bar. With one exit only, the bracket is an entry with an attached exit that
    goes live when the entry fills (one-triggers-other).

    Time in force applies to the entry: set it on the bracket or on ``entry_style`` (both is
    an error unless they agree). An entry that expires unfilled takes its held exits with it.
    """

    kind = "bracket"

    def __init__(
        self,
        entry_style: ExecutionStyle | None = None,
        stop_loss_price: float | None = None,
        take_profit_price: float | None = None,
        entry_price: float | None = None,
        *,
        stop_loss_style: ExecutionStyle | None = None,
        take_profit_style: ExecutionStyle | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if entry_style is not None and not isinstance(entry_style, (MarketOrder, LimitOrder, StopOrder,
                                                                      StopLimitOrder)):
            raise TypeError(
                "`entry_style` must be MarketOrder(), LimitOrder(p), StopOrder(p) or StopLimitOrder(l, s), "
                f"got {entry_style!r}"
            )
        self.entry_price = check_price("entry_price", entry_price, allow_none=True)
        if entry_style is None:
            entry_style = MarketOrder() if self.entry_price is None else LimitOrder(self.entry_price)
        own = (entry_style.time_in_force, entry_style.good_till)
        if own[0] != "GTC" and self.time_in_force != "GTC" and own != (self.time_in_force, self.good_till):
            raise ValueError(
                f"the bracket says time_in_force={self.time_in_force!r} but its entry_style says "
                f"{own[0]!r}; set the time in force in one place (the bracket or the entry style)"
            )
        self.entry_style = entry_style
        self.stop_loss_style = _exit_style("stop_loss", stop_loss_price, stop_loss_style,
                                           (StopOrder, StopLimitOrder, TrailingStopOrder), StopOrder,
                                           "StopOrder(p), StopLimitOrder(l, s), TrailingStopOrder(...) or "
                                           "TrailingStopLimitOrder(...)")
        self.take_profit_style = _exit_style("take_profit", take_profit_price, take_profit_style, (LimitOrder,),
                                             LimitOrder, "LimitOrder(p)")
        # the levels the geometry check reads (None for a trailing stop: valid by construction)
        sl = self.stop_loss_style
        self.stop_loss_price = None if sl is None or isinstance(sl, TrailingStopOrder) else sl.stop_price
        self.take_profit_price = None if self.take_profit_style is None else self.take_profit_style.limit_price
        if self.stop_loss_style is None and self.take_profit_style is None:
            raise ValueError(
                "a BracketOrder needs a stop-loss (`stop_loss_price` or `stop_loss_style`) and/or a take-profit "
                "(`take_profit_price` or `take_profit_style`); for a plain entry use the entry style directly"
            )

    def _fields(self) -> dict[str, Any]:
        return {
            "entry_style": self.entry_style,
            "stop_loss_style": self.stop_loss_style,
            "take_profit_style": self.take_profit_style,
            "entry_price": self.entry_price,
        }


def _exit_style(leg: str, price: Any, style: Any, kinds: tuple[type, ...], plain: type, examples: str) -> Any:
    """A bracket leg's style from its shorthand price or its style (one of them, or none)."""
    price = check_price(f"{leg}_price", price, allow_none=True)
    if price is not None and style is not None:
        raise ValueError(f"give `{leg}_price` or `{leg}_style`, not both (`{leg}_price={price!r}` is "
                         f"the shorthand for `{leg}_style={plain.__name__}({price!r})`)")
    if style is None:
        return None if price is None else plain(price)
    if isinstance(style, type):
        raise TypeError(f"`{leg}_style` must be an instance, e.g. {examples.split(' or ')[0]}, not the class")
    if not isinstance(style, kinds):
        raise TypeError(f"`{leg}_style` must be {examples}, got {style!r}")
    if style.time_in_force != "GTC":
        raise ValueError(f"`{leg}_style` has time_in_force={style.time_in_force!r}; a bracket's exits are good till "
                         "canceled (they live as long as the position): set the time in force on the bracket")
    return style


class OCOOrder(ExecutionStyle):
    """Two or more orders linked one-cancels-other: the first fill (even partial) of
    any leg cancels the others. Legs are styles, or ``(amount, style)`` pairs when the
    legs trade different sides or sizes; a bare style leg uses the ``order()`` amount
    with a direction inferred from the style."""

    kind = "oco"

    def __init__(self, order1: Any = None, order2: Any = None, *more: Any, **kw: Any) -> None:
        super().__init__(**kw)
        legs = [leg for leg in (order1, order2, *more) if leg is not None]
        if len(legs) < 2:
            raise ValueError("an OCOOrder needs at least two legs: OCOOrder(order1=..., order2=...)")
        for i, leg in enumerate(legs, 1):
            if isinstance(leg, tuple) and len(leg) != 2:
                raise TypeError(f"OCO leg {i} must be a style or an (amount, style) pair, got a tuple of "
                                f"{len(leg)} values: {shown(leg)}")
            style = leg[1] if isinstance(leg, tuple) else leg
            if not isinstance(style, ExecutionStyle) or isinstance(style, (OCOOrder, BracketOrder)):
                raise TypeError(
                    f"OCO leg {i} must be a simple style (MarketOrder, LimitOrder, StopOrder, "
                    f"StopLimitOrder, TrailingStopOrder, ...) or an (amount, style) pair, got {shown(leg)}"
                )
        # (amount, style) legs with the amount checked and made an int here, once
        self.legs = [(check_amount(f"OCO leg {i} amount", leg[0]), leg[1]) if isinstance(leg, tuple) else leg
                     for i, leg in enumerate(legs, 1)]

    def _fields(self) -> dict[str, Any]:
        return {"legs": self.legs}


__all__ = [
    "ExecutionStyle", "MarketOrder", "LimitOrder", "StopOrder", "StopLimitOrder",
    "TrailingStopOrder", "TrailingStopLimitOrder", "BracketOrder", "OCOOrder", "TIME_IN_FORCE",
]
