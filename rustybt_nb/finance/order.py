"""Orders, their statuses, and the one place where an order's state changes.

Every change of an order goes through :func:`apply_event`, which

1. looks the (current status, event kind) pair up in :data:`TRANSITIONS` — a pair that
   is not in the table is a bug in the engine and raises :class:`InvalidTransition`;
2. applies the event's changes (fill quantity and price, new amount / limit / stop);
3. appends an :class:`OrderEvent` (with the reason) to the order and to the run's log.

So the event log is complete: replaying it rebuilds every order's final state
(:func:`replay_events`), and it is the single source the notebook views read.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, NamedTuple

from ..assets import Asset


class ORDER_STATUS(StrEnum):  # noqa: N801 - the Zipline name users import
    """Order status. A ``str`` enum: ``status == ORDER_STATUS.OPEN`` and
    ``status == 'open'`` are both true for an open order."""

    OPEN = "open"
    HELD = "held"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partial"
    FILLED = "filled"
    CANCELED = "canceled"
    CANCELLED = "canceled"  # alias (same member as CANCELED)
    REJECTED = "rejected"
    EXPIRED = "expired"


S = ORDER_STATUS
#: The one list of which statuses are live (the order can still fill or change) and which
#: are final, each in lifecycle order (a bracket exit is held before it works).
LIVE_STATUSES: tuple[ORDER_STATUS, ...] = (S.HELD, S.OPEN, S.TRIGGERED, S.PARTIALLY_FILLED)
TERMINAL_STATUSES: tuple[ORDER_STATUS, ...] = (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED)
#: The engine's membership tests (``order.status in LIVE``): sets of the members themselves,
#: so a test of an order's status finds it by identity.
LIVE = frozenset(LIVE_STATUSES)
TERMINAL = frozenset(TERMINAL_STATUSES)
#: The same statuses as the plain strings of the result frames, for the notebook views.
LIVE_NAMES: tuple[str, ...] = tuple(s._value_ for s in LIVE_STATUSES)
TERMINAL_NAMES: tuple[str, ...] = tuple(s._value_ for s in TERMINAL_STATUSES)
STATUS_NAMES: tuple[str, ...] = LIVE_NAMES + TERMINAL_NAMES


class EVENT(StrEnum):
    """Kinds of order events."""

    SUBMITTED = "submitted"  # accepted and working
    HELD = "held"  # accepted but waiting (bracket exit before its entry fills)
    REJECTED = "rejected"
    ACTIVATED = "activated"  # held -> working
    TRIGGERED = "triggered"  # a stop level was reached; the order now works as market/limit
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"  # the fill that completes the order
    CANCELED = "canceled"
    EXPIRED = "expired"
    UPDATED = "updated"  # amount / price / trail changed (modify, resize of a reduce-only exit)
    TRAILED = "trailed"  # a trailing stop's level moved


E = EVENT
NEW = None  # status of an order before its first event

#: (status before, event kind) -> status after. The only legal moves.
TRANSITIONS: dict[tuple[ORDER_STATUS | None, EVENT], ORDER_STATUS] = {
    (NEW, E.SUBMITTED): S.OPEN,
    (NEW, E.HELD): S.HELD,
    (NEW, E.REJECTED): S.REJECTED,
    (S.HELD, E.ACTIVATED): S.OPEN,
    (S.HELD, E.UPDATED): S.HELD,
    (S.HELD, E.CANCELED): S.CANCELED,
    (S.HELD, E.EXPIRED): S.EXPIRED,
    (S.HELD, E.REJECTED): S.REJECTED,
    (S.OPEN, E.TRIGGERED): S.TRIGGERED,
    (S.OPEN, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.OPEN, E.FILL): S.FILLED,
    (S.OPEN, E.CANCELED): S.CANCELED,
    (S.OPEN, E.EXPIRED): S.EXPIRED,
    (S.OPEN, E.REJECTED): S.REJECTED,
    (S.OPEN, E.UPDATED): S.OPEN,
    (S.OPEN, E.TRAILED): S.OPEN,
    (S.TRIGGERED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.TRIGGERED, E.FILL): S.FILLED,
    (S.TRIGGERED, E.CANCELED): S.CANCELED,
    (S.TRIGGERED, E.EXPIRED): S.EXPIRED,
    (S.TRIGGERED, E.UPDATED): S.TRIGGERED,
    (S.TRIGGERED, E.REJECTED): S.REJECTED,  # a fill that cannot be booked (cash would overflow)
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.UPDATED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.TRAILED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.REJECTED): S.REJECTED,
}


#: TRANSITIONS by event kind: kind -> {status before: status after} (one lookup per event)
_NEXT: dict[EVENT, dict[ORDER_STATUS | None, ORDER_STATUS]] = {k: {} for k in EVENT}
for (_before, _kind), _after in TRANSITIONS.items():
    _NEXT[_kind][_before] = _after
del _before, _kind, _after
#: member -> its plain ``str`` value (``member.value`` is a slow Python-level descriptor)
_PLAIN: dict[Any, str | None] = {None: None, **{m: m._value_ for m in ORDER_STATUS}, **{m: m._value_ for m in EVENT}}
_TRIGGERED, _TRAILED = E.TRIGGERED, E.TRAILED


class InvalidTransition(RuntimeError):
    """An event that the transition table does not allow (an engine bug)."""


class OrderEvent(NamedTuple):
    """One change of one order. ``qty``/``price`` are the fill's signed quantity and
    price for fill events, else NaN. ``amount``/``filled``/``limit``/``stop`` are the
    order's values *after* the event."""

    seq: int
    order_id: int
    dt: Any
    bar: int
    kind: str
    status_before: str | None
    status_after: str
    qty: float
    price: float
    reason: str
    amount: float
    filled: float
    limit: float | None
    stop: float | None


