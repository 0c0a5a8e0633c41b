"""``on_order_event`` and ``on_trade``: every event once, in log order, at the documented
moments; orders placed from a callback; the Zipline function form; nothing left undelivered."""

from __future__ import annotations

import pytest
from helpers import Scripted, bars

from rustybt_nb import Backtest, run_algorithm
from rustybt_nb.api import order, symbol
from rustybt_nb.callbacks import ClosedTrade, OrderUpdate
from rustybt_nb.finance.commission import PerShare
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder, TrailingStopOrder

ROWS = [(100, 101, 99, 100), (100, 102, 99.5, 101), (101, 104, 100.5, 103), (103, 104, 96, 97),
        (97, 98, 95, 96), (96, 99, 95.5, 98), (98, 100, 97, 99)]


class Watcher(Scripted):
    """Scripted, recording each callback with the phase of the strategy it came in."""

    def initialize(self, context):
        super().initialize(context)
        context.phase, context.handled, context.seen, context.trades = "initialize", -1, [], []

    def handle_data(self, context, data):
        context.phase = "handle_data"
        super().handle_data(context, data)
        context.handled = context.bar_no
        context.phase = "between"

    def on_order_event(self, context, event):
        assert isinstance(event, OrderUpdate)
        context.seen.append((event.seq, event.kind, event.bar, context.phase, context.handled))
        react = self.params.out.get("react")
        if react is not None:
            react(self, context, event)

    def on_trade(self, context, trade):
        assert isinstance(trade, ClosedTrade)
        context.trades.append((trade.exit_bar, trade.pnl, len(context.seen)))


def run_watcher(script, rows=ROWS, **kw):
    out = kw.pop("out", {})
    captured = {}

    def keep(algo, ctx):
        captured["ctx"] = ctx

    result = run_algorithm(Watcher, data=bars(rows), script=script, init=keep, out=out, **kw)
    return result, captured["ctx"]


def test_every_event_once_in_log_order_at_the_documented_moments():
    def enter(algo, ctx, data):
        algo.order(ctx.asset, 10, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=96.5,
                                                     take_profit_price=104.0))

    result, ctx = run_watcher({0: enter})
    assert [s[0] for s in ctx.seen] == result.order_events["seq"].tolist()
    for seq, kind, bar, phase, handled in ctx.seen:
        assert phase != "handle_data"  # never in the middle of handle_data
        if kind in ("submitted", "held"):  # the strategy's own call: right after handle_data(bar) returned
            assert handled == bar
        else:  # a bar's matching: before that bar's handle_data
            assert handled == bar - 1, (seq, kind, bar, handled)
    kinds = [s[1] for s in ctx.seen]
    assert kinds[:3] == ["submitted", "held", "held"] and "fill" in kinds and "canceled" in kinds


def test_fills_carry_quantity_price_and_commission():
    got = []

    def react(algo, ctx, event):
        if event.is_fill:
            got.append((event.id, event.qty, event.price, event.commission, event.asset, event.role, event.parent_id))
            assert event.tag == "swing"

    def enter(algo, ctx, data):
        algo.order(ctx.asset, 10, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=96.5,
                                                     take_profit_price=104.0), tag="swing")

    result, _ = run_watcher({0: enter}, out={"react": react}, commission=PerShare(cost=0.01, min_trade_cost=0))
    fills = result.fills
    assert [(g[0], g[1], g[2], g[3]) for g in got] == list(zip(fills["order_id"], fills["qty"], fills["price"],
                                                               fills["commission"]))
    assert got[0][5] == "entry" and got[1][5] in ("stop_loss", "take_profit") and got[1][6] == 1


def test_orders_placed_from_a_callback_are_timed_as_from_handle_data():
    """On the entry's fill, place a trailing stop: it is first matched on the next bar."""
    def react(algo, ctx, event):
        if event.kind == "fill" and event.id == 1:
            ctx.out["stop"] = algo.order(ctx.asset, -10, style=TrailingStopOrder(trail_amount=3.0))

    def enter(algo, ctx, data):
        algo.order(ctx.asset, 10)

    out = {"react": react}
    result, ctx = run_watcher({0: enter}, out=out)
    orders = result.orders.set_index("id")
    assert orders.loc[2, "created_bar"] == 1 and orders.loc[2, "first_bar"] == 2
    ev = result.order_events
    submitted = ev[(ev["order_id"] == 2) & (ev["kind"] == "submitted")].iloc[0]
    assert submitted["bar"] == 1
    # its submission reached the callback too, right after the callback that placed it
    seqs = [s[0] for s in ctx.seen]
    assert seqs == ev["seq"].tolist()


def test_closed_trades_reach_on_trade_after_their_events():
    def enter(algo, ctx, data):
        algo.order(ctx.asset, 10)

    def leave(algo, ctx, data):
        algo.order(ctx.asset, -10)

    result, ctx = run_watcher({0: enter, 3: leave})
    closed = result.trades[~result.trades["is_open"]]
    assert [(t[0], t[1]) for t in ctx.trades] == list(zip(closed["exit_bar"], closed["pnl"]))
    fill_seq = result.order_events[result.order_events["kind"] == "fill"]["seq"].iloc[-1]
    assert ctx.trades[0][2] == fill_seq + 1  # delivered once the closing fill's event was


def test_nothing_is_left_undelivered_when_the_run_ends():
    """A DAY order expires at the end of the last session, after the last handle_data."""
    def last(algo, ctx, data):
        algo.order(ctx.asset, 1, style=LimitOrder(1.0, time_in_force="DAY"))

    result, ctx = run_watcher({len(ROWS) - 2: last})
    assert [s[0] for s in ctx.seen] == result.order_events["seq"].tolist()
    assert ctx.seen[-1][1] == "expired"


def test_the_zipline_function_form():
    seen, trades = [], []

    def initialize(context):
        context.asset = symbol("X")
        context.done = False

    def handle_data(context, data):
        if not context.done:
            order(context.asset, 5)
            context.done = True

    def on_order_event(context, event):
        seen.append(event.kind)

    def on_trade(context, trade):
        trades.append(trade)

    result = run_algorithm(initialize=initialize, handle_data=handle_data, on_order_event=on_order_event,
                           on_trade=on_trade, data=bars(ROWS))
    assert seen == result.order_events["kind"].tolist() == ["submitted", "fill"]
    assert trades == []  # the position is still open


def test_a_strategy_without_callbacks_is_not_wrapped():
    backtest = Backtest(Scripted, data=bars(ROWS))
    assert backtest._simulation({}).notifier is None
    assert Backtest(Watcher, data=bars(ROWS))._simulation({}).notifier is not None


def test_an_error_in_a_callback_stops_the_run_with_the_partial_result():
    def react(algo, ctx, event):
        if event.kind == "fill":
            raise RuntimeError("no")

    def enter(algo, ctx, data):
        algo.order(ctx.asset, 10)

    with pytest.raises(RuntimeError, match="no") as info:
        run_watcher({0: enter}, out={"react": react})
    assert info.value.partial_result.run_info["completed"] is False
