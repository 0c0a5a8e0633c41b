"""Scripted edge cases of brackets, OCO groups, trailing stops, modify and expiry.

Bars are given as (open, high, low, close[, volume]); a script runs at the end of a bar,
so its orders are first matched on the next bar.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import bars, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from rustybt_nb.finance.slippage import NoSlippage

FLAT = [(100, 101, 99, 100)] * 3


def _events(result, oid):
    ev = result.order_events
    return ev[ev["order_id"] == oid]


def _statuses(result, oid):
    return _events(result, oid)["status_after"].tolist()


def bracket(sl, tp, entry=None, **kw):
    return BracketOrder(entry_style=entry or MarketOrder(), stop_loss_price=sl, take_profit_price=tp, **kw)


# ------------------------------------------------------------------ brackets
def test_exits_held_until_entry_fills_then_work_from_next_bar():
    # entry fills at bar 1's open; on bar 1 the low (94) is below the stop (95) but the
    # exits only work from bar 2, where the target (110) is reached.
    store = bars([*FLAT[:1], (100, 101, 94, 100), (100, 111, 99, 108)])
    out = {}

    def place(algo, ctx, data):
        out["t"] = algo.order(ctx.asset, 10, style=bracket(95, 110))

    result = run({0: place}, store)
    entry, sl, tp = 1, 2, 3
    assert _statuses(result, sl) == ["held", "open", "canceled"]
    assert _statuses(result, tp) == ["held", "open", "filled"]
    fills = result.fills
    assert list(zip(fills["order_id"], fills["price"])) == [(entry, 100.0), (tp, 110.0)]
    assert "OCO sibling #3 filled" in _events(result, sl)["reason"].iloc[-1]


def test_entry_gap_through_stop_entry_and_short_bracket():
    # short bracket with a sell-stop entry at 98: bar 1 gaps down to 97 -> entry at the open
    store = bars([(100, 101, 99, 100), (97, 98, 95, 96), (96, 97, 90, 91)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, -5, style=bracket(103, 92, entry=StopOrder(98)))

    result = run({0: place}, store)
    fills = result.fills
    assert fills["price"].tolist() == [97.0, 92.0]
    assert fills["qty"].tolist() == [-5, 5]
    assert result.trades["pnl"].tolist() == [pytest.approx(25.0)]


@pytest.mark.parametrize("policy,winner,price", [("stop_first", 2, 95.0), ("target_first", 3, 110.0),
                                                 ("path", 3, 110.0)])
def test_both_exits_in_one_bar_follow_the_same_bar_policy(policy, winner, price):
    # bar 2 reaches both 95 and 110; it opens at 104, nearer its high (111) than its low
    # (94), so the path policy assumes the high came first.
    store = bars([*FLAT[:2], (104, 111, 94, 100)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=bracket(95, 110))

    result = run({0: place}, store, same_bar=policy)
    exit_fill = result.fills.iloc[-1]
    assert (exit_fill["order_id"], exit_fill["price"]) == (winner, price)
    loser = 5 - winner
    reason = _events(result, loser)["reason"].iloc[-1]
    assert f"same_bar='{policy}'" in reason and "same bar reached" in reason
    fill_reason = _events(result, winner)["reason"].iloc[-1]
    assert "same bar reached" in fill_reason


def test_invalid_long_bracket_rejects_all_three_legs_with_reason():
    store = bars(FLAT)

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=bracket(105, 110, entry=LimitOrder(100)))

    result = run({0: place}, store)
    assert result.orders["status"].tolist() == ["rejected"] * 3
    assert "stop-loss 105 is above the entry limit 100" in result.orders["reason"].iloc[0]
    assert result.fills.empty


def test_entry_price_alone_means_a_limit_entry():
    store = bars([(100, 101, 99, 100), (101, 102, 98.5, 99), (99, 100, 98, 99)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=BracketOrder(entry_price=99.0, stop_loss_price=97, take_profit_price=104))

    result = run({0: place}, store)
    orders = result.orders.set_index("id")
    assert orders.loc[1, "style"] == "limit" and orders.loc[1, "limit"] == 99.0
    assert result.fills["price"].tolist() == [99.0]


def test_cancel_entry_before_any_fill_cancels_exits():
    store = bars(FLAT)

    def place(algo, ctx, data):
        t = algo.order(ctx.asset, 10, style=bracket(85, 110, entry=LimitOrder(90)))
        algo.cancel_order(t)  # same callback as the submit: effective immediately

    result = run({0: place}, store)
    assert _statuses(result, 1) == ["open", "canceled"]
    assert _statuses(result, 2) == ["held", "canceled"]
    assert "before any fill" in _events(result, 2)["reason"].iloc[-1]
    assert result.fills.empty


def test_entry_canceled_after_partial_fill_protects_the_filled_part():
    # volume cap 10 % of 50 = 5 shares per bar; the entry for 20 fills 5, then is canceled
    store = bars([(100, 101, 99, 100, 50), (100, 101, 99, 100, 50), (100, 101, 99, 100, 50),
                  (100, 101, 94, 96, 1000)])
    out = {}

    def place(algo, ctx, data):
        out["t"] = algo.order(ctx.asset, 20, style=bracket(95, 110))

    def cancel(algo, ctx, data):
        algo.cancel_order(out["t"])

    result = run({0: place, 1: cancel}, store, slippage=NoSlippage(volume_limit=0.1))
    assert _statuses(result, 1) == ["open", "partial", "canceled"]
    sl = _events(result, 2)
    assert sl["status_after"].tolist() == ["held", "open", "filled"]
    activated = sl[sl["kind"] == "activated"].iloc[0]
    assert activated["amount"] == -5 and "protecting the filled part" in activated["reason"]
    assert result.fills["qty"].tolist() == [5, -5]
    assert result.fills["price"].tolist()[-1] == 95.0


def test_partial_exit_fill_reduces_the_other_exit():
    # position 20; the take-profit fills 10 (volume cap) and the stop is resized to 10
    store = bars([(100, 101, 99, 100, 10_000), (100, 101, 99, 100, 10_000), (100, 111, 99, 105, 100),
                  (105, 106, 90, 92, 10_000)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 20, style=bracket(95, 110))

    result = run({0: place}, store, slippage=NoSlippage(volume_limit=0.1))
    assert _statuses(result, 3) == ["held", "open", "partial", "canceled"]
    assert _events(result, 3)["reason"].iloc[-1] == "OCO sibling #2 filled"
    sl = _events(result, 2)
    resized = sl[sl["kind"] == "updated"].iloc[0]
    assert resized["amount"] == -10 and "resized to the position (10)" in resized["reason"]
    assert result.fills["qty"].tolist() == [20, -10, -10]
    assert result.perf["positions_value"].iloc[-1] == 0


def test_manual_close_cancels_live_exits_and_never_reverses():
    store = bars([*FLAT, (100, 101, 99, 100), (100, 120, 80, 100)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=bracket(95, 110))

    def close(algo, ctx, data):
        algo.order_target(ctx.asset, 0)

    result = run({0: place, 2: close}, store)
    assert _statuses(result, 2)[-1] == "canceled" and _statuses(result, 3)[-1] == "canceled"
    assert "position closed after order #4 filled" in _events(result, 2)["reason"].iloc[-1]
    assert result.fills["qty"].tolist() == [10, -10]
    assert result.perf["positions_value"].iloc[-1] == 0


def test_modify_a_held_child_and_a_modify_that_would_break_the_bracket():
    store = bars([*FLAT, (100, 101, 96.5, 100)])
    out = {}

    def place(algo, ctx, data):
        t = algo.order(ctx.asset, 10, style=bracket(95, 110, entry=LimitOrder(100)))
        out["ok"] = algo.modify_order(t.child_ids[0], stop_price=97)  # held stop-loss
        out["bad"] = algo.modify_order(t.child_ids[0], stop_price=101)  # above the entry

    result = run({0: place}, store)
    assert out == {"ok": True, "bad": False}
    sl = _events(result, 2)
    assert sl["kind"].tolist()[:2] == ["held", "updated"]
    assert sl["stop"].iloc[1] == 97
    assert any("would make bracket #1 invalid" in m for m in result.logs["message"])
    assert result.fills["price"].tolist() == [100.0, 97.0]


def test_after_the_entry_fills_the_stop_loss_can_move_to_breakeven_but_not_above_the_market():
    # entry fills at 100 on bar 1; bar 2 closes at 105: the stop may move to 101 (above the entry,
    # locking in a profit) but not to 106 (above the last price, where it would trigger at once)
    store = bars([(100, 101, 99, 100), (100, 101, 99, 100), (100, 106, 100, 105), (105, 106, 104, 105)])
    out = {}

    def place(algo, ctx, data):
        out["t"] = algo.order(ctx.asset, 10, style=bracket(95, 120))

    def move(algo, ctx, data):
        sl = algo.get_order(out["t"]).child_ids[0]
        out["above market"] = algo.modify_order(sl, stop_price=106)
        out["breakeven+"] = algo.modify_order(sl, stop_price=101)

    result = run({0: place, 2: move}, store)
    assert (out["above market"], out["breakeven+"]) == (False, True)
    sl = _events(result, 2)
    assert sl["kind"].tolist() == ["held", "activated", "updated"] and sl["stop"].iloc[-1] == 101
    refused = [m for m in result.logs["message"] if "refused" in m]
    assert len(refused) == 1 and "stop-loss 106 is above the last price 105" in refused[0]


# ------------------------------------------------------------------ OCO
def test_oco_style_infers_sides_and_first_fill_cancels_the_other():
    store = bars([*FLAT[:1], (100, 103, 99, 102), (102, 103, 90, 95)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=OCOOrder(order1=StopOrder(102), order2=StopOrder(98)))

    result = run({0: place}, store)
    orders = result.orders.set_index("id")
    assert orders.loc[1, "amount"] == 10 and orders.loc[2, "amount"] == -10
    assert orders.loc[1, "status"] == "filled" and orders.loc[2, "status"] == "canceled"
    assert result.fills["price"].tolist() == [102.0]


def test_linking_placed_orders_and_partial_fill_cancels_sibling():
    store = bars([(100, 101, 99, 100, 100), (100, 103, 99, 102, 100), (102, 103, 90, 95, 100)])

    def place(algo, ctx, data):
        buy = algo.order(ctx.asset, 30, style=StopOrder(102))
        sell = algo.order(ctx.asset, -30, style=StopOrder(98))
        buy.add_oco_sibling(sell)

    result = run({0: place}, store, slippage=NoSlippage(volume_limit=0.1))
    assert _statuses(result, 1)[:3] == ["open", "open", "partial"]  # submitted, linked (updated), partial
    assert _statuses(result, 2)[-1] == "canceled"
    assert "OCO sibling #1 partially filled" in _events(result, 2)["reason"].iloc[-1]


# ------------------------------------------------------------------ trailing
def test_trailing_sell_from_highs_and_buy_from_lows():
    rows = [(100, 101, 99, 100), (100, 106, 99, 105), (105, 110, 104, 109), (109, 109, 103, 104)]
    store = bars(rows)

    def place(algo, ctx, data):
        algo.order(ctx.asset, -1, style=TrailingStopOrder(trail_amount=5))

    result = run({0: place}, store)
    # start 100-5=95; bar 1 high 106 -> 101; bar 2 high 110 -> 105; bar 3 low 103 <= 105 -> fill at 105
    trail = _events(result, 1)
    assert trail[trail["kind"] == "trailed"]["stop"].tolist() == [101.0, 105.0]
    assert result.fills["price"].tolist() == [105.0]

    down = bars([(100, 101, 99, 100), (100, 100, 94, 95), (95, 96, 90, 91), (91, 97, 91, 96)])

    def place_buy(algo, ctx, data):
        algo.order(ctx.asset, 1, style=TrailingStopOrder(trail_percent=0.05))

    result = run({0: place_buy}, down)
    trail = _events(result, 1)
    assert trail[trail["kind"] == "trailed"]["stop"].tolist() == pytest.approx([94 * 1.05, 90 * 1.05])
    assert result.fills["price"].tolist() == [pytest.approx(94.5)]


def test_trailing_stop_limit_freezes_limit_when_triggered():
    rows = [(100, 101, 99, 100), (100, 106, 100, 105), (103, 104, 96, 97), (97, 102, 96, 100)]
    store = bars(rows)

    def place(algo, ctx, data):
        algo.order(ctx.asset, -1, style=TrailingStopLimitOrder(trail_amount=4, limit_offset=1))

    result = run({0: place}, store)
    # start 96 / limit 95; bar 1 high 106 -> stop 102 / limit 101; bar 2 opens 103, low 96 -> triggers at 102
    # intrabar with the limit (101) below the stop: fills at the stop 102
    ev = _events(result, 1)
    assert ev[ev["kind"] == "trailed"]["limit"].tolist() == [101.0]
    assert result.fills["price"].tolist() == [102.0]


def test_trailing_reference_close_ratchets_from_closes():
    rows = [(100, 101, 99, 100), (100, 110, 99, 102), (102, 103, 96, 97)]
    store = bars(rows)

    def place(algo, ctx, data):
        algo.order(ctx.asset, -1, style=TrailingStopOrder(trail_amount=5))

    result = run({0: place}, store, trail_reference="close")
    # from the close: 95 -> 97 (close 102); bar 2 low 96 <= 97 -> fill at 97
    assert result.fills["price"].tolist() == [97.0]


# ------------------------------------------------------------------ time in force
def test_day_bracket_entry_expires_and_cancels_exits():
    store = bars([*FLAT, (100, 101, 99, 100)])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=bracket(80, 120, entry=LimitOrder(90), time_in_force="DAY"))

    result = run({0: place}, store)
    assert _statuses(result, 1) == ["open", "expired"]
    assert _statuses(result, 2) == ["held", "canceled"]
    assert "expired before any fill" in _events(result, 2)["reason"].iloc[-1]
    expired_at = _events(result, 1)["dt"].iloc[-1]
    assert expired_at == result.perf.index[1]


def test_bracket_exits_never_close_more_than_their_entry_filled():
    # 1 share bought separately, then a bracket for 8: a partial stop-loss fill of 4
    # leaves the take-profit 4 (what is left of the entry), not 5 (the position)
    store = bars([(100, 101, 99, 100, 1000), (100, 101, 99, 100, 1000), (100, 101, 99, 100, 1000),
                  (100, 101, 99, 100, 1000), (100, 101, 94, 96, 8), (96, 120, 95, 119, 1000)])

    def first(algo, ctx, data):
        algo.order(ctx.asset, 1)

    def place(algo, ctx, data):
        algo.order(ctx.asset, 8, style=bracket(95, 110))

    result = run({0: first, 2: place}, store, slippage=NoSlippage(volume_limit=0.5))
    sl, tp = 3, 4
    # bar 4: the stop fills 4 (cap: half of 8), the target is cut to the 4 left of the entry;
    # bar 5: the triggered stop's remaining 4 fill at the open and cancel the target
    assert result.fills[result.fills["order_id"] == sl]["qty"].tolist() == [-4, -4]
    resized = _events(result, tp)
    resized = resized[resized["kind"] == "updated"].iloc[0]
    assert resized["amount"] == -4 and "what is left of entry #2 (4)" in resized["reason"]
    assert _statuses(result, tp)[-1] == "canceled"
    held = result.positions[result.positions["dt"] == result.perf.index[-1]]["amount"].tolist()
    assert held == [1]  # the separately bought share is still held


# ------------------------------------------------------------------ time in force of groups
def test_bracket_entry_keeps_its_own_time_in_force_and_the_style_object_is_not_changed():
    entry_style = LimitOrder(90.0, time_in_force="DAY")
    group = bracket(80, 120, entry=entry_style)

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=group)

    result = run({0: place}, bars(FLAT * 2))
    orders = result.orders.set_index("id")
    assert orders.loc[1, ["tif", "status"]].tolist() == ["DAY", "expired"]
    assert orders.loc[2, "status"] == "canceled" and orders.loc[3, "status"] == "canceled"
    assert entry_style.time_in_force == "DAY"


def test_bracket_time_in_force_applies_to_a_gtc_entry_without_changing_it():
    entry_style = LimitOrder(90.0)

    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=bracket(80, 120, entry=entry_style, time_in_force="DAY"))

    result = run({0: place}, bars(FLAT * 2))
    assert result.orders.set_index("id").loc[1, "tif"] == "DAY"
    assert entry_style.time_in_force == "GTC"


def test_conflicting_bracket_and_entry_time_in_force_is_an_error():
    with pytest.raises(ValueError, match="set the time in force in one place"):
        bracket(80, 120, entry=LimitOrder(90.0, time_in_force="DAY"), time_in_force="GTD", good_till="2021-02-01")


# ---------------------------------------------------------------- the order book's lone-trailing shortcut
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves=st.lists(st.floats(-0.04, 0.04), min_size=5, max_size=40),
       buy=st.booleans(), percent=st.booleans(), reference=st.sampled_from(["high_low", "close"]),
       fill_model=st.sampled_from(["ohlc", "close"]))
def test_lone_trailing_stop_shortcut_matches_the_general_path(moves, buy, percent, reference, fill_model):
    """A trailing stop that is the only working order takes the order book's shortcut; with
    a far-away limit order resting beside it, the same stop goes through the general
    matching path. Its events (trail moves, trigger, fill) must be the same either way."""
    rows, px = [], 100.0
    for m in moves:
        o = px
        c = px * (1 + m)
        rows.append((o, max(o, c) * 1.01, min(o, c) * 0.99, c))
        px = c
    store = bars([(100, 101, 99, 100), *rows])
    trail = {"trail_percent": 0.03} if percent else {"trail_amount": 3.0}
    side = 1 if buy else -1

    def place(decoy):
        def first(algo, ctx, data):
            algo.order(ctx.asset, 10 * side, style=TrailingStopOrder(**trail))
            if decoy:  # never in reach: a buy limit at a tenth of the price
                algo.order(ctx.asset, 1, style=LimitOrder(5.0))
        return {0: first}

    def trail_events(res):
        ev = res.order_events[res.order_events["order_id"] == 1]
        return ev[["bar", "kind", "status_after", "qty", "price", "stop", "reason"]].reset_index(drop=True)

    alone = run(place(False), store, trail_reference=reference, fill_model=fill_model)
    beside = run(place(True), store, trail_reference=reference, fill_model=fill_model)
    pd.testing.assert_frame_equal(trail_events(alone), trail_events(beside))


# ---------------------------------------------------------------- the order book's skip-ahead
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves=st.lists(st.floats(-0.03, 0.03), min_size=10, max_size=140),
       plan=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["limit", "stop", "stop_limit", "bracket"]),
                               st.booleans(), st.floats(0.9, 1.1)), min_size=1, max_size=6),
       cancel_at=st.integers(0, 50), fill_model=st.sampled_from(["ohlc", "close"]))
def test_skipping_bars_out_of_reach_changes_nothing(moves, plan, cancel_at, fill_model):
    """Resting orders let the order book skip bars that reach none of their levels. A GTD
    order that can never fill turns the skipping off; with it, the other orders' events must
    be exactly the same."""
    rows, px = [], 100.0
    for m in moves:
        o = px * (1 + m / 4)
        c = px * (1 + m)
        rows.append((o, max(o, c) * 1.004, min(o, c) * 0.996, c))
        px = c
    store = bars(rows)

    def script(decoy):
        def each(algo, ctx, data):
            n = ctx.bar_no
            if n == 0 and decoy:
                algo.order(ctx.asset, 1, style=LimitOrder(1.0, time_in_force="GTD", good_till="2030-01-01"))
            close = data.current(ctx.asset, "close")
            for k, (at, kind, buy, f) in enumerate(plan):
                if at != n:
                    continue
                side, level = (1 if buy else -1), close * f
                if kind == "limit":
                    style = LimitOrder(level)
                elif kind == "stop":
                    style = StopOrder(level)
                elif kind == "stop_limit":
                    style = StopLimitOrder(level, level * (1.01 if buy else 0.99))
                else:
                    style = BracketOrder(entry_style=LimitOrder(close * 0.99), stop_loss_price=close * 0.95,
                                         take_profit_price=close * 1.04)
                    side = 1
                ctx.out[k] = algo.order(ctx.asset, 5 * side, style=style)
            if n == cancel_at and ctx.out:
                algo.cancel_order(next(iter(ctx.out.values())))
        return dict.fromkeys(range(len(rows)), each)

    def events(res, skip_first):
        ev = res.order_events
        if skip_first:
            ev = ev[ev["order_id"] != 1]
            ev = ev.assign(order_id=ev["order_id"] - 1)
        ev = ev.assign(reason=ev["reason"].str.replace(r"#\d+", "#", regex=True))  # (ids differ by one)
        return ev[["order_id", "bar", "kind", "status_after", "qty", "price", "reason"]].reset_index(drop=True)

    plain = run(script(False), store, fill_model=fill_model, out={})
    with_gtd = run(script(True), store, fill_model=fill_model, out={})
    pd.testing.assert_frame_equal(events(plain, False), events(with_gtd, True), check_dtype=False)


@pytest.mark.parametrize("fill_model", ["ohlc", "close"])
@pytest.mark.parametrize("kind", ["sell_limit", "buy_stop", "buy_limit", "sell_stop"])
@pytest.mark.parametrize("hit", [1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129])
def test_a_resting_order_fills_on_the_first_bar_that_reaches_it_however_far(fill_model, kind, hit):
    """Flat bars at 100 and one bar at ``hit`` that reaches 110 (or 90): the order placed on
    bar 0 fills on exactly that bar, wherever it falls among the bars the book skips."""
    up = kind in ("sell_limit", "buy_stop")
    peak = (110, 111, 109, 110) if up else (90, 91, 89, 90)
    rows = [peak if n == hit else (100, 100.5, 99.5, 100) for n in range(140)]
    side = -1 if kind.startswith("sell") else 1
    style = LimitOrder(105 if up else 95) if kind.endswith("limit") else StopOrder(105 if up else 95)

    def place(algo, ctx, data):
        if kind.startswith("sell"):
            algo.order(ctx.asset, 10)
        algo.order(ctx.asset, 5 * side, style=style)

    res = run({0: place}, bars(rows), fill_model=fill_model)
    fills = res.fills[res.fills["order_id"] == res.orders["id"].max()]
    assert fills["bar"].tolist() == [hit]
