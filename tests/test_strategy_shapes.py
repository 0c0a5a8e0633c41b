"""Strategies in the shape researchers write them (subclass methods, helpers taking
``context``, scheduled methods, status checks, modify, OCO links, partial-fill handling,
pyramiding, scaling out), run on the embedded AAPL data, daily and minute.

Each strategy asserts through the result that the feature it uses actually worked.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.finance.execution import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    OCOOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
)
from rustybt_nb.finance.order import ORDER_STATUS
from rustybt_nb.finance.slippage import VolumeShareSlippage

DAILY = {"data": "AAPL", "start": "2011-06-01", "end": "2012-12-31"}
MINUTE = {"data": "AAPL", "data_frequency": "minute", "start": "2012-10-01", "end": "2012-10-12"}
MODES = [pytest.param(DAILY, id="daily"), pytest.param(MINUTE, id="minute")]


def kinds(result, oid=None):
    ev = result.order_events
    return ev["kind"].tolist() if oid is None else ev[ev["order_id"] == oid]["kind"].tolist()


# ---------------------------------------------------------------- helpers taking context
def limit_bracket(context, asset, entry, shares):
    return context.order(asset, shares, style=BracketOrder(entry_price=entry, entry_style=LimitOrder(entry),
                                                           stop_loss_price=entry * 0.97,
                                                           take_profit_price=entry * 1.04))


def short_bracket(context, asset, entry, shares):
    return context.order(asset, -shares, style=BracketOrder(entry_price=entry, stop_loss_price=entry * 1.03,
                                                            take_profit_price=entry * 0.96))


def atr_trailing_exit(context, data, asset, shares, mult=2.0):
    high = data.history(asset, "high", 14, "1d")
    low = data.history(asset, "low", 14, "1d")
    prev_close = data.history(asset, "close", 15, "1d").shift(1).iloc[1:]
    true_range = np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))
    return context.order(asset, -shares, style=TrailingStopOrder(trail_amount=float(true_range.mean()) * mult))


class Brackets(TradingAlgorithm):
    """Alternates long limit-entry brackets and short brackets whenever flat."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.n = 0

    def handle_data(self, context, data):
        if context.portfolio.positions[context.asset].amount == 0 and not self.get_open_orders(context.asset):
            px = data.current(context.asset, "price")
            ticket = limit_bracket(context, context.asset, px * 0.999, 50) if context.n % 2 == 0 \
                else short_bracket(context, context.asset, px, 50)
            context.n += 1
            self.record(style=MarketOrder(), entry=px, last_ticket=int(ticket))


@pytest.mark.parametrize("kw", MODES)
def test_brackets_from_helper_functions(kw):
    result = run_algorithm(Brackets, **kw)
    roles = result.orders.groupby("role")["status"].value_counts()
    assert roles.loc[("entry", "filled")] >= 2
    assert (result.orders["status"] != "rejected").all()
    assert result.perf["style"].iloc[-1] == "MarketOrder()"  # a recorded object is kept as its text
    shorts = result.trades[result.trades["direction"] == "short"]
    assert len(shorts) >= 1


