"""Contingent orders — brackets and OCO groups — handled in one place.

Links are ids on the orders: a bracket entry lists its exits in ``child_ids`` and each
exit points back with ``parent_id``; the legs of an OCO group (and a bracket's two
exits) list each other in ``oco_ids``. The order book calls the hooks here after every
fill (:meth:`Contingencies.on_fill`), after every cancel / expiry
(:meth:`Contingencies.on_closed`), and when one bar could fill several legs of a group
(:meth:`Contingencies.resolve_same_bar`).

Rules:

* Bracket exits are ``held`` until the entry is completely filled and work from the
  next bar. If the entry ends (canceled / expired) after a partial fill, the exits are
  activated for the filled quantity. Canceling an unfilled entry cancels the exits;
  rejecting it rejects them.
* A bracket never leaves its entry unprotected: canceling a held exit while the entry
  still works cancels the entry too (and so the other exit; an entry that had partly
  filled activates the other exit for that part), each with the reason.
* ``link_oco`` refuses (logs and returns False) orders that are already closed, and legs
  of one bracket (the bracket links them already).
* Exits are reduce-only: after any fill of the asset they are resized to the position
  or canceled when the position is gone (or has flipped), so they never open a reverse
  position. A partial fill of one exit therefore shrinks the other; a complete fill
  cancels it.
* OCO legs: the first fill of a leg, even partial, cancels the other legs; canceling or
  expiring a leg cancels the others too.
* Same bar: when one bar reaches several legs of a group, the ``same_bar`` policy
  decides which fills: ``'stop_first'`` (a bracket's stop-loss; for plain OCO groups the
  earliest-submitted leg), ``'target_first'`` (a bracket's take-profit; OCO: earliest),
  or ``'path'`` (the leg whose level the bar reaches first, assuming the bar visits the
  extreme nearer its open first). The choice is written into the events' reasons.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from ..assets import Asset
from .execution import (
    MAX_SHARES,
    BracketOrder,
    ExecutionStyle,
    LimitOrder,
    OCOOrder,
    StopLimitOrder,
    StopOrder,
    check_amount,
    too_many_shares,
)
from .ledger import Ledger
from .order import EVENT, LIVE, ORDER_STATUS, Order, OrderEvent

E = EVENT
S = ORDER_STATUS
HELD = S.HELD
SAME_BAR_POLICIES = ("stop_first", "target_first", "path")
EXIT_ROLES = ("stop_loss", "take_profit")


class BookOperations(Protocol):
    """The order-book operations the contingency rules drive (what
    :class:`~rustybt_nb.finance.order_book.OrderBook` provides; the two are one component
    in two files, and this is the whole of what one asks of the other)."""

    orders: dict[int, Order]  # every order of the run, by id
    working: list[list[Order]]  # live orders per asset sid
    ledger: Ledger

    def create(self, asset: Asset | None, amount: int, style: ExecutionStyle, bar: int, *,
               tag: str | None = None) -> Order: ...
    def check_standalone(self, order: Order) -> str: ...
    def accept(self, order: Order, bar: int, *, held: bool = False, reason: str = "") -> None: ...
    def event(self, order: Order, kind: EVENT, bar: int, reason: str, qty: float = 0, price: float = ...,
              commission: float | None = None, **kw: Any) -> OrderEvent: ...
    def last_price(self, asset: Asset, bar: int) -> float: ...
    def warn(self, bar: int, message: str) -> None: ...


class Contingencies:
    """Bracket and OCO behaviour for one :class:`OrderBook`."""

    def __init__(self, book: BookOperations, same_bar: str) -> None:
        self.book = book
        self.same_bar = same_bar
        self._notes: dict[int, str] = {}  # order id -> same-bar note for its next event

    # ================================================================ submit
    def submit_bracket(self, asset: Asset | None, amount: int, style: BracketOrder, bar: int, *,
                       tag: str | None = None, unknown: str | None = None) -> Order:
        book = self.book
        entry_style = _with_tif(style.entry_style, style)
        entry = book.create(asset, amount, entry_style, bar, tag=tag)
        entry.role = "entry"
        exits: list[Order] = []
        if style.stop_loss_style is not None:
            exits.append(self._exit(entry, style.stop_loss_style, "stop_loss", tag))
        if style.take_profit_style is not None:
            exits.append(self._exit(entry, style.take_profit_style, "take_profit", tag))
        entry.child_ids = [x.id for x in exits]
        if len(exits) == 2:
            exits[0].oco_ids = [exits[1].id]
            exits[1].oco_ids = [exits[0].id]
        reason = unknown or book.check_standalone(entry) \
            or (style.entry_price is not None and self._entry_price_contradiction(entry, style)) \
            or self._bracket_geometry(entry, style, bar) or self._start_trailing_exits(entry, exits, bar)
        if reason:
            book.event(entry, E.REJECTED, bar, reason)
            for x in exits:
                book.event(x, E.REJECTED, bar, f"bracket rejected: {reason}")
            return entry
        book.accept(entry, bar, reason="bracket entry accepted")
        for x in exits:
            book.accept(x, bar, held=True, reason=f"{x.role.replace('_', '-')} held until entry #{entry.id} fills")
        return entry

    def _start_trailing_exits(self, entry: Order, exits: list[Order], bar: int) -> str:
        """Set the first level of a trailing exit (from the entry's limit or stop, else the
        placing bar's close: see :class:`~rustybt_nb.finance.execution.BracketOrder`); why it
        cannot stand, or ''. The level then waits, held, until the entry has filled."""
        for x in exits:
            if x.style not in ("trailing_stop", "trailing_stop_limit"):
                continue
            if entry.style == "limit":
                reference, what = entry.limit, "entry limit"
            elif entry.style in ("stop", "stop_limit"):
                reference, what = entry.stop, "entry stop"
            else:
                reference, what = self.book.last_price(entry.asset, bar), "close"
            why = self.book.start_trailing(x, reference, bar)
            if why:
                return f"the trailing {x.role.replace('_', '-')} cannot start from the {what} {reference:g}: {why}"
        return ""

    def _exit(self, entry: Order, style: Any, role: str, tag: str | None) -> Order:
        x = self.book.create(entry.asset, -entry.amount, style, entry.created_bar, tag=tag)
        x.role = role
        x.parent_id = entry.id
        x.reduce_only = True
        return x

    @staticmethod
    def _entry_price_contradiction(entry: Order, style: BracketOrder) -> str:
        """Why the bracket's ``entry_price`` (the reference its exits are checked against) is a
        price its own entry can never fill at, or ''. A buy limit fills at its limit or lower, a
        buy stop at its stop or higher (sells mirror); a stop-limit fills at its limit or better."""
        ref = style.entry_price
        if ref is None or entry.style == "market":
            return ""
        buy = entry.amount > 0
        if entry.limit is not None:  # limit, stop-limit
            if (ref > entry.limit) if buy else (ref < entry.limit):
                kind = entry.style.replace("_", "-")
                return (f"entry_price {ref:g} contradicts the {'buy' if buy else 'sell'} {kind} "
                        f"entry at {entry.limit:g}, which fills at {entry.limit:g} or "
                        f"{'lower' if buy else 'higher'}; give the entry's own limit (or leave entry_price out)")
        elif entry.stop is not None and ((ref < entry.stop) if buy else (ref > entry.stop)):
            return (f"entry_price {ref:g} contradicts the {'buy' if buy else 'sell'} stop entry at {entry.stop:g}, "
                    f"which fills at {entry.stop:g} or {'higher' if buy else 'lower'}; give the entry's own stop "
                    "(or leave entry_price out)")
        return ""

    def _entry_reference(self, entry: Order, style: BracketOrder | None, bar: int) -> tuple[float, str]:
        if entry.filled:
            return entry.avg_fill_price, "entry fill"
        if style is not None and style.entry_price is not None:
            return style.entry_price, "entry"
        if entry.style == "limit" or entry.style == "stop_limit":
            return entry.limit, "entry limit"
        if entry.style == "stop":
            return entry.stop, "entry stop"
        return self.book.last_price(entry.asset, bar), "last price"

    def _bracket_geometry(self, entry: Order, style: BracketOrder | None, bar: int,
                          stop_loss: float | None = None, take_profit: float | None = None,
                          reference: tuple[float, str] | None = None) -> str:
        """Why the bracket's prices are inconsistent, or ''. The exits are checked against the
        entry's reference price, or against ``reference`` (price, name) when given."""
        sl = stop_loss if stop_loss is not None else (style.stop_loss_price if style else None)
        tp = take_profit if take_profit is not None else (style.take_profit_price if style else None)
        ref, what = reference if reference is not None else self._entry_reference(entry, style, bar)
        problems = []
        if ref != ref:
            return "no last price to check the bracket against"
        long = entry.amount > 0
        side = "long" if long else "short"
        if sl is not None and (sl >= ref if long else sl <= ref):
            problems.append(f"stop-loss {sl:g} is {'above' if long else 'below'} the {what} {ref:g} "
                            f"(a {side} bracket's stop must be {'below' if long else 'above'} it)")
        if tp is not None and (tp <= ref if long else tp >= ref):
            problems.append(f"take-profit {tp:g} is {'below' if long else 'above'} the {what} {ref:g} "
                            f"(a {side} bracket's target must be {'above' if long else 'below'} it)")
        return "; ".join(problems)

    def submit_oco(self, asset: Asset | None, amount: int, style: OCOOrder, bar: int, *,
                   tag: str | None = None, unknown: str | None = None) -> Order:
        book = self.book
        legs: list[Order] = []
        notes: list[str] = []
        last = book.last_price(asset, bar) if asset is not None and unknown is None else float("nan")
        for leg in style.legs:
            if isinstance(leg, tuple):
                amt, leg_style = check_amount("OCO leg amount", leg[0]), leg[1]
                note = "OCO leg"
            else:
                leg_style = leg
                amt, note = self._infer_side(abs(amount), leg_style, last, amount)
            leg_style = _with_tif(leg_style, style)
            legs.append(book.create(asset, amt, leg_style, bar, tag=tag))
            notes.append(note)
        ids = [x.id for x in legs]
        for x in legs:
            x.oco_ids = [i for i in ids if i != x.id]
        reason = unknown or next((too_many_shares(x.amount) for x in legs if abs(x.amount) > MAX_SHARES), "") \
            or next((r for r in (book.check_standalone(x) for x in legs) if r), "")
        if not reason and any(x.amount == 0 for x in legs):
            reason = "an OCO leg has amount 0"
        if reason:
            for x in legs:
                book.event(x, E.REJECTED, bar, f"OCO group rejected: {reason}")
            return legs[0]
        for x, note in zip(legs, notes):
            book.accept(x, bar, reason=f"{note}, one-cancels-other with {x.oco_ids}")
        return legs[0]

    @staticmethod
    def _infer_side(qty: int, style: Any, last: float, amount: int) -> tuple[int, str]:
        if isinstance(style, (StopOrder, StopLimitOrder)) and last == last:
            buy = style.stop_price > last
            side, where = ("buy", "above") if buy else ("sell", "below")
            return (qty if buy else -qty), f"OCO leg: {side} stop ({where} the last price {last:g})"
        if isinstance(style, LimitOrder) and last == last:
            buy = style.limit_price < last
            side, where = ("buy", "below") if buy else ("sell", "above")
            return (qty if buy else -qty), f"OCO leg: {side} limit ({where} the last price {last:g})"
        return amount, "OCO leg"

    def link_oco(self, orders: list[Order], bar: int) -> bool:
        """Link already placed live orders into one OCO group."""
        closed = [o for o in orders if o.status not in LIVE]
        if closed:
            self.book.warn(bar, f"OCO link refused: order(s) {[o.id for o in closed]} are already closed")
            return False
        brackets: dict[int, list[int]] = {}
        for o in orders:
            if o.role is not None:
                brackets.setdefault(o.parent_id if o.parent_id is not None else o.id, []).append(o.id)
        same = next((ids for ids in brackets.values() if len(ids) > 1), None)
        if same:
            self.book.warn(bar, f"OCO link refused: orders {same} are legs of one bracket, which already links "
                                "them (its exits are one-cancels-other and wait for its entry)")
            return False
        group = {o.id for o in orders}
        for o in orders:
            group.update(o.oco_ids)
        members = [self.book.orders[i] for i in sorted(group)]
        for o in members:
            new = [i for i in sorted(group) if i != o.id]
            if new != o.oco_ids and o.status in LIVE:
                self.book.event(o, E.UPDATED, bar, f"linked one-cancels-other with {new}", oco_ids=new)
        return True

    # ================================================================ hooks
    def on_fill(self, order: Order, qty: float, bar: int) -> None:
        book = self.book
        if order.child_ids and order.status is S.FILLED:
            self._activate_exits(order, bar, f"entry #{order.id} filled")
        if order.oco_ids:
            is_exit = order.role in EXIT_ROLES
            if not is_exit or order.status is S.FILLED:
                note = self._notes.pop(order.id, "")
                what = "filled" if order.status is S.FILLED else "partially filled"
                for sid in order.oco_ids:
                    sib = book.orders[sid]
                    if sib.status in LIVE:
                        why = self._notes.pop(sib.id, "") or note
                        self._close(sib, bar, f"OCO sibling #{order.id} {what}" + (f" ({why})" if why else ""))
        self._clamp_reduce_only(order.asset, bar, order)

    def on_closed(self, order: Order, bar: int) -> None:
        """After ``order`` was canceled, expired or rejected."""
        book = self.book
        if order.parent_id is not None and book.orders[order.parent_id].status in LIVE:
            self._close_bracket(order, bar)
            return
        if order.child_ids:
            verb = {"canceled": "canceled", "expired": "expired", "rejected": "rejected"}.get(str(order.status), "")
            if order.filled:
                self._activate_exits(order, bar, f"entry #{order.id} {verb} after filling {abs(order.filled):g}; "
                                                 "protecting the filled part")
            else:
                for cid in order.child_ids:
                    child = book.orders[cid]
                    if child.status in LIVE:
                        book.event(child, E.CANCELED, bar, f"entry #{order.id} {verb} before any fill")
        for sid in order.oco_ids:
            sib = book.orders[sid]
            if sib.status in LIVE:
                self._close(sib, bar, f"OCO sibling #{order.id} {order.status}")

    def _close_bracket(self, exit_: Order, bar: int) -> None:
        """A held exit closed while its entry still works: the bracket would leave the entry
        unprotected, so the entry is canceled too, and with it the other exit (or, when the
        entry had partly filled, the other exit is activated for that part, as for any entry
        that ends after a partial fill)."""
        book = self.book
        entry = book.orders[exit_.parent_id]
        role = exit_.role.replace("_", "-") if exit_.role else "exit"
        book.event(entry, E.CANCELED, bar, f"bracket canceled: its {role} #{exit_.id} was {exit_.status} before "
                                           "the entry filled, which would leave the entry unprotected")
        self.on_closed(entry, bar)
        for sid in exit_.oco_ids:  # links other than the bracket's own exits
            sib = book.orders[sid]
            if sib.status in LIVE and sib.id not in entry.child_ids:
                self._close(sib, bar, f"OCO sibling #{exit_.id} {exit_.status}")

    def _close(self, order: Order, bar: int, reason: str) -> None:
        """Cancel ``order`` as a consequence of another order (no OCO cascade back);
        a canceled bracket entry still takes care of its exits, and a held exit (linked to
        other orders with ``link_oco``) takes its bracket with it."""
        book = self.book
        held = order.status is HELD  # (an exit waiting for its entry)
        book.event(order, E.CANCELED, bar, reason)
        if order.child_ids or (held and book.orders[order.parent_id].status in LIVE):
            self.on_closed(order, bar)

    def _activate_exits(self, entry: Order, bar: int, reason: str) -> None:
        book = self.book
        pos = book.ledger.positions.get(entry.asset)
        held = pos.amount if pos is not None else 0
        protect = entry.filled
        if held == 0 or (held > 0) != (protect > 0):
            protect = 0
        elif abs(held) < abs(protect):
            protect = held
        for cid in entry.child_ids:
            child = book.orders[cid]
            if child.status is not S.HELD:
                continue
            if protect == 0:
                book.event(child, E.CANCELED, bar, f"{reason}, but the position is already closed")
                continue
            book.event(child, E.ACTIVATED, bar, f"{reason}; working from the next bar", amount=-protect,
                       eligible_bar=bar + 1)

    def _clamp_reduce_only(self, asset: Asset, bar: int, cause: Order) -> None:
        """Resize or cancel working reduce-only exits after a fill of ``asset``. An exit
        may close at most the position, and a bracket's exits together at most what its
        entry filled (so they never close shares the bracket did not buy)."""
        book = self.book
        pos = book.ledger.positions.get(asset)
        held = pos.amount if pos is not None else 0
        for o in list(book.working[asset.sid]):
            if not o.reduce_only or o.status is S.HELD or o.status not in LIVE:
                continue
            remaining = o.amount - o.filled
            if held == 0 or (held > 0) == (remaining > 0):
                state = "closed" if held == 0 else ("long" if held > 0 else "short")
                book.event(o, E.CANCELED, bar, f"reduce-only exit: position {state} after order #{cause.id} filled")
                continue
            allowed, what = abs(held), "the position"
            if o.parent_id is not None:
                entry = book.orders[o.parent_id]
                left = abs(entry.filled) - sum(abs(book.orders[c].filled) for c in entry.child_ids)
                if left < allowed:
                    allowed, what = left, f"what is left of entry #{entry.id}"
            if allowed <= 0:
                book.event(o, E.CANCELED, bar, f"reduce-only exit: nothing left to close after order #{cause.id} "
                                               "filled")
            elif abs(remaining) > allowed:
                new_amount = o.filled + (allowed if remaining > 0 else -allowed)
                book.event(o, E.UPDATED, bar, f"reduce-only exit resized to {what} ({allowed:g}) "
                                              f"after order #{cause.id} filled", amount=new_amount)

    # ================================================================ same bar
    def same_bar_note(self, order_id: int) -> str:
        """The same-bar note for an order about to fill ('' if its bar was unambiguous)."""
        return self._notes.get(order_id, "")

    def resolve_same_bar(self, candidates: list[tuple[Order, float]], bar: int, o: float, h: float,
                         lo: float, c: float) -> list[tuple[Order, float]]:
        """Keep one leg per OCO group among orders that could fill on this bar."""
        groups: dict[int, list[tuple[Order, float]]] = {}
        for cand in candidates:
            order = cand[0]
            if order.oco_ids:
                groups.setdefault(min(order.id, *order.oco_ids), []).append(cand)
        losers: set[int] = set()
        for members in groups.values():
            if len(members) < 2:
                continue
            winner = self._pick(members, o, h, lo)
            desc = ", ".join(f"#{m.id} {m.role or m.style} at {p:g}" for m, p in members)
            note = f"same bar reached {desc}; same_bar='{self.same_bar}' chose #{winner[0].id}"
            self._notes[winner[0].id] = note
            for m, _ in members:
                if m is not winner[0]:
                    losers.add(m.id)
                    self._notes[m.id] = note
        if not losers:
            return candidates
        return [cand for cand in candidates if cand[0].id not in losers]

    def _pick(self, members: list[tuple[Order, float]], o: float, h: float, lo: float) -> tuple[Order, float]:
        policy = self.same_bar
        if policy in ("stop_first", "target_first"):
            want = "stop_loss" if policy == "stop_first" else "take_profit"
            for m in members:
                if m[0].role == want:
                    return m
            return min(members, key=lambda m: m[0].id)
        high_first = (h - o) <= (o - lo)

        def when(m: tuple[Order, float]) -> float:
            _order, price = m
            if price == o:
                return 0.0
            up = price > o
            if up == high_first:
                return abs(price - o)
            return (abs(h - o) if high_first else abs(o - lo)) + (h - lo) - abs((lo if high_first else h) - price)

        return min(members, key=lambda m: (when(m), m[0].id))

    # ================================================================ modify
    def check_modify(self, order: Order, changes: dict[str, Any], bar: int) -> str:
        """Why a modification would break a contingency (reduce-only size, bracket
        geometry), or ''.

        A bracket exit is checked against the entry's reference price while the entry has not
        filled; once it has, against the last price instead: a long bracket's stop-loss may then
        move to breakeven or above (locking in a profit) as long as it stays below the last
        price, where it would otherwise trigger at once, and the target stays above it."""
        book = self.book
        if order.reduce_only and "amount" in changes and order.status is not S.HELD:
            pos = book.ledger.positions.get(order.asset)
            held = pos.amount if pos is not None else 0
            remaining = changes["amount"] - order.filled
            if abs(remaining) > abs(held):
                return f"a reduce-only exit cannot exceed the position ({abs(held):g})"
        if order.role in EXIT_ROLES:
            entry = book.orders[order.parent_id]
            sl = tp = None
            for cid in entry.child_ids:
                child = book.orders[cid]
                if child.role == "stop_loss":
                    sl = changes.get("stop", child.stop) if child is order else child.stop
                else:
                    tp = changes.get("limit", child.limit) if child is order else child.limit
            reference = (book.last_price(order.asset, bar), "last price") if entry.filled else None
            why = self._bracket_geometry(entry, None, bar, stop_loss=sl, take_profit=tp, reference=reference)
            return f"it would make bracket #{entry.id} invalid: {why}" if why else ""
        if order.role == "entry" and order.child_ids and ("limit" in changes or "stop" in changes):
            if order.filled:
                return ""
            sl = tp = None
            for cid in order.child_ids:
                child = book.orders[cid]
                if child.role == "stop_loss":
                    sl = child.stop
                else:
                    tp = child.limit
            saved = (order.limit, order.stop)
            order.limit, order.stop = changes.get("limit", order.limit), changes.get("stop", order.stop)
            try:
                why = self._bracket_geometry(order, None, bar, stop_loss=sl, take_profit=tp)
            finally:
                order.limit, order.stop = saved
            return f"it would make bracket #{order.id} invalid: {why}" if why else ""
        return ""


def _with_tif(leg: ExecutionStyle, group: ExecutionStyle) -> ExecutionStyle:
    """``leg`` with the group's time in force when the leg has none of its own (GTC); a copy,
    so the caller's style object is never changed."""
    if leg.time_in_force != "GTC" or group.time_in_force == "GTC":
        return leg
    leg = copy.copy(leg)
    leg.time_in_force, leg.good_till = group.time_in_force, group.good_till
    return leg
