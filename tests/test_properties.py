"""Property tests: random bars and random sequences of orders, cancels and modifies.

Invariants checked on every run:
- an order never fills more than its amount, and fills keep its side;
- at most one leg of a plain OCO group fills;
- bracket exits never fill before their entry has filled, and together never fill more
  than the entry did;
- reduce-only exits never take the position through zero;
- terminal statuses stay terminal; every event is a legal transition and the event log
  replays to each order's final state;
- cash + positions value = portfolio value on every session, and positions value equals
  the sum of the held positions marked at the close; every value is a finite number;
- every event's order has a row (and every order has events), and the fills match the
  fill events one for one;
- a bracket entry never fills after one of its exits was canceled (a bracket never leaves
  its entry unprotected).

The random flows include sizes that are infinite (a ValueError the strategy catches) or
huge (rejected), canceled bracket exits and leverage; a second test interrupts runs at a
random bar (KeyboardInterrupt or an error in the strategy) and checks every invariant on
the partial result. ``PROPERTY_EXAMPLES`` raises the number of examples (default 60).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frame
from rustybt_nb.finance.execution import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    OCOOrder,
    StopLimitOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
)
from rustybt_nb.finance.order import TERMINAL, OrderEvent, replay_events
from rustybt_nb.finance.slippage import NoSlippage

N_BARS = 40
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))  # raise locally for a deeper search


@st.composite
def bar_frames(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.02, N_BARS)
    close = 100 * np.exp(np.cumsum(steps))
    gaps = rng.normal(0, 0.01, N_BARS) * (rng.random(N_BARS) < 0.2)
    open_ = np.r_[100.0, close[:-1]] * np.exp(gaps)
    spread = np.abs(rng.normal(0, 0.01, N_BARS)) + 0.001
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.integers(0, 400, N_BARS).astype(float)
    idx = pd.bdate_range("2021-01-04", periods=N_BARS)
    return pd.DataFrame({"open": open_.round(2), "high": high.round(2), "low": low.round(2),
                         "close": close.round(2), "volume": volume}, index=idx)


def _fix_ohlc(df: pd.DataFrame) -> pd.DataFrame:
    df["high"] = df[["open", "high", "low", "close"]].max(axis=1)
    df["low"] = df[["open", "high", "low", "close"]].min(axis=1)
    return df


ACTIONS = st.lists(
    st.tuples(
        st.integers(0, N_BARS - 2),  # bar at which the strategy acts
        st.sampled_from(["market", "limit", "stop", "stop_limit", "trail_amt", "trail_pct", "trail_limit",
                         "bracket_market", "bracket_limit", "bracket_stop", "oco", "cancel", "modify", "close",
                         "cancel_exit", "huge", "infinite", "lever", "trail_bracket", "trail_oto", "atr_trail"]),
        st.integers(-30, 30).filter(lambda x: x != 0),  # amount
        st.floats(0.9, 1.1),  # price factor vs the last close
        st.integers(0, 50),  # which earlier order to cancel/modify
    ),
    max_size=25,
)


class RandomTrader(TradingAlgorithm):
    params = {"actions": [], "interrupt": None}

    def initialize(self, context):
        context.asset = self.symbol("X")
        context.plan = {}
        for a in self.params.actions:
            context.plan.setdefault(a[0], []).append(a)
        context.bar = -1
        context.tickets = []

    def handle_data(self, context, data):
        context.bar += 1
        px = data.current(context.asset, "close")
        for _, kind, amount, f, pick in context.plan.get(context.bar, []):
            t = None
            if kind == "market":
                t = self.order(context.asset, amount, style=MarketOrder())
            elif kind == "limit":
                t = self.order(context.asset, amount, style=LimitOrder(px * f))
            elif kind == "stop":
                t = self.order(context.asset, amount, style=StopOrder(px * f))
            elif kind == "stop_limit":
                t = self.order(context.asset, amount, style=StopLimitOrder(px * f, px * (2 - f)))
            elif kind == "trail_amt":
                t = self.order(context.asset, amount, style=TrailingStopOrder(trail_amount=abs(f - 1) * px + 0.1))
            elif kind == "trail_pct":
                t = self.order(context.asset, amount, style=TrailingStopOrder(trail_percent=abs(f - 1) + 0.01))
            elif kind == "trail_limit":
                t = self.order(context.asset, amount, style=TrailingStopLimitOrder(
                    trail_percent=abs(f - 1) + 0.01, limit_offset=0.5))
            elif kind.startswith("bracket"):
                d = 1 if amount > 0 else -1
                entry = {"bracket_market": MarketOrder(), "bracket_limit": LimitOrder(px * (1 - 0.01 * d)),
                         "bracket_stop": StopOrder(px * (1 + 0.01 * d))}[kind]
                # sometimes deliberately inconsistent geometry (f < 1 flips the exits)
                sl, tp = px * (1 - 0.03 * d), px * (1 + 0.04 * d)
                if f < 0.93:
                    sl, tp = tp, sl
                t = self.order(context.asset, amount, style=BracketOrder(entry_style=entry, stop_loss_price=sl,
                                                                         take_profit_price=tp))
            elif kind in ("trail_bracket", "trail_oto"):  # a trailing stop-loss leg (with or without a target)
                d = 1 if amount > 0 else -1
                leg = TrailingStopOrder(trail_percent=abs(f - 1) + 0.01) if pick % 2 else \
                    TrailingStopLimitOrder(trail_amount=abs(f - 1) * px + 0.1, limit_offset=0.2)
                target = px * (1 + 0.05 * d) if kind == "trail_bracket" else None
                entry = MarketOrder() if pick % 3 else LimitOrder(px * (1 - 0.005 * d))
                t = self.order(context.asset, amount, style=BracketOrder(entry_style=entry, stop_loss_style=leg,
                                                                         take_profit_price=target))
            elif kind == "atr_trail":
                t = self.order(context.asset, amount, style=TrailingStopOrder(trail_atr=1 + f, atr_window=5))
            elif kind == "oco":
                t = self.order(context.asset, abs(amount), style=OCOOrder(order1=StopOrder(px * 1.02),
                                                                          order2=StopOrder(px * 0.98)))
            elif kind == "close":
                t = self.order_target(context.asset, 0)
            elif kind == "huge":  # well formed, cannot be booked: rejected with the reason
                t = self.order(context.asset, math.copysign(1e300, amount) * f)
                assert t.status == "rejected" and "more shares" in t.reason
            elif kind == "infinite":  # malformed: a ValueError naming the argument
                call = (self.order_value, self.order_percent, self.order_target, self.order_target_percent)[pick % 4]
                with pytest.raises(ValueError, match="must be a finite number"):
                    call(context.asset, math.copysign(math.inf, amount))
            elif kind == "lever":
                t = self.order_target_percent(context.asset, amount / 10)  # up to 300 %, long or short
            elif kind == "cancel_exit":
                exits = [i for tk in context.tickets for i in self.get_order(tk).child_ids
                         if self.get_order(i).open]
                if exits:
                    self.cancel_order(exits[pick % len(exits)])
            elif kind in ("cancel", "modify") and context.tickets:
                target = context.tickets[pick % len(context.tickets)]
                if kind == "cancel":
                    self.cancel_order(target)
                else:
                    o = self.get_order(target)
                    if o.limit is not None and o.style == "limit":
                        self.modify_order(target, limit_price=o.limit * f)
                    elif o.stop is not None:
                        self.modify_order(target, stop_price=o.stop * f)
                    else:
                        self.modify_order(target, amount=abs(o.amount) + 5)
            if t is not None:
                context.tickets.append(t)
        interrupt = self.params.interrupt
        if interrupt is not None and interrupt[0] == context.bar:
            raise interrupt[1](f"interrupted at bar {context.bar}")


class WatchingTrader(RandomTrader):
    """RandomTrader with the order-event and trade callbacks, which record what they see."""

    params = {**RandomTrader.params, "seen": None}

    def on_order_event(self, context, event):
        seen = self.params.seen
        seen["events"].append((event.seq, event.id, event.kind, self.get_datetime()))
        if event.is_fill:
            seen["fills"].append((event.id, event.qty, event.price, event.commission))

    def on_trade(self, context, trade):
        self.params.seen["trades"].append((trade.exit_bar, trade.pnl))


def check_callbacks(result, seen, complete: bool = True) -> None:
    """Every event reached on_order_event exactly once, in the log's order (a prefix of it when
    the run stopped early), never before the bar it happened on; fills carry their fill's
    quantity, price and commission; on_trade saw each closed trade once."""
    events = result.order_events
    seqs = [s for s, *_ in seen["events"]]
    want = events["seq"].tolist()
    assert seqs == (want if complete else want[: len(seqs)])
    for (_seq, oid, kind, when), row in zip(seen["events"], events.itertuples(index=False)):
        assert (oid, kind) == (row.order_id, row.kind) and when >= row.dt
    fills = result.fills
    got = seen["fills"]
    assert got == list(zip(fills["order_id"], fills["qty"], fills["price"], fills["commission"]))[: len(got)]
    closed = result.trades[~result.trades["is_open"]]
    assert [p for _, p in seen["trades"]] == closed["pnl"].tolist()[: len(seen["trades"])]
    if complete:
        assert len(got) == len(fills) and len(seen["trades"]) == len(closed)


def _events(result) -> list[OrderEvent]:
    ev = result.order_events
    rows = []
    for r in ev.itertuples(index=False):
        rows.append(OrderEvent(r.seq, r.order_id, r.dt, r.bar, r.kind, r.status_before, r.status_after, r.qty,
                               r.price, r.reason, r.amount, r.filled,
                               None if pd.isna(r.limit) else r.limit, None if pd.isna(r.stop) else r.stop))
    return rows


def check_invariants(result) -> None:
    orders = result.orders.set_index("id")
    events = result.order_events
    fills = result.fills

    # every event's order has a row, every order has events; fills match the fill events
    assert set(events["order_id"]) == set(orders.index)
    fill_events = events[events["kind"].isin(["fill", "partial_fill"])]
    assert len(fill_events) == len(fills)
    assert fill_events["order_id"].tolist() == fills["order_id"].tolist()
    assert fill_events["qty"].tolist() == fills["qty"].tolist()
    assert fill_events["price"].tolist() == fills["price"].tolist()

    # filled within amount, same side
    for oid, o in orders.iterrows():
        assert abs(o["filled"]) <= abs(o["amount"]) + 1e-9, oid
        assert o["filled"] == 0 or (o["filled"] > 0) == (o["amount"] > 0), oid
    per_order = fills.groupby("order_id")["qty"].sum()
    for oid, q in per_order.items():
        assert q == orders.loc[oid, "filled"]

    # every event has a reason; terminal stays terminal
    assert events["reason"].str.len().gt(0).all()
    for oid, evs in events.groupby("order_id"):
        statuses = evs["status_after"].tolist()
        for k, s in enumerate(statuses):
            if s in TERMINAL:
                assert k == len(statuses) - 1, (oid, statuses)

    # the log replays to the final state
    state = replay_events(_events(result))
    for oid, o in orders.iterrows():
        assert state[oid]["status"] == o["status"]
        assert state[oid]["filled"] == o["filled"]
        assert state[oid]["amount"] == o["amount"]

    # plain OCO groups: at most one leg fills
    plain = orders[orders["role"].isna()]
    for oid, o in plain.iterrows():
        if o["oco_ids"] and o["filled"] != 0:
            for sib in o["oco_ids"]:
                assert orders.loc[sib, "filled"] == 0, (oid, sib)

    # a bracket entry never fills after one of its exits was canceled
    for oid, o in orders[orders["role"] == "entry"].iterrows():
        kids = events[events["order_id"].isin(list(o["child_ids"])) & (events["kind"] == "canceled")]
        if len(kids):
            later = fill_events[(fill_events["order_id"] == oid) & (fill_events["seq"] > kids["seq"].min())]
            assert later.empty, (oid, later)

    # bracket exits: not before the entry fills, never more than the entry filled
    for oid, o in orders[orders["role"] == "entry"].iterrows():
        kids = orders.loc[list(o["child_ids"])]
        exit_filled = kids["filled"].abs().sum()
        assert exit_filled <= abs(o["filled"]) + 1e-9, oid
        entry_fills = fills[fills["order_id"] == oid]
        for kid in o["child_ids"]:
            kid_fills = fills[fills["order_id"] == kid]
            if len(kid_fills):
                assert len(entry_fills), (oid, kid)
                assert kid_fills["bar"].min() > entry_fills["bar"].min(), (oid, kid)

    # reduce-only exits never take the position through zero
    exits = set(orders.index[orders["role"].isin(["stop_loss", "take_profit"])])
    before = 0.0
    for f in fills.itertuples(index=False):
        after = f.position_after
        if f.order_id in exits:
            assert before != 0 and (after == 0 or (after > 0) == (before > 0)), f
        before = after

    # accounting: cash + positions = value; positions value = marked holdings
    perf = result.perf
    assert np.isfinite(perf[["portfolio_value", "cash", "positions_value"]].to_numpy()).all()
    assert np.isfinite(fills[["qty", "price", "cash_after", "position_after"]].to_numpy()).all()
    assert np.allclose(perf["cash"] + perf["positions_value"], perf["portfolio_value"])
    held = result.positions.groupby("dt")["market_value"].sum()
    marked = perf["positions_value"]
    for dt, v in marked.items():
        assert math.isclose(v, held.get(dt, 0.0), rel_tol=1e-9, abs_tol=1e-6), dt


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=bar_frames(), actions=ACTIONS, volume_cap=st.sampled_from([None, 0.5]),
       fill_model=st.sampled_from(["ohlc", "close"]), same_bar=st.sampled_from(["stop_first", "target_first", "path"]),
       trail_reference=st.sampled_from(["high_low", "close"]), max_leverage=st.sampled_from([None, None, 1.5]),
       watch=st.booleans())
def test_random_order_flows_keep_invariants(frame, actions, volume_cap, fill_model, same_bar, trail_reference,
                                            max_leverage, watch):
    store = from_frame(_fix_ohlc(frame), symbol="X")
    seen = {"events": [], "fills": [], "trades": []}
    extra = {"seen": seen} if watch else {}
    result = run_algorithm(WatchingTrader if watch else RandomTrader, data=store, actions=actions,
                           fill_model=fill_model, same_bar=same_bar, trail_reference=trail_reference,
                           max_leverage=max_leverage,
                           slippage=NoSlippage(volume_limit=volume_cap) if volume_cap else None, **extra)
    check_invariants(result)
    if watch:
        check_callbacks(result, seen)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=bar_frames(), actions=ACTIONS, stop_bar=st.integers(0, N_BARS - 1),
       error=st.sampled_from([KeyboardInterrupt, RuntimeError]), volume_cap=st.sampled_from([None, 0.5]),
       fill_model=st.sampled_from(["ohlc", "close"]), max_leverage=st.sampled_from([None, 1.0, 2.0]))
def test_interrupted_runs_keep_invariants(frame, actions, stop_bar, error, volume_cap, fill_model, max_leverage):
    """A run stopped at a random bar (an interrupt, or an error in the strategy) keeps what
    it simulated as ``exc.partial_result``, and that result satisfies every invariant (and
    the callbacks saw a prefix of its events, each once)."""
    store = from_frame(_fix_ohlc(frame), symbol="X")
    seen = {"events": [], "fills": [], "trades": []}
    with pytest.raises(error) as info:
        run_algorithm(WatchingTrader, data=store, actions=actions, interrupt=(stop_bar, error), fill_model=fill_model,
                      max_leverage=max_leverage, seen=seen,
                      slippage=NoSlippage(volume_limit=volume_cap) if volume_cap else None)
    partial = info.value.partial_result
    assert partial.run_info["completed"] is False
    assert partial.run_info["error"].startswith(error.__name__)
    assert len(partial.perf) == stop_bar + 1  # up to the bar it stopped in (daily bars)
    check_invariants(partial)
    check_callbacks(partial, seen, complete=False)