class Breakout(TradingAlgorithm):
    """A scheduled method places a buy stop over resistance and a sell stop under support,
    linked one-cancels-other; alternately with the OCOOrder style."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.use_style = False
        self.schedule_function(self.check, date_rules=self.date_rules.every_day(),
                               time_rules=self.time_rules.market_open(minutes=1))

    def check(self, context, data):
        if context.portfolio.positions[context.asset].amount != 0:
            self.order_target(context.asset, 0)
            return
        if self.get_open_orders(context.asset):
            return
        closes = data.history(context.asset, "close", 10, "1d")
        up, down = closes.max() * 1.001, closes.min() * 0.999
        if context.use_style:
            self.order(context.asset, 20, style=OCOOrder(order1=StopOrder(up), order2=StopOrder(down)))
        else:
            buy = self.order(context.asset, 20, style=StopOrder(up))
            sell = self.order(context.asset, -20, style=StopOrder(down))
            buy.add_oco_sibling(sell)
        context.use_style = not context.use_style


@pytest.mark.parametrize("kw", MODES)
def test_breakout_pairs_cancel_each_other(kw):
    result = run_algorithm(Breakout, **kw)
    orders = result.orders.set_index("id")
    pairs = orders[orders["oco_ids"].map(len) > 0]
    assert len(pairs) >= 2
    for oid, o in pairs.iterrows():
        sib = orders.loc[o["oco_ids"][0]]
        assert not (o["filled"] and sib["filled"]), oid
        if o["status"] == "filled":
            assert sib["status"] == "canceled" and sib["reason"].startswith(f"OCO sibling #{oid}")


class TrailingExits(TradingAlgorithm):
    """Enters on a moving-average signal and exits with one of the trailing variants,
    reading the live level from the open orders."""

    params = {"variant": "percent"}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.exit_id = None

    def handle_data(self, context, data):
        pos = context.portfolio.positions[context.asset]
        if pos.amount == 0 and not self.get_open_orders(context.asset):
            closes = data.history(context.asset, "close", 30, "1d")
            if closes.iloc[-5:].mean() > closes.mean():
                self.order(context.asset, 40, style=MarketOrder())
                v = self.params.variant
                if v == "percent":
                    style = TrailingStopOrder(trail_percent=0.03)
                elif v == "amount":
                    style = TrailingStopOrder(trail_amount=2.0)
                elif v == "limit":
                    style = TrailingStopLimitOrder(trail_percent=0.03, limit_offset=0.5)
                else:
                    context.exit_id = atr_trailing_exit(context, data, context.asset, 40)
                    return
                context.exit_id = self.order(context.asset, -40, style=style)
        elif context.exit_id is not None:
            live = self.get_open_orders(context.asset)
            if context.exit_id in live:
                self.record(trailing_stop=live[context.exit_id].stop, price=data.current(context.asset, "price"))
            else:
                context.exit_id = None


@pytest.mark.parametrize("variant", ["percent", "amount", "limit", "atr"])
def test_trailing_variants_trail_and_exit(variant):
    result = run_algorithm(TrailingExits, variant=variant, **DAILY)
    assert "trailed" in kinds(result)
    exits = result.orders[result.orders["style"].str.startswith("trailing")]
    assert (exits["status"] == "filled").sum() >= 1
    levels = result.perf["trailing_stop"].dropna()
    assert len(levels) > 5


class Tracker(TradingAlgorithm):
    """Places far limit orders and cancels those older than a day; logs each status."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        self.schedule_function(self.manage, date_rules=self.date_rules.every_day(),
                               time_rules=self.time_rules.market_open(minutes=1))

    def manage(self, context, data):
        if not self.get_open_orders():
            self.order(context.asset, 10, style=LimitOrder(data.current(context.asset, "price") * 0.9))
        for _asset, orders in self.get_open_orders().items():
            for oid, o in orders.items():
                self.log.info(f"order {oid}: {o.status} {o.amount} @ {o.limit or 'market'}")
                if o.status == ORDER_STATUS.OPEN and o.limit and \
                        context.get_datetime() - o.created > timedelta(hours=20):
                    self.cancel_order(o)


@pytest.mark.parametrize("kw", MODES)
def test_order_tracking_cancels_stale_limits(kw):
    result = run_algorithm(Tracker, **kw)
    assert (result.orders["status"] == "canceled").sum() >= 2
    assert result.logs["message"].str.contains(r"order \d+: open 10 @ \d", regex=True).any()


class PartialHandler(TradingAlgorithm):
    """A large order under a volume cap; partial orders are converted to market orders
    once they are old, or their limit is moved toward the price."""

    params = {"mode": "patient"}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        self.set_slippage(VolumeShareSlippage(volume_limit=0.00002, price_impact=0.0))
        context.placed = False

    def handle_data(self, context, data):
        if not context.placed:
            px = data.current(context.asset, "price")
            style = LimitOrder(px * 1.01) if self.params.mode == "adaptive" else MarketOrder()
            self.order(context.asset, 20_000, style=style)
            context.placed = True
        for _oid, o in self.get_open_orders(context.asset).items():
            if o.status != "partial":
                continue
            remaining = o.amount - o.filled
            if self.params.mode == "patient" and self.get_datetime() - o.created > timedelta(days=3):
                self.cancel_order(o)
                self.order(o.asset, remaining, style=MarketOrder())
            elif self.params.mode == "adaptive":
                self.cancel_order(o)
                new_limit = (o.limit + data.current(o.asset, "price")) / 2
                self.order(o.asset, remaining, style=LimitOrder(new_limit))


