"""Order-event and trade callbacks: what ``on_order_event`` and ``on_trade`` receive, and
the one place that delivers them.

A strategy that defines ``on_order_event(self, context, event)`` (or passes
``on_order_event=`` as a Zipline-style function) gets every order event of the run
(:class:`OrderUpdate`: submitted, held, activated, triggered, partial fills, fills,
canceled, rejected, expired, updated, trailing-level moves), each exactly once and in the
order of ``result.order_events``; ``on_trade(self, context, trade)`` gets each round trip
(:class:`ClosedTrade`) when it closes. When:

* the events of a bar's matching, before that bar's scheduled functions and
  ``handle_data`` (and the events a session's end produced, before the next bar's);
* the events a strategy's own calls produce — in ``initialize``, ``before_trading_start``,
  a scheduled function, ``handle_data`` or a callback — right after that call returns;
* anything still undelivered when the last bar is done, before the run ends.

Trades closed by the events of a delivery follow those events. Orders placed from a
callback have the timing of the call that delivered it (from a bar's callbacks: first
matched on the next bar, as from ``handle_data``). A strategy that defines neither
callback pays nothing for them: the :class:`Notifier` wraps the strategy's calls only when
there is something to deliver to.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

from .finance.ledger import TRADE_COLUMNS
from .finance.order import Order, OrderEvent

__all__ = ["ClosedTrade", "Notifier", "OrderUpdate"]

#: A closed round trip, as ``on_trade`` receives it (the columns of ``result.trades``).
ClosedTrade = namedtuple("ClosedTrade", TRADE_COLUMNS)  # type: ignore[misc]

_FILLS = ("fill", "partial_fill")


class OrderUpdate:
    """One event of one order, as ``on_order_event`` receives it.

    ``kind`` (``'submitted'``, ``'fill'``, ``'canceled'`` ...), ``status`` (after the
    event) and ``status_before``, ``reason``, ``dt`` and ``bar``; for fills the signed
    ``qty``, the ``price`` and the fill's ``commission`` (NaN otherwise). ``order`` is the
    order itself (its current state); ``id``, ``asset``, ``role`` (bracket leg or None),
    ``parent_id`` and ``tag`` come from it; ``amount``, ``filled``, ``limit`` and ``stop`` are its values
    right after the event. ``seq`` is the event's row in ``result.order_events``.
    """

    __slots__ = ("_event", "commission", "order")

    def __init__(self, event: OrderEvent, order: Order, commission: float) -> None:
        self._event = event
        self.order = order
        self.commission = commission

    seq = property(lambda self: self._event.seq)
    kind = property(lambda self: self._event.kind)
    status = property(lambda self: self._event.status_after)
    status_before = property(lambda self: self._event.status_before)
    reason = property(lambda self: self._event.reason)
    dt = property(lambda self: self._event.dt)
    bar = property(lambda self: self._event.bar)
    qty = property(lambda self: self._event.qty)
    price = property(lambda self: self._event.price)
    amount = property(lambda self: self._event.amount)
    filled = property(lambda self: self._event.filled)
    limit = property(lambda self: self._event.limit)
    stop = property(lambda self: self._event.stop)
    id = property(lambda self: self.order.id)
    asset = property(lambda self: self.order.asset)
    role = property(lambda self: self.order.role)
    tag = property(lambda self: self.order.tag)
    parent_id = property(lambda self: self.order.parent_id)

    @property
    def is_fill(self) -> bool:
        """A fill or a partial fill."""
        return self._event.kind in _FILLS

    def __repr__(self) -> str:
        fill = f" {self.qty:+g} @ {self.price:g}" if self.is_fill else ""
        return f"OrderUpdate(#{self.id} {self.asset} {self.kind}{fill} -> {self.status}: {self.reason})"


class Notifier:
    """Delivers a run's order events and closed trades to the strategy's callbacks (see the
    module docstring): a cursor into the event log, one into the fills (for each fill's
    commission) and one into the closed trades."""

    def __init__(self, book: Any, ledger: Any, context: Any, on_event: Callable[..., Any] | None,
                 on_trade: Callable[..., Any] | None) -> None:
        self.book, self.ledger, self.context = book, ledger, context
        self.on_event, self.on_trade = on_event, on_trade
        self.events = 0
        self.fills = 0
        self.trades = 0
        self._busy = False

    def deliver(self) -> None:
        """Deliver everything not yet delivered, including what the callbacks themselves cause."""
        if self._busy:  # (a callback's own events: the loop below picks them up)
            return
        self._busy = True
        try:
            log, fills, trades = self.book.log, self.ledger.fills, self.ledger.trades
            while self.events < len(log) or self.trades < len(trades):
                while self.events < len(log):
                    event = log[self.events]
                    self.events += 1
                    commission = float("nan")
                    if event.kind in _FILLS:
                        commission = fills[self.fills][6]  # FILL_COLUMNS: the fill's commission
                        self.fills += 1
                    if self.on_event is not None:
                        self.on_event(self.context, OrderUpdate(event, self.book.orders[event.order_id], commission))
                while self.trades < len(trades) and self.events == len(log):
                    trade = ClosedTrade._make(trades[self.trades])
                    self.trades += 1
                    if self.on_trade is not None:
                        self.on_trade(self.context, trade)
        finally:
            self._busy = False

    def pending(self) -> bool:
        return self.events != len(self.book.log) or self.trades != len(self.ledger.trades)

    def around(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` with delivery before it (what happened since the last delivery: a bar's
        matching) and after it (what it did)."""
        deliver, log, trades, notifier = self.deliver, self.book.log, self.ledger.trades, self

        def delivering(context: Any, data: Any) -> Any:
            __tracebackhide__ = True
            if notifier.events != len(log) or notifier.trades != len(trades):  # (most bars: nothing new)
                deliver()
            out = call(context, data)
            if notifier.events != len(log) or notifier.trades != len(trades):
                deliver()
            return out

        return delivering

    def after(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` with delivery after it."""
        deliver = self.deliver

        def delivering(context: Any, data: Any) -> Any:
            __tracebackhide__ = True
            out = call(context, data)
            if self.pending():
                deliver()
            return out

        return delivering