NAN = math.nan
_new_event = tuple.__new__  # builds an OrderEvent without NamedTuple's Python-level __new__


class Order:
    """A working or finished order.

    ``amount`` and ``filled`` are signed (negative = sell). ``limit`` / ``stop`` are the
    current levels (a trailing stop's ``stop`` is its current trailed level).
    ``events`` is the order's history, oldest first.
    """

    __slots__ = (
        "amount",
        "asset",
        "child_ids",
        "closed_at",
        "closed_bar",
        "commission",
        "created",
        "created_bar",
        "eligible_bar",
        "events",
        "fill_value",
        "filled",
        "good_till",
        "id",
        "limit",
        "limit_offset",
        "oco_ids",
        "parent_id",
        "reason",
        "reduce_only",
        "role",
        "status",
        "stop",
        "style",
        "tag",
        "tif",
        "trail_amount",
        "trail_atr",
        "trail_percent",
        "atr_window",
        "trail_reference",
        "triggered",
    )

    def __init__(
        self,
        id: int,
        asset: Asset,
        amount: float,
        style: str,
        created: Any,
        created_bar: int,
        limit: float | None = None,
        stop: float | None = None,
        tag: str | None = None,
    ) -> None:
        self.id = id
        self.asset = asset
        self.amount = amount
        self.filled = 0
        self.limit = limit
        self.stop = stop
        self.created = created
        self.created_bar = created_bar
        self.eligible_bar = created_bar + 1
        self.commission = 0.0
        self.status: ORDER_STATUS | None = NEW
        self.reason = ""
        self.style = style
        self.parent_id: int | None = None
        self.child_ids: list[int] = []
        self.oco_ids: list[int] = []
        self.trail_amount: float | None = None
        self.trail_percent: float | None = None
        self.trail_atr: float | None = None  # a multiple of the ATR over atr_window bars
        self.atr_window: int | None = None
        self.limit_offset: float | None = None
        self.trail_reference: str | None = None
        self.triggered = False
        self.tif = "GTC"
        self.good_till: Any = None
        self.tag = tag
        self.role: str | None = None  # 'entry' / 'stop_loss' / 'take_profit' for bracket legs
        self.reduce_only = False
        self.fill_value = 0.0  # sum of |qty| * price over fills
        self.events: list[OrderEvent] = []
        self.closed_at: Any = None
        self.closed_bar = -1  # bar of the terminal event (-1: still live, or closed before the first bar)

    # ---------------------------------------------------------------- views
    @property
    def open_amount(self) -> float:
        """Signed quantity still to fill (Zipline's name)."""
        return self.amount - self.filled

    remaining = open_amount

    @property
    def is_buy(self) -> bool:
        return self.amount > 0

    @property
    def direction(self) -> int:
        return 1 if self.amount > 0 else -1

    @property
    def open(self) -> bool:
        return self.status in LIVE

    is_open = open

    @property
    def avg_fill_price(self) -> float:
        return self.fill_value / abs(self.filled) if self.filled else NAN

    @property
    def dt(self) -> Any:
        """Time of the order's last event."""
        return self.events[-1].dt if self.events else self.created

    @property
    def sid(self) -> int:
        return self.asset.sid

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "asset": self.asset.symbol,
            "style": self.style,
            "amount": self.amount,
            "filled": self.filled,
            "limit": self.limit,
            "stop": self.stop,
            "status": str(self.status),
            "reason": self.reason,
            "created": self.created,
            "closed_at": self.closed_at,
            "avg_fill_price": self.avg_fill_price,
            "commission": self.commission,
            "parent_id": self.parent_id,
            "child_ids": list(self.child_ids),
            "oco_ids": list(self.oco_ids),
            "role": self.role,
            "trail_amount": self.trail_amount,
            "trail_percent": self.trail_percent,
            "limit_offset": self.limit_offset,
            "tif": self.tif,
            "good_till": self.good_till,
            "tag": self.tag,
        }

    def __repr__(self) -> str:
        price = ""
        if self.limit is not None:
            price += f", limit={self.limit:g}"
        if self.stop is not None:
            price += f", stop={self.stop:g}"
        return (
            f"Order(id={self.id}, {self.asset.symbol}, {self.style}, amount={self.amount:g}, "
            f"filled={self.filled:g}{price}, status={self.status!s})"
        )