@pytest.mark.parametrize("mode", ["patient", "adaptive"])
def test_partial_fills_are_handled(mode):
    result = run_algorithm(PartialHandler, mode=mode, **DAILY)
    first = result.order_events[result.order_events["order_id"] == 1]
    assert "partial_fill" in first["kind"].tolist()
    assert first["status_after"].iloc[-1] == "canceled"
    assert len(result.orders) >= 2
    assert result.fills["qty"].sum() <= 20_000


class RaiseStop(TradingAlgorithm):
    """Buys, protects with a stop, and raises the stop (modify_order) as the price rises."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.stop_id = None
        context.high = None

    def handle_data(self, context, data):
        price = data.current(context.asset, "price")
        pos = context.portfolio.positions[context.asset]
        if pos.amount == 0:
            if not self.get_open_orders(context.asset):
                self.order(context.asset, 30)
                context.stop_id = self.order(context.asset, -30, style=StopOrder(price * 0.9))
                context.high = price
            return
        context.high = max(context.high, price)
        live = self.get_open_orders(context.asset)
        if context.stop_id in live and context.high * 0.95 > live[context.stop_id].stop:
            self.modify_order(live[context.stop_id], stop_price=context.high * 0.95)


def test_modify_raises_the_stop_and_keeps_the_id():
    result = run_algorithm(RaiseStop, **DAILY)
    updates = result.order_events[result.order_events["kind"] == "updated"]
    assert len(updates) >= 5
    first_stop = updates["order_id"].iloc[0]
    levels = updates[updates["order_id"] == first_stop]["stop"]
    assert levels.is_monotonic_increasing


class Pyramid(TradingAlgorithm):
    """Adds half the initial size each time the price gains 2 % over the last add."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.adds = []

    def handle_data(self, context, data):
        price = data.current(context.asset, "price")
        pos = context.portfolio.positions[context.asset]
        if pos.amount == 0 and not context.adds:
            self.order(context.asset, 100)
            context.adds = [(price, 100)]
        elif 0 < len(context.adds) < 4 and price >= context.adds[-1][0] * 1.02:
            self.order(context.asset, 50)
            context.adds.append((price, 50))
        if pos.amount:
            self.record(size=pos.amount, avg_cost=pos.cost_basis)


class ScaleOut(TradingAlgorithm):
    """Buys once, then sells a quarter at +3 %, +5 % and +8 % over the average cost."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.hit = [False, False, False]

    def handle_data(self, context, data):
        pos = context.portfolio.positions[context.asset]
        if pos.amount == 0 and not any(context.hit) and not self.get_open_orders(context.asset):
            self.order(context.asset, 400)
            return
        if pos.amount == 0:
            return
        gain = data.current(context.asset, "price") / pos.cost_basis - 1
        for i, level in enumerate((0.03, 0.05, 0.08)):
            if gain >= level and not context.hit[i]:
                self.order(context.asset, -100)
                context.hit[i] = True


def test_pyramiding_adds_and_averages_cost():
    result = run_algorithm(Pyramid, **DAILY)
    buys = result.fills[result.fills["qty"] > 0]
    assert buys["qty"].tolist()[:2] == [100, 50]
    assert result.perf["size"].max() == 250
    first_two = buys.iloc[:2]
    avg = (first_two["qty"] * first_two["price"]).sum() / 150
    assert result.perf.loc[result.perf["size"] == 150, "avg_cost"].iloc[0] == pytest.approx(avg)


def test_scaling_out_sells_quarters():
    result = run_algorithm(ScaleOut, **DAILY)
    sells = result.fills[result.fills["qty"] < 0]["qty"].tolist()
    assert sells == [-100, -100, -100]
    assert result.positions["amount"].iloc[-1] == 100
