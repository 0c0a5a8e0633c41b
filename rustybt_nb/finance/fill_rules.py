"""Where an order would fill on one bar, before slippage and volume caps.

Two fill models:

``"ohlc"`` (default, gap-aware, the same rules as backtrader's broker)
    market: the bar's open. Buy limit: open if open <= limit, else the limit if
    low <= limit. Buy stop: open if open >= stop, else the stop if high >= stop. Sells
    mirror these. A stop-limit triggers as a stop and then works as a limit; when it
    triggers at the open it is matched as a limit on the same bar, and when it triggers
    intrabar it fills at the stop if the limit is at or beyond the stop (plus
    backtrader's one extra case: a buy triggered on a bar that closes below its open
    fills at the limit when close <= limit < stop; sells mirror).
``"close"`` (Zipline)
    every trigger and fill uses the bar's close only.

A triggered stop (plain or trailing) that could not fill completely works as a market
order from then on; a triggered stop-limit works as a limit order.

Functions return ``(price, reached)``: ``price`` is NaN when nothing fills and
``reached`` tells that an untriggered stop level was reached on this bar.
"""

from __future__ import annotations

NAN = float("nan")

STOP_STYLES = frozenset({"stop", "trailing_stop"})
STOP_LIMIT_STYLES = frozenset({"stop_limit", "trailing_stop_limit"})
LIMIT_PRICED = frozenset({"limit", "stop_limit", "trailing_stop_limit"})
TRAILING = frozenset({"trailing_stop", "trailing_stop_limit"})
FILL_MODELS = ("ohlc", "close")


def limit_ohlc(is_buy: bool, limit: float, o: float, h: float, lo: float) -> float:
    if is_buy:
        if o <= limit:
            return o
        if lo <= limit:
            return limit
    else:
        if o >= limit:
            return o
        if h >= limit:
            return limit
    return NAN


def match_ohlc(style: str, is_buy: bool, triggered: bool, stop: float | None, limit: float | None,
               o: float, h: float, lo: float, c: float) -> tuple[float, bool]:
    """Fill price on an OHLC bar under the "ohlc" model (see module docstring)."""
    if style == "market":
        return o, False
    if style == "limit":
        return limit_ohlc(is_buy, limit, o, h, lo), False
    if triggered:
        if style in STOP_STYLES:
            return o, False
        return limit_ohlc(is_buy, limit, o, h, lo), False
    if style in STOP_STYLES:
        if is_buy:
            if o >= stop:
                return o, True
            if h >= stop:
                return stop, True
        else:
            if o <= stop:
                return o, True
            if lo <= stop:
                return stop, True
        return NAN, False
    # stop-limit, not yet triggered
    if is_buy:
        if o >= stop:
            return limit_ohlc(True, limit, o, h, lo), True
        if h >= stop:
            if limit >= stop:
                return stop, True
            if o > c and limit >= c:
                return limit, True
            return NAN, True
    else:
        if o <= stop:
            return limit_ohlc(False, limit, o, h, lo), True
        if lo <= stop:
            if limit <= stop:
                return stop, True
            if o <= c and limit <= c:
                return limit, True
            return NAN, True
    return NAN, False


def match_close(style: str, is_buy: bool, triggered: bool, stop: float | None, limit: float | None,
                c: float) -> tuple[float, bool]:
    """Fill price under the "close" model: triggers and fills use the close only."""
    reached = False
    if style in STOP_STYLES or style in STOP_LIMIT_STYLES:
        if not triggered:
            if (c >= stop) if is_buy else (c <= stop):
                reached = True
            else:
                return NAN, False
        if style in STOP_STYLES:
            return c, reached
    elif style == "market":
        return c, False
    if (c <= limit) if is_buy else (c >= limit):
        return c, reached
    return NAN, reached


def trail_level(is_buy: bool, reference: float, trail_amount: float | None, trail_percent: float | None) -> float:
    """The trailing stop level implied by ``reference`` (a sell trails below the price,
    a buy above it)."""
    if trail_amount is not None:
        return reference + trail_amount if is_buy else reference - trail_amount
    # (written as backtrader computes it, so the levels agree to the last bit)
    return reference + reference * trail_percent if is_buy else reference - reference * trail_percent