def apply_event(
    order: Order,
    kind: EVENT,
    dt: Any,
    bar: int,
    reason: str,
    log: list[OrderEvent],
    qty: float = 0,
    price: float = NAN,
    commission: float | None = None,
    **changes: Any,
) -> OrderEvent:
    """Apply one event to ``order``: the single mutator of order state.

    ``qty``/``price`` are a fill's signed quantity and price and ``commission`` the
    order's commission after it (fill events only). ``changes`` are new attribute values
    (``amount``, ``limit``, ``stop``, ...) for ``UPDATED`` / ``TRAILED`` events. Raises
    :class:`InvalidTransition` if the table has no entry for (current status, kind).
    """
    before = order.status
    try:
        after = _NEXT[kind][before]  # TRANSITIONS[(before, kind)], without building the key
    except KeyError:
        raise InvalidTransition(
            f"order {order.id}: event {kind!s} is not allowed in status {before!s} ({reason})"
        ) from None
    if changes:
        for name, value in changes.items():
            setattr(order, name, value)
    if qty:
        order.filled += qty
        order.fill_value += abs(qty) * price
    if commission is not None:
        order.commission = commission
    if kind is _TRIGGERED:
        order.triggered = True
    order.status = after
    if reason or kind is not _TRAILED:
        order.reason = reason
    if after in TERMINAL:
        order.closed_at = dt
        order.closed_bar = bar if dt is not None else -1
    ev = _new_event(OrderEvent, (
        len(log), order.id, dt, bar, _PLAIN[kind], _PLAIN[before], _PLAIN[after],
        qty if qty else NAN, price, reason, order.amount, order.filled, order.limit, order.stop,
    ))
    order.events.append(ev)
    log.append(ev)
    return ev


def replay_events(events: list[OrderEvent]) -> dict[int, dict[str, Any]]:
    """Rebuild each order's final (status, amount, filled, limit, stop) from the log
    alone, checking every step against :data:`TRANSITIONS`."""
    state: dict[int, dict[str, Any]] = {}
    for ev in events:
        st = state.setdefault(ev.order_id, {"status": None, "filled": 0})
        before = None if st["status"] is None else ORDER_STATUS(st["status"])
        after = TRANSITIONS.get((before, EVENT(ev.kind)))
        if after is None or after.value != ev.status_after:
            raise InvalidTransition(f"event {ev.seq} of order {ev.order_id} does not replay: {ev}")
        if ev.qty == ev.qty:  # not NaN
            st["filled"] += ev.qty
        st.update(status=ev.status_after, amount=ev.amount, limit=ev.limit, stop=ev.stop)
    return state
