"""The order book: accepts, matches, expires, modifies and cancels orders.

Per-bar sequence for each asset with working orders (called by the simulation after
the bar is revealed and before the strategy sees it):

1. Every working order placed on an earlier bar is matched against the bar with the
   fill model (:mod:`.fill_rules`). Orders are filled in submission order; when one bar
   reaches several legs of the same OCO group (or both exits of a bracket), the
   ``same_bar`` policy picks the leg (see :mod:`.contingency`).
2. Each fill is capped by the slippage model's volume limit (shared by the asset's
   orders on that bar), priced with slippage (limit orders never beyond their limit),
   charged commission and booked in the ledger; then the contingency rules run.
3. Trailing stops that are still working move their level from this bar (never
   loosened).
4. GTD orders for which this was the last bar on or before their ``good_till`` expire
   (so the strategy sees them expired on that bar, not one bar later).

DAY orders expire at the end of the session in which they could first fill.

Orders that cannot stand are rejected when placed (:meth:`OrderBook.check_standalone`;
with ``max_leverage``, also :meth:`OrderBook.leverage_refusal`). A fill that would take
cash beyond ±1e300 or make it NaN is not booked: the order is rejected instead
(:meth:`OrderBook.guard_fills` arms that check for the runs that could produce one). When
the run ends, :meth:`OrderBook.close` makes placing, canceling, modifying and linking
orders raise: a result is read from the book's records.

Bars that cannot change anything are skipped: when one asset has only resting orders
(no market order, triggered stop or trailing stop; no GTD order) and the bar reaches
none of their levels, the book looks ahead in the price arrays for the first bar that
reaches one and sets :attr:`OrderBook.skip_to`; the simulation does not call
:meth:`OrderBook.process_bar` before that bar. Every event (a new order, a cancel, a
modification, a fill...) resets ``skip_to``, so the look-ahead only ever covers bars
with an unchanged set of orders and levels. The simulation also uses ``skip_to`` as its
one per-bar test for work besides ``handle_data``: after such a bar it sets it to the
first bar with anything to do (matching, a scheduled function; never, when no order
is live and nothing is scheduled), which the next event resets to 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..assets import Asset
from ..data.times import to_bar_time
from ..errors import AlgorithmError
from .commission import CommissionModel, NoCommission
from .contingency import Contingencies
from .execution import (
    MAX_SHARES,
    BracketOrder,
    ExecutionStyle,
    LimitOrder,
    MarketOrder,
    OCOOrder,
    StopLimitOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
    check_price,
    shown,
    too_many_shares,
)
from .fill_rules import (
    LIMIT_PRICED,
    NAN,
    TRAILING,
    match_close,
    match_ohlc,
    trail_level,
)
from .ledger import Ledger
from .level_index import LevelIndex
from .order import EVENT, LIVE, ORDER_STATUS, Order, OrderEvent, apply_event
from .slippage import NoSlippage, SlippageModel

E = EVENT
S = ORDER_STATUS
# Plain names for the members the per-order path uses: reading a member from an enum class
# costs about as much as a function call.
HELD, OPEN = S.HELD, S.OPEN
_SUBMITTED, _HELD, _REJECTED, _TRIGGERED, _TRAILED = E.SUBMITTED, E.HELD, E.REJECTED, E.TRIGGERED, E.TRAILED
_FILL, _PARTIAL_FILL = E.FILL, E.PARTIAL_FILL
_BASE_CAPACITY = SlippageModel.capacity
_BASE_SLIPPED_PRICE = SlippageModel.slipped_price
_BASE_COMMISSION = CommissionModel.calculate


class OrderBook:
    """All orders of one run (see the module docstring for the matching sequence)."""

    def __init__(
        self,
        store: Any,
        session_of_bar: np.ndarray,
        ledger: Ledger,
        *,
        fill_model: str = "ohlc",
        trail_reference: str = "high_low",
        same_bar: str = "stop_first",
        slippage: SlippageModel | None = None,
        commission: CommissionModel | None = None,
        max_leverage: float | None = None,
    ) -> None:
        self.store = store
        self.index = store.index
        self.session_of_bar = session_of_bar
        self.ledger = ledger
        self.fill_model = fill_model
        self.trail_reference = trail_reference
        self.slippage = slippage or NoSlippage()
        self.commission = commission or NoCommission()
        self.orders: dict[int, Order] = {}
        self.log: list[OrderEvent] = []
        self.working: list[list[Order]] = [[] for _ in store.assets]  # live orders per sid, by id
        self.levels: list[LevelIndex] = [LevelIndex() for _ in store.assets]  # what each bar must look at
        self.n_live = 0
        self._next_id = 1
        self._dt_bar, self._dt = -2, None  # the last bar's timestamp (events come in bursts per bar)
        self._n_bars = len(store.index)
        self._day_orders: list[Order] = []
        self._gtd_orders: list[Order] = []
        self._prices = [a["price"] for a in store.arrays]  # last traded price (close carried forward)
        self._last_valid: list[int] = store.last_valid.tolist()  # plain ints: compared once per order
        self._mvs = [tuple(memoryview(a[f]) for f in ("open", "high", "low", "close", "volume")) for a in store.arrays]
        self.skip_to = 0  # process_bar has nothing to do before this bar (see the module docstring)
        self._span = 32  # look-ahead window of the next skip, in bars (adapts to how far levels are)
        self._ohlc = fill_model == "ohlc"
        self._one_asset = len(store.assets) == 1
        self._market_reason = f"market order filled at the {'open' if self._ohlc else 'close'}"
        self.contingency = Contingencies(self, same_bar)
        self.log_sink: list[tuple[Any, str, str]] = []  # (dt, level, message): refusals the strategy should see
        self.max_leverage = max_leverage  # gross exposure / portfolio value an order may take (None: no limit)
        if max_leverage is not None:  # (no test per order when there is no limit)
            self.check_standalone = self._check_standalone_and_leverage  # type: ignore[method-assign]

    # ============================================================== helpers
    def dt_of(self, bar: int) -> Any:
        if bar == self._dt_bar:
            return self._dt
        dt = self.store.timestamp(bar) if 0 <= bar < self._n_bars else None
        self._dt_bar, self._dt = bar, dt
        return dt

    def last_price(self, asset: Asset, bar: int) -> float:
        if bar < 0:
            return NAN
        return float(self._prices[asset.sid][bar])

    def event(self, order: Order, kind: EVENT, bar: int, reason: str, qty: float = 0, price: float = NAN,
              commission: float | None = None, **kw: Any) -> OrderEvent:
        """Apply an event at ``bar``'s time (see :func:`.order.apply_event` for the
        arguments) and keep the working lists in step."""
        was_live = order.status in LIVE
        self.skip_to = 0
        dt = self._dt if bar == self._dt_bar else self.dt_of(bar)
        if kw:
            ev = apply_event(order, kind, dt, bar, reason, self.log, qty, price, commission, **kw)
        else:  # (a call without ** unpacking is much cheaper)
            ev = apply_event(order, kind, dt, bar, reason, self.log, qty, price, commission)
        is_live = order.status in LIVE
        if is_live or was_live:
            sid = order.asset.sid
            if is_live and not was_live:
                self.working[sid].append(order)
                self.n_live += 1
            elif not is_live:
                self.working[sid].remove(order)
                self.n_live -= 1
            if kind is not _TRAILED and 0 <= sid < len(self.levels):
                if is_live:
                    self.levels[sid].file(order)
                else:
                    self.levels[sid].remove(order)
        return ev

    # ============================================================== submit
    def submit(self, asset: Asset | None, amount: int, style: ExecutionStyle, bar: int, *,
               tag: str | None = None, unknown: str | None = None) -> Order:
        """Create the order(s) for ``style`` at ``bar`` (the bar the strategy is
        handling). Returns the primary order (a bracket's entry, an OCO's first leg).
        ``unknown`` is a rejection reason for an asset that is not in the data."""
        if isinstance(style, BracketOrder):
            return self.contingency.submit_bracket(asset, amount, style, bar, tag=tag, unknown=unknown)
        if isinstance(style, OCOOrder):
            return self.contingency.submit_oco(asset, amount, style, bar, tag=tag, unknown=unknown)
        order = self.create(asset, amount, style, bar, tag=tag)
        reason = unknown or self.check_standalone(order)
        if reason:
            self.event(order, _REJECTED, bar, reason)
        else:
            self.accept(order, bar)
        return order

    def create(self, asset: Asset | None, amount: int, style: ExecutionStyle, bar: int, *,
               tag: str | None = None) -> Order:
        """Build an order object (no event yet) from a simple style."""
        at = bar if bar >= 0 else 0
        dt = self._dt if at == self._dt_bar else self.dt_of(at)
        if asset is None:
            asset = Asset("?")
        limit = stop = None
        if type(style) is not MarketOrder:
            if isinstance(style, (LimitOrder, StopLimitOrder)):
                limit = style.limit_price
            if isinstance(style, (StopOrder, StopLimitOrder)):
                stop = style.stop_price
        tif = style.time_in_force
        order = Order(self._next_id, asset, amount, style.kind, dt, bar, limit, stop, tag)
        self._next_id += 1
        if tif != "GTC":
            order.tif = tif
            order.good_till = self._good_till(style.good_till) if tif == "GTD" else None
        self.orders[order.id] = order
        if type(style) is not MarketOrder and isinstance(style, TrailingStopOrder):
            order.trail_amount = style.trail_amount
            order.trail_percent = style.trail_percent
            if style.trail_atr is not None:
                order.trail_atr, order.atr_window = style.trail_atr, style.atr_window
            order.trail_reference = style.trail_reference or self.trail_reference
            if isinstance(style, TrailingStopLimitOrder):
                order.limit_offset = style.limit_offset
        return order

    def _good_till(self, value: Any) -> pd.Timestamp:
        """The bar time a GTD order's ``good_till`` means (the one rule of
        :mod:`rustybt_nb.data.times`: a day without a time of day lasts to its end)."""
        store = self.store
        return to_bar_time(value, arg="good_till", frequency=store.frequency, tz=store.tz, end=True)

    def check_standalone(self, order: Order) -> str:
        """Reason to reject a well-formed single order, or ''."""
        sid = order.asset.sid
        bar = order.created_bar
        if bar >= self._last_valid[sid]:
            return (f"no bars of {order.asset.symbol} after {self.dt_of(max(bar, 0))}: the order could never fill")
        if order.tif == "GTD" and order.good_till < self.index[min(bar + 1, len(self.index) - 1)]:
            return f"good_till {_when(order.good_till, self.store.tz)} is before the next bar"
        if order.style in TRAILING:
            ref = self.last_price(order.asset, bar)
            if ref != ref:
                return "no last price to start the trailing stop from"
            if order.trail_atr is not None:
                return self._atr_missing(order, bar)
        return ""

    def _atr_missing(self, order: Order, bar: int) -> str:
        """Why an ATR trail cannot be set at ``bar`` (too few bars yet), or ''."""
        if bar >= 0 and self.atr(order.asset.sid, order.atr_window)[bar] == \
                self.atr(order.asset.sid, order.atr_window)[bar]:
            return ""
        return (f"the ATR({order.atr_window}) of {order.asset.symbol} needs {order.atr_window} bars of it up to the "
                f"bar the order is placed on; place it later or use a shorter atr_window")

    def atr(self, sid: int, window: int) -> np.ndarray:
        """The average true range of asset ``sid`` over ``window`` bars at each bar
        (:meth:`BarStore.atr`: kept with the bars, so every run on them shares it)."""
        return self.store.atr(sid, window)

    def start_trailing(self, order: Order, reference: float, bar: int) -> str:
        """Set a trailing order's first level from ``reference`` (instead of the last close);
        why it cannot stand, or ''."""
        if reference != reference:
            return "no price to start from"
        if order.trail_atr is not None:
            why = self._atr_missing(order, bar)
            if why:
                return why
        order.stop = self._level(order, reference, bar)
        if order.limit_offset is not None:
            order.limit = order.stop + order.limit_offset if order.is_buy else order.stop - order.limit_offset
            if order.limit <= 0:
                return f"its limit {order.limit:g} (the stop {order.stop:g} less the limit_offset) is not a price"
        if order.stop <= 0:
            return f"its level {order.stop:g} is not a price (the trail is larger than the price)"
        return ""

    def _level(self, order: Order, reference: float, bar: int) -> float:
        """The trailing level ``reference`` implies for ``order`` at ``bar``."""
        if order.trail_atr is None:
            return trail_level(order.amount > 0, reference, order.trail_amount, order.trail_percent)
        return trail_level(order.amount > 0, reference, order.trail_atr * self.atr(order.asset.sid,
                                                                                    order.atr_window)[bar], None)

    def _check_standalone_and_leverage(self, order: Order) -> str:
        """:meth:`check_standalone` and then :meth:`leverage_refusal` (the book's
        ``check_standalone`` when ``max_leverage`` is set)."""
        return OrderBook.check_standalone(self, order) or self.leverage_refusal(order, order.created_bar)

    def leverage_refusal(self, order: Order, bar: int, amount: float | None = None) -> str:
        """Why ``order`` (with ``amount`` instead of its own, for a modification) would take
        the gross exposure beyond ``max_leverage``, or ''.

        Exposure is the gross market value of the positions (the sum of their absolute
        values) over the portfolio value (cash + positions), everything at the last price.
        Working orders count at their worst: per asset, the position plus all working buys,
        or plus all working sells, whichever is larger in absolute value (held bracket exits
        and other reduce-only orders only shrink positions and are not counted). An order
        that does not raise that worst-case gross value (it reduces a position, or is
        covered by orders already working on the other side) is never refused."""
        limit = self.max_leverage
        if limit is None or order.reduce_only:
            return ""
        new_remaining = (order.amount if amount is None else amount) - order.filled
        ledger = self.ledger
        pv = ledger.cash
        gross_before = gross_after = 0.0
        touched = False
        for sid, working in enumerate(self.working):
            asset = self.store.assets[sid]
            pos = ledger.positions.get(asset)
            held = pos.amount if pos is not None else 0
            if not held and not working and asset is not order.asset:
                continue
            px = float(self._prices[sid][bar]) if bar >= 0 else NAN
            if px != px and pos is not None:
                px = pos._fill_price
            buys = sells = 0.0
            for o in working:
                if o is order or o.reduce_only or o.status is HELD:
                    continue
                rem = o.amount - o.filled
                if rem > 0:
                    buys += rem
                else:
                    sells += rem
            before = max(abs(held + buys), abs(held + sells))
            if asset is order.asset:
                touched = True
                if px != px:
                    px = order.limit if order.limit is not None else (order.stop if order.stop is not None else NAN)
                    if px != px:
                        return (f"max_leverage={limit:g}: no last price of {asset.symbol} yet to check the order "
                                "against")
                if new_remaining > 0:
                    buys += new_remaining
                else:
                    sells += new_remaining
            after = max(abs(held + buys), abs(held + sells))
            if px != px:  # an asset without any price yet: nothing held there can be valued
                continue
            pv += held * px
            gross_before += before * px
            gross_after += after * px
        if not touched or gross_after <= gross_before:
            return ""
        if not pv > 0:
            return (f"max_leverage={limit:g}: the portfolio value is {pv:,.2f}, so no order may add exposure "
                    f"(gross {gross_after:,.2f} at the last prices)")
        lev = gross_after / pv
        if lev <= limit * (1 + 1e-12):
            return ""
        return (f"max_leverage={limit:g}: the positions and working orders could reach {lev:.2f}x the portfolio "
                f"value {pv:,.2f} with this order (gross {gross_after:,.2f} at the last prices)")

    def accept(self, order: Order, bar: int, *, held: bool = False, reason: str = "") -> None:
        """Put an order to work (or hold it). Trailing stops get their first level from
        the last close."""
        if order.style in TRAILING and order.stop is None:
            self._init_trailing(order, bar)
        if held:
            self.event(order, _HELD, bar, reason or "held until its entry fills")
        else:
            self.event(order, _SUBMITTED, bar, reason or "accepted")
        tif = order.tif
        if tif == "GTC":
            return
        if tif == "DAY":
            self._day_orders.append(order)
        elif tif == "GTD":
            self._gtd_orders.append(order)

    def _init_trailing(self, order: Order, bar: int) -> None:
        ref = self.last_price(order.asset, bar)
        order.stop = self._level(order, ref, bar)
        if order.limit_offset is not None:
            order.limit = order.stop + order.limit_offset if order.is_buy else order.stop - order.limit_offset

    # ============================================================== cancel / modify
    def cancel(self, order: Order, bar: int, reason: str = "canceled by the strategy") -> bool:
        """Cancel a live order now; returns False if it was already closed."""
        if order.status not in LIVE:
            self.warn(bar, f"cancel_order({order.id}) ignored: the order is already {order.status}")
            return False
        self.event(order, E.CANCELED, bar, reason)
        self.contingency.on_closed(order, bar)
        return True

    def warn(self, bar: int, message: str) -> None:
        self.log_sink.append((self.dt_of(max(bar, 0)), "WARNING", message))

    def modify(self, order: Order, bar: int, *, amount: float | None = None, limit_price: float | None = None,
               stop_price: float | None = None, trail_amount: float | None = None,
               trail_percent: float | None = None) -> bool:
        """Change a live order from the next bar on. A refusal leaves the order as it
        was, is logged as a warning, and returns False."""
        changes: dict[str, Any] = {}
        limit_price = check_price("limit_price", limit_price, allow_none=True)
        stop_price = check_price("stop_price", stop_price, allow_none=True)
        trail_amount = check_price("trail_amount", trail_amount, allow_none=True)
        trail_percent = check_price("trail_percent", trail_percent, allow_none=True)
        if trail_amount is not None and trail_percent is not None:
            raise ValueError("give only one of `trail_amount` and `trail_percent` to modify_order")

        def refuse(why: str) -> bool:
            self.warn(bar, f"modify_order({order.id}) refused: {why}; the order is unchanged")
            return False

        if order.status not in LIVE:
            return refuse(f"the order is {order.status}")
        if amount is not None:
            if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)):
                raise TypeError(f"`amount` must be a number, got {shown(amount)}")
            if amount != amount:
                raise ValueError("`amount` is NaN; pass the new total quantity")
            if not -_FLOAT_MAX <= amount <= _FLOAT_MAX:
                raise ValueError(f"`amount` must be a finite number of shares, got {shown(amount)}; pass the new "
                                 "total quantity")
            new = round(amount)
            if abs(new) > MAX_SHARES:
                return refuse(too_many_shares(new))
            if new == 0:
                return refuse("amount=0; use cancel_order() to stop an order")
            if (new > 0) != (order.amount > 0):
                if new < 0:
                    return refuse(f"amount={new} would flip a buy order to a sell")
                new = -new  # positive quantity given for a sell order
            if abs(new) < abs(order.filled):
                return refuse(f"amount {abs(new)} is below the {abs(order.filled):g} already filled")
            if abs(new) == abs(order.filled):
                return refuse(f"amount {abs(new)} equals what has filled; use cancel_order() for the rest")
            if new != order.amount:
                changes["amount"] = new
        if limit_price is not None:
            if order.limit is None:
                return refuse(f"a {order.style} order has no limit price")
            changes["limit"] = limit_price
        if stop_price is not None:
            if order.stop is None:
                return refuse(f"a {order.style} order has no stop price")
            if order.triggered and order.style != "trailing_stop":
                return refuse("the stop has already triggered")
            changes["stop"] = stop_price
        if trail_amount is not None or trail_percent is not None:
            if trail_percent is not None and trail_percent >= 1:
                raise ValueError(f"`trail_percent` is a fraction below 1 (0.05 = 5 %), got {trail_percent!r}")
            if order.style not in TRAILING:
                return refuse(f"a {order.style} order does not trail")
            changes["trail_amount"] = trail_amount
            changes["trail_percent"] = trail_percent
            if order.trail_atr is not None:  # a trail in price units or percent replaces an ATR trail
                changes["trail_atr"] = None
                changes["atr_window"] = None
        if not changes:
            return refuse("nothing to change")
        why = self.contingency.check_modify(order, changes, bar)
        if not why and "amount" in changes and self.max_leverage is not None:
            why = self.leverage_refusal(order, bar, changes["amount"])
        if why:
            return refuse(why)
        desc = ", ".join(f"{k}={v:g}" for k, v in changes.items() if v is not None)
        self.event(order, E.UPDATED, bar, f"modified: {desc}", **changes)
        if "trail_amount" in changes and order.status != S.HELD and not order.triggered:
            # re-anchor the level to the new trail but never loosen it
            self._trail(order, self.last_price(order.asset, bar), bar, basis="last close")
        return True

    # ============================================================== per bar
    def process_bar(self, i: int) -> bool | None:
        """Match every working order against bar ``i`` (see module docstring). Returns
        True when it looked ahead (``skip_to`` is now past ``i``), else a false value.

        One asset has two shortcuts, taken on most bars of most strategies: only
        resting orders, none in reach of this bar; or one working trailing stop
        (``LevelIndex.lone``) that this bar does not reach, which is only ratcheted
        (``_ratchet`` and ``trail_level`` inlined, reading only the prices it needs, since
        this runs on every bar of a trailing strategy;
        ``test_lone_trailing_stop_shortcut_matches_the_general_path`` keeps the two
        in step)."""
        if self._one_asset:
            levels = self.levels[0]
            order = levels.lone
            if order is not None and order.eligible_bar <= i:
                _o, h_, l_, c_, _v = self._mvs[0]
                c = c_[i]
                if c != c:  # no bar here
                    return self._expire_gtd(i) if self._gtd_orders else None
                ohlc = self._ohlc
                stop = order.stop
                if order.amount > 0:
                    if ((h_[i] if ohlc else c) < stop):
                        ref = c if order.trail_reference != "high_low" or not ohlc else l_[i]
                        trail = order.trail_amount
                        new = ref + trail if trail is not None else ref + ref * order.trail_percent
                        if new < stop:
                            self._move_trail(order, new, ref, i, None)
                        return self._expire_gtd(i) if self._gtd_orders else None
                elif (l_[i] if ohlc else c) > stop:
                    ref = c if order.trail_reference != "high_low" or not ohlc else h_[i]
                    trail = order.trail_amount
                    new = ref - trail if trail is not None else ref - ref * order.trail_percent
                    if new > stop:
                        self._move_trail(order, new, ref, i, None)
                    return self._expire_gtd(i) if self._gtd_orders else None
            elif levels.where and not levels.every:
                _o, h_, l_, c_, _v = self._mvs[0]
                up, down = levels.up, levels.down
                if self._ohlc:
                    if (not up or h_[i] < up[0][0]) and (not down or l_[i] > down[-1][0]):
                        return self._expire_gtd(i) if self._gtd_orders else self._look_ahead(levels, i + 1)
                elif (not up or c_[i] < up[0][0]) and (not down or c_[i] > down[-1][0]):
                    return self._expire_gtd(i) if self._gtd_orders else self._look_ahead(levels, i + 1)
            if levels.where:
                self._match_asset(0, levels, i)
        else:
            for sid, levels in enumerate(self.levels):
                if levels.where:
                    self._match_asset(sid, levels, i)
        if self._gtd_orders:
            self._expire_gtd(i)

    def _look_ahead(self, levels: LevelIndex, start: int) -> bool:
        """Set ``skip_to`` to the first bar from ``start`` on that reaches a level of the
        (only) asset's resting orders, or to the end of the look-ahead window. False when
        there is no bar from ``start`` on (``skip_to`` unchanged)."""
        stop = min(start + self._span, self._n_bars)
        if stop <= start:
            return False
        arrays = self.store.arrays[0]
        up, down = levels.up, levels.down
        hit = None
        if up:
            hit = arrays["high" if self._ohlc else "close"][start:stop] >= up[0][0]
        if down:
            below = arrays["low" if self._ohlc else "close"][start:stop] <= down[-1][0]
            hit = below if hit is None else hit | below
        k = int(hit.argmax())
        if hit[k]:
            self.skip_to = start + k
            self._span = max(32, self._span // 2)
        else:
            self.skip_to = stop
            self._span = min(4096, self._span * 2)
        return True

    def _match_asset(self, sid: int, levels: LevelIndex, i: int) -> None:
        """Fill (or trigger) the working orders of asset ``sid`` that bar ``i`` reaches, in
        submission order; then ratchet its working trailing stops."""
        o_, h_, l_, c_, v_ = self._mvs[sid]
        ohlc = self._ohlc
        every = levels.every
        up, down = levels.up, levels.down
        if not every:  # only resting orders: leave at once when no level is in reach
            if ohlc:
                h, lo = h_[i], l_[i]
            else:
                h = lo = c_[i]
            if (not up or h < up[0][0]) and (not down or lo > down[-1][0]):
                return
        c = c_[i]
        if c != c:  # the asset has no bar here
            return
        o = o_[i]
        if ohlc:
            h, lo = h_[i], l_[i]
        else:
            h = lo = c
        if len(every) == 1 and not up and not down and every[0].style == "market":
            # one working market order and nothing else (how most market orders fill): the
            # search below would find just it, untriggered, at the open (or the close)
            order = every[0]
            if order.eligible_bar > i:
                return
            found = ()
            candidates: list[tuple[Order, float]] = [(order, o if ohlc else c)]
        else:
            found = levels.reached(h, lo)
            candidates = []
        for order in found:
            if order.eligible_bar > i or order.status is HELD:
                continue
            style = order.style
            if style == "market":
                price, reached = (o if ohlc else c), False
            elif ohlc:
                price, reached = match_ohlc(style, order.amount > 0, order.triggered, order.stop, order.limit,
                                            o, h, lo, c)
            else:
                price, reached = match_close(style, order.amount > 0, order.triggered, order.stop, order.limit, c)
            if reached:
                order.triggered = True
                if style in LIMIT_PRICED:
                    if style == "trailing_stop_limit":
                        self.event(order, _TRIGGERED, i, f"stop {order.stop:.4f} reached; limit {order.limit:.4f} "
                                                         "is now working (frozen)")
                    else:
                        self.event(order, _TRIGGERED, i, f"stop {order.stop:.4f} reached; "
                                                         f"working as a limit at {order.limit:.4f}")
                elif price != price:
                    self.event(order, _TRIGGERED, i, f"stop {order.stop:.4f} reached")
            if price == price:
                candidates.append((order, price))
        if candidates:
            if len(candidates) > 1:
                candidates = self.contingency.resolve_same_bar(candidates, i, o, h, lo, c)
            slippage = self.slippage
            # the base model's capacity and price, without calling them, when the model keeps them
            uncapped = slippage.volume_limit is None and type(slippage).capacity is _BASE_CAPACITY
            unslipped = type(slippage).slipped_price is _BASE_SLIPPED_PRICE
            filled_on_bar = 0.0
            for order, price in candidates:
                if order.status not in LIVE:
                    continue  # closed by a sibling's fill earlier on this bar
                qty_abs = abs(order.amount - order.filled)
                if not uncapped:
                    qty_abs = min(qty_abs, slippage.capacity(v_[i], filled_on_bar))
                if qty_abs <= 0:
                    if order.triggered and order.status is OPEN:
                        self.event(order, _TRIGGERED, i, f"stop {order.stop:.4f} reached; no volume left on this "
                                                         "bar, fills from the next bar")
                    continue
                is_buy = order.amount > 0
                qty = qty_abs if is_buy else -qty_abs
                style = order.style
                fill_price = price if unslipped else slippage.slipped_price(price, is_buy, qty, v_[i], filled_on_bar)
                if style in LIMIT_PRICED:
                    fill_price = min(fill_price, order.limit) if is_buy else max(fill_price, order.limit)
                filled_on_bar += qty_abs
                self.fill(order, qty, fill_price, i, v_[i],
                          self._market_reason if style == "market" else self._fill_reason(order, price, o))
        every = levels.every
        trailing = [order for order in every if order.style in TRAILING and not order.triggered
                    and order.eligible_bar <= i] if every else ()
        for order in trailing:  # after the loop over `every`: a moved level is an event
            if order.status in LIVE:
                self._ratchet(order, h, lo, c, i)

    def _fill_reason(self, order: Order, price: float, o: float) -> str:
        style = order.style
        if style == "limit" or (order.triggered and style in LIMIT_PRICED):
            gap = price == o and self.fill_model == "ohlc" and price != order.limit
            return f"limit {order.limit:.4f} reached" + (" (gap: filled at the open)" if gap else "")
        gap = price == o and self.fill_model == "ohlc" and price != order.stop
        return f"stop {order.stop:.4f} reached" + (" (gap: filled at the open)" if gap else "")

    def fill(self, order: Order, qty: float, price: float, bar: int, bar_volume: float, reason: str,
             commission: float | None = None) -> None:
        """Book one fill of ``order`` and run the contingency rules (``commission``: the
        model's charge, when already computed)."""
        if commission is None:
            model = self.commission
            commission = 0.0 if type(model).calculate is _BASE_COMMISSION else model.calculate(order, qty, price)
        contingency = self.contingency
        if contingency._notes:
            note = contingency.same_bar_note(order.id)
            if note:
                reason = f"{reason} ({note})"
        complete = order.filled + qty == order.amount
        self.event(order, _FILL if complete else _PARTIAL_FILL, bar, reason, qty, price, order.commission + commission)
        self.ledger.apply_fill(order.id, order.asset, qty, price, commission, self._dt, bar, bar_volume)
        if order.child_ids or order.oco_ids or self.working[order.asset.sid]:
            contingency.on_fill(order, qty, bar)  # (nothing to do for a lone order with nothing else working)

    def guard_fills(self) -> None:
        """Check each fill's cash before booking it (:meth:`_checked_fill`) when a fill could
        make it NaN or overflow: a cost model other than none (a model of the user's may
        return NaN; a large cost parameter may overflow), prices above 1e270, or cash above
        1e290. Otherwise no fill can (at most 2**53 shares at most 1e270 each, ~1e286, stays far
        below the 1e300 the check allows), and fills skip the test. Called once per run, after
        ``initialize`` (which may set the models)."""
        plain = (type(self.commission).calculate is _BASE_COMMISSION
                 and type(self.slippage).slipped_price is _BASE_SLIPPED_PRICE)
        if plain and abs(self.ledger.cash) < 1e290:
            top = max((float(np.fmax.reduce(a["high"])) for a in self.store.arrays if len(a["high"])), default=0.0)
            if top < 1e270:  # (NaN when an asset has no bar: then checked)
                return
        self.fill = self._checked_fill  # type: ignore[method-assign]

    def _checked_fill(self, order: Order, qty: float, price: float, bar: int, bar_volume: float,
                      reason: str) -> None:
        """:meth:`fill`, unless the fill would take cash beyond ±``_MAX_CASH`` or make it NaN:
        then the order is rejected with the reason and nothing is booked."""
        model = self.commission
        commission = 0.0 if type(model).calculate is _BASE_COMMISSION else model.calculate(order, qty, price)
        if not -_MAX_CASH < self.ledger.cash - qty * price - commission < _MAX_CASH:
            self._refuse_fill(order, qty, price, commission, bar)
            return
        OrderBook.fill(self, order, qty, price, bar, bar_volume, reason, commission)

    def _refuse_fill(self, order: Order, qty: float, price: float, commission: float, bar: int) -> None:
        """Reject ``order`` instead of booking a fill whose cash is not a finite number."""
        if commission != commission or abs(commission) == math.inf:
            why = f"the commission model returned {commission!r}"
        elif price != price:
            why = f"the price is {price!r}"
        else:
            why = (f"cash {self.ledger.cash:g} - {qty:g} x {price:g} would be beyond ±{_MAX_CASH:g}, where sums of "
                   "cash and positions overflow")
        self.event(order, _REJECTED, bar, f"fill of {qty:+g} at {price:g} refused: {why}; the order is rejected "
                                          "and nothing was booked")
        self.contingency.on_closed(order, bar)

    def close(self) -> None:
        """End of the run: from now on placing, canceling, modifying or linking orders raises
        (the result is built from the book's records, which must not change any more)."""
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AlgorithmError(
                "the backtest is over (analyze() reads the finished result): orders can no longer be placed, "
                "canceled, modified or linked; trade from initialize, handle_data, before_trading_start or a "
                "scheduled function")

        self.submit = self.cancel = self.modify = refuse  # type: ignore[method-assign]
        self.contingency.link_oco = refuse  # type: ignore[method-assign]

    def _ratchet(self, order: Order, h: float, lo: float, c: float, bar: int) -> None:
        """Move a working trailing stop toward this bar's price (high/low or close)."""
        buy = order.amount > 0
        ref = (lo if buy else h) if order.trail_reference == "high_low" else c
        if ref != ref:
            return
        new = self._level(order, ref, bar)
        if (new < order.stop) if buy else (new > order.stop):  # tighter: move (else nothing happens)
            self._move_trail(order, new, ref, bar, None)

    def _trail(self, order: Order, ref: float, bar: int, basis: str | None = None) -> None:
        """Tighten the level to ``ref`` -/+ the trail if that is tighter (never loosen);
        every move is a TRAILED event. ``basis`` names ``ref`` in the reason (default: the
        bar price the order trails from)."""
        if ref != ref:
            return
        new = self._level(order, ref, bar)
        old = order.stop
        tighter = new < old if order.amount > 0 else new > old
        if tighter:
            self._move_trail(order, new, ref, bar, basis)

    def _move_trail(self, order: Order, new: float, ref: float, bar: int, basis: str | None) -> None:
        """The TRAILED event that moves ``order``'s level to ``new`` (from price ``ref``)."""
        if basis is None:
            basis = "close" if order.trail_reference == "close" else ("low" if order.amount > 0 else "high")
        reason = f"trailed to {new:.4f} from {basis} {ref:.4f}"
        if order.trail_atr is not None:  # (the distance of an ATR trail changes: say which one it used)
            atr = self.atr(order.asset.sid, order.atr_window)[bar]
            reason += f" ({order.trail_atr:g} x ATR({order.atr_window}) {atr:.4f})"
        # self.event(...) without its bookkeeping: a move keeps the order's status and filing
        dt = self._dt if bar == self._dt_bar else self.dt_of(bar)
        if order.limit_offset is None:
            apply_event(order, _TRAILED, dt, bar, reason, self.log, stop=new)
        else:
            limit = new + order.limit_offset if order.amount > 0 else new - order.limit_offset
            apply_event(order, _TRAILED, dt, bar, reason, self.log, stop=new, limit=limit)

    # ============================================================== expiry
    def _expire_gtd(self, i: int) -> None:
        """Expire, at bar ``i``, the GTD orders for which ``i`` was the last bar they were good
        for (the next bar is after their ``good_till``)."""
        index = self.index
        last = i + 1 >= len(index)
        after = index[i] if last else index[i + 1]
        keep = []
        for order in self._gtd_orders:
            if order.status not in LIVE:
                continue
            if (order.good_till <= after) if last else (order.good_till < after):
                self.event(order, E.EXPIRED, i, f"good till {_when(order.good_till, self.store.tz)}: expired after "
                                                "its last bar")
                self.contingency.on_closed(order, i)
            else:
                keep.append(order)
        self._gtd_orders = keep

    def end_session(self, session: int, bar: int) -> None:
        """Expire DAY orders whose session ends with ``bar``."""
        if not self._day_orders:
            return
        keep = []
        for order in self._day_orders:
            if order.status not in LIVE:
                continue
            if self.session_of_bar[min(order.eligible_bar, len(self.session_of_bar) - 1)] <= session \
                    and order.eligible_bar <= bar:
                self.event(order, E.EXPIRED, bar, "DAY order expired at the end of the session")
                self.contingency.on_closed(order, bar)
            else:
                keep.append(order)
        self._day_orders = keep

    # ============================================================== queries
    def open_orders(self, asset: Asset | None = None) -> list[Order]:
        if asset is not None:
            return list(self.working[asset.sid]) if asset.sid < len(self.working) else []
        return [o for w in self.working for o in w]


_FLOAT_MAX = 1.7976931348623157e308
#: a fill that would take cash beyond ± this is refused: cash plus the positions' values must
#: stay far enough from the float limit (1.8e308) to be summed without overflowing
_MAX_CASH = 1e300


def _when(ts: pd.Timestamp, tz: str) -> str:
    """A ``good_till`` as text: the date alone for a whole day (midnight, or the last instant
    of a day that a date-only ``good_till`` means on minute bars), else the time; minute-bar
    times in the exchange's zone ``tz``, as the user gives them."""
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz)
    if ts == ts.normalize() or (ts + pd.Timedelta(microseconds=1)) == (ts + pd.Timedelta(microseconds=1)).normalize():
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M %Z").rstrip()
