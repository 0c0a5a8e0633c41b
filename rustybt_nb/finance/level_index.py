"""Per-asset index of working orders by the price level that can make them fill.

Resting orders fill only when the bar reaches their level: a level reached from below
(buy stops, sell limits, untriggered buy stop-limits; "up") needs ``high >= level``, a
level reached from above (sell stops, buy limits; "down") needs ``low <= level`` — a gap
through the level at the open satisfies the same test. Keeping each side sorted lets a
bar find its candidates with a binary search, so the cost of a bar does not grow with
the number of orders resting away from the market. Orders that must be looked at on
every bar (market orders, triggered stops, trailing stops that ratchet) are kept in a
plain list.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from .order import LIVE, ORDER_STATUS, Order

HELD = ORDER_STATUS.HELD
_EVERY_BAR_STYLES = frozenset({"market", "trailing_stop", "trailing_stop_limit"})
_TRAILING = frozenset({"trailing_stop", "trailing_stop_limit"})
_EVERY = ("every", 0.0)


def slot_of(order: Order) -> tuple[str, float] | None:
    """Where a live order belongs: ('every', 0), ('up', level), ('down', level), or None
    when it cannot fill now (held)."""
    if order.status is HELD:
        return None
    style = order.style
    buy = order.amount > 0
    if order.triggered:
        if style in ("stop", "trailing_stop"):
            return _EVERY
        return ("down", order.limit) if buy else ("up", order.limit)
    if style in _EVERY_BAR_STYLES:
        return _EVERY
    if style == "limit":
        return ("down", order.limit) if buy else ("up", order.limit)
    return ("up", order.stop) if buy else ("down", order.stop)  # stop, stop_limit


class LevelIndex:
    """The working orders of one asset, filed by :func:`slot_of`."""

    __slots__ = ("down", "every", "lone", "up", "where")

    def __init__(self) -> None:
        self.every: list[Order] = []
        self.up: list[tuple[float, int, Order]] = []  # ascending level
        self.down: list[tuple[float, int, Order]] = []  # ascending level
        self.where: dict[int, tuple[str, float]] = {}
        # the one working order when it is an untriggered trailing stop (a trailing
        # strategy's state on most bars), else None: the order book's shortcut
        self.lone: Order | None = None

    def _update_lone(self) -> None:
        every = self.every
        order = every[0] if len(every) == 1 and not self.up and not self.down else None
        self.lone = order if (order is not None and not order.triggered and order.style in _TRAILING
                              and order.trail_atr is None) else None

    def file(self, order: Order) -> None:
        """(Re)file ``order`` after any change of status, level or trigger."""
        if order.id in self.where:
            self.remove(order)
        status = order.status
        if status not in LIVE or status is HELD:  # closed, not yet accepted, or held: nowhere
            return
        if not order.triggered and order.style in _EVERY_BAR_STYLES:  # slot_of's answer, without the call
            every = self.every
            every.append(order)
            self.where[order.id] = _EVERY
            # _update_lone, inline: this untriggered order is the lone one only if it is the only one
            self.lone = order if (len(every) == 1 and order.style in _TRAILING and order.trail_atr is None
                                  and not self.up
                                  and not self.down) else None
            return
        slot = slot_of(order)
        if slot is None:
            return
        kind, level = slot
        if kind == "every":
            self.every.append(order)
        else:
            insort(self.up if kind == "up" else self.down, (level, order.id, order))
        self.where[order.id] = slot
        self._update_lone()

    def remove(self, order: Order) -> None:
        slot = self.where.pop(order.id, None)
        if slot is None:
            return
        kind, level = slot
        if kind == "every":
            self.every.remove(order)
        else:
            side = self.up if kind == "up" else self.down
            i = bisect_left(side, (level, order.id))
            while side[i][1] != order.id:
                i += 1
            del side[i]
        self._update_lone()

    def reached(self, high: float, low: float) -> list[Order]:
        """Orders that this bar could fill or trigger, in submission order."""
        found = list(self.every)
        if self.up:
            n = bisect_right(self.up, (high, float("inf")))
            found.extend(entry[2] for entry in self.up[:n])
        if self.down:
            k = bisect_left(self.down, (low, -1))
            found.extend(entry[2] for entry in self.down[k:])
        if len(found) > 1:
            found.sort(key=_by_id)
        return found

    def __len__(self) -> int:
        return len(self.where)


def _by_id(order: Order) -> int:
    return order.id

