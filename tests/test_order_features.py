"""Bracket legs of any stop style (a trailing stop-loss), entries with one attached exit
(one-triggers-other) and ATR trails kept by the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import bars, run

from rustybt_nb.finance.execution import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    StopLimitOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
)

# close rises 100 -> 110, then falls; each bar's range is +-1 around open/close
UP_THEN_DOWN = [(100 + k, 101.5 + k, 99 + k, 100.5 + k) for k in range(10)] + \
    [(109 - k, 109.5 - k, 107 - k, 108 - k) for k in range(10)]


def events(result, order_id):
    ev = result.order_events
    return ev[ev["order_id"] == order_id].reset_index(drop=True)


def place(style, amount=10, at=0):
    def script(algo, ctx, data):
        ctx.out["ticket"] = algo.order(ctx.asset, amount, style=style)
    return {at: script}


# ------------------------------------------------------------------ a bracket whose stop-loss trails
def test_a_market_bracket_with_a_trailing_stop_loss():
    store = bars(UP_THEN_DOWN)
    style = BracketOrder(entry_style=MarketOrder(), stop_loss_style=TrailingStopOrder(trail_amount=2.0),
                         take_profit_price=130.0)
    res = run(place(style), store, trail_reference="close")
    stop = events(res, 2)
    # it starts at the placing bar's close minus the trail, held while the entry waits
    assert stop.loc[0, "kind"] == "held" and stop.loc[0, "stop"] == 100.5 - 2.0
    activated = stop[stop["kind"] == "activated"].iloc[0]
    assert activated["bar"] == 1 and activated["stop"] == 98.5  # frozen on the entry's fill bar
    moves = stop[stop["kind"] == "trailed"]
    assert moves["bar"].min() == 2 and moves["stop"].is_monotonic_increasing  # trails from the next bar
    fill = stop[stop["kind"] == "fill"].iloc[0]
    assert fill["price"] == pytest.approx(moves["stop"].iloc[-1])
    target = events(res, 3)
    assert target["kind"].iloc[-1] == "canceled" and "OCO sibling #2 filled" in target["reason"].iloc[-1]
    orders = res.orders.set_index("id")
    assert orders.loc[2, "role"] == "stop_loss" and orders.loc[2, "style"] == "trailing_stop"
    assert orders.loc[2, "parent_id"] == 1 and list(orders.loc[2, "oco_ids"]) == [3]


@pytest.mark.parametrize("entry, reference", [(LimitOrder(101.0), 101.0), (StopOrder(102.0), 102.0),
                                              (StopLimitOrder(103.0, 102.0), 102.0)])
def test_a_priced_entry_starts_the_trail_from_its_own_price(entry, reference):
    store = bars(UP_THEN_DOWN)
    style = BracketOrder(entry_style=entry, stop_loss_style=TrailingStopOrder(trail_percent=0.05),
                         take_profit_price=140.0)
    res = run(place(style), store)
    stop = events(res, 2)
    assert stop.loc[0, "stop"] == pytest.approx(reference - reference * 0.05)
    assert stop.loc[0, "status_after"] == "held"


def test_a_trailing_stop_limit_leg_keeps_its_limit_offset_and_is_checked():
    store = bars(UP_THEN_DOWN)
    leg = TrailingStopLimitOrder(trail_amount=2.0, limit_offset=0.5)
    res = run(place(BracketOrder(entry_style=MarketOrder(), stop_loss_style=leg, take_profit_price=130.0)), store)
    stop = events(res, 2)
    assert stop.loc[0, "stop"] == 98.5 and stop.loc[0, "limit"] == 98.0
    bad = TrailingStopLimitOrder(trail_amount=99.0, limit_offset=5.0)  # a limit below zero
    res = run(place(BracketOrder(entry_style=MarketOrder(), stop_loss_style=bad, take_profit_price=130.0)), store)
    assert set(res.orders["status"]) == {"rejected"}
    assert "cannot start from the close 100.5" in res.orders["reason"].iloc[0]


def test_exit_styles_are_the_shorthands_spelled_out():
    store = bars(UP_THEN_DOWN)
    a = run(place(BracketOrder(entry_style=LimitOrder(101.0), stop_loss_price=95.0, take_profit_price=106.0)), store)
    b = run(place(BracketOrder(entry_style=LimitOrder(101.0), stop_loss_style=StopOrder(95.0),
                               take_profit_style=LimitOrder(106.0))), store)
    pd.testing.assert_frame_equal(a.order_events, b.order_events)
    assert BracketOrder(stop_loss_price=95.0) == BracketOrder(stop_loss_style=StopOrder(95.0))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"stop_loss_price": 95.0, "stop_loss_style": StopOrder(95.0)}, ValueError, "not both"),
    ({"stop_loss_style": LimitOrder(95.0)}, TypeError, "`stop_loss_style` must be StopOrder"),
    ({"take_profit_style": StopOrder(120.0)}, TypeError, "`take_profit_style` must be LimitOrder"),
    ({"stop_loss_style": TrailingStopOrder}, TypeError, "must be an instance"),
    ({"stop_loss_style": StopOrder(95.0, time_in_force="DAY")}, ValueError, "exits are good till canceled"),
])
def test_bad_exit_styles_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        BracketOrder(entry_style=MarketOrder(), **kwargs)


def test_the_trailing_stop_loss_can_be_modified():
    store = bars(UP_THEN_DOWN)

    def widen(algo, ctx, data):
        assert algo.modify_order(2, trail_amount=1.5)

    script = {**place(BracketOrder(entry_style=MarketOrder(), stop_loss_style=TrailingStopOrder(trail_amount=3.0),
                                   take_profit_price=130.0)), 3: widen}
    res = run(script, store)
    stop = events(res, 2)
    updated = stop[stop["kind"] == "updated"]
    assert len(updated) == 1 and "trail_amount=1.5" in updated["reason"].iloc[0]
    later = stop[(stop["kind"] == "trailed") & (stop["bar"] > 3)]
    assert (later["stop"].diff().dropna() >= 0).all()


# ------------------------------------------------------------------ one-triggers-other
def test_an_entry_with_one_attached_exit_goes_live_only_when_the_entry_fills():
    """The exit cannot trigger before, or on, the entry's fill bar, even when that bar
    crosses its level; it works from the next bar."""
    rows = [(100, 100.5, 99.5, 100)] + [(100, 100.2, 90.0, 99.5)] + [(99, 99.5, 95, 96)] * 3
    store = bars(rows)
    style = BracketOrder(entry_style=MarketOrder(), stop_loss_style=TrailingStopOrder(trail_amount=2.0))
    res = run(place(style), store)
    exit_ = events(res, 2)
    assert list(exit_["kind"][:2]) == ["held", "activated"] and exit_.loc[1, "bar"] == 1
    fill = exit_[exit_["kind"] == "fill"].iloc[0]
    assert fill["bar"] == 2  # not on bar 1, whose low (90) is below the 98 level
    entry = res.orders.set_index("id").loc[1]
    assert list(entry["child_ids"]) == [2] and entry["role"] == "entry"


def test_the_timeline_links_an_attached_exit_and_shows_it_held():
    from rustybt_nb.analytics import plot_order_timeline

    store = bars(UP_THEN_DOWN)
    res = run(place(BracketOrder(entry_style=LimitOrder(99.0), stop_loss_style=TrailingStopOrder(trail_amount=2))),
              store)
    fig = plot_order_timeline(res)
    names = {t.name for t in fig.data}
    assert "bracket link" in names and "held" in names


# ------------------------------------------------------------------ ATR trails
def wilder_atr(df: pd.DataFrame, window: int) -> pd.Series:
    prev = df["close"].shift()
    tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(axis=1)
    atr = pd.Series(np.nan, index=df.index)
    atr.iloc[window - 1] = tr.iloc[:window].mean()
    for k in range(window, len(df)):
        atr.iloc[k] = (atr.iloc[k - 1] * (window - 1) + tr.iloc[k]) / window
    return atr


def test_the_store_keeps_wilders_atr():
    rng = np.random.default_rng(3)
    closes = 100 + np.cumsum(rng.normal(0, 1, 60))
    rows = [(c - 0.3, c + abs(rng.normal(0, 1)), c - abs(rng.normal(0, 1)) - 0.3, c) for c in closes]
    store = bars(rows)
    frame = store.to_frame()
    np.testing.assert_allclose(store.atr(0, 14), wilder_atr(frame, 14).to_numpy(), rtol=1e-12)
    assert store.atr(0, 14) is store.atr(0, 14)  # computed once


def test_an_atr_trail_keeps_k_atrs_from_the_price_and_never_loosens():
    rng = np.random.default_rng(7)
    closes = 100 + np.cumsum(rng.normal(0.1, 1, 80))
    rows = [(c, c + abs(rng.normal(0, 1.5)), c - abs(rng.normal(0, 1.5)), c) for c in closes]
    store = bars(rows)
    atr = wilder_atr(store.to_frame(), 10).to_numpy()

    def buy_and_trail(algo, ctx, data):
        algo.order(ctx.asset, 10)
        algo.order(ctx.asset, -10, style=TrailingStopOrder(trail_atr=2.5, atr_window=10))

    res = run({20: buy_and_trail}, store, trail_reference="close")
    trail = events(res, 2)
    first = trail.iloc[0]
    assert first["stop"] == pytest.approx(closes[20] - 2.5 * atr[20])
    for row in trail[trail["kind"] == "trailed"].itertuples():
        assert row.stop == pytest.approx(closes[row.bar] - 2.5 * atr[row.bar])
        assert row.reason.endswith(f"(2.5 x ATR(10) {atr[row.bar]:.4f})")  # which ATR the move used
    assert trail[trail["kind"] == "trailed"]["stop"].is_monotonic_increasing
    order = res.orders.set_index("id").loc[2]
    assert order["trail_atr"] == 2.5 and order["atr_window"] == 10
    assert "trail 2.5 ATR(10)" in res.order_log_text()


def test_an_atr_trail_needs_its_window_of_bars():
    store = bars(UP_THEN_DOWN)
    res = run(place(TrailingStopOrder(trail_atr=2.0, atr_window=14), amount=-10, at=3), store)
    order = res.orders.iloc[0]
    assert order["status"] == "rejected" and "the ATR(14) of X needs 14 bars" in order["reason"]


def test_an_atr_trail_as_a_bracket_stop_loss_and_in_the_trailing_view():
    from rustybt_nb.analytics import plot_trailing_stops

    store = bars(UP_THEN_DOWN)
    style = BracketOrder(entry_style=MarketOrder(), stop_loss_style=TrailingStopOrder(trail_atr=1.5, atr_window=3),
                         take_profit_price=150.0)
    res = run(place(style, at=5), store)
    stop = events(res, 2)
    atr = wilder_atr(store.to_frame(), 3).to_numpy()
    assert stop.loc[0, "stop"] == pytest.approx(105.5 - 1.5 * atr[5])
    fig = plot_trailing_stops(res)
    assert any("ATR(3)" in str(t.name) or "ATR(3)" in str(getattr(t, "hovertext", "")) for t in fig.data)


@pytest.mark.parametrize("kwargs, message", [
    ({"trail_atr": 2.0, "trail_amount": 1.0}, "exactly one of"),
    ({"trail_atr": -1.0}, "`trail_atr` must be > 0"),
    ({"trail_atr": 2.0, "atr_window": 0}, "`atr_window` must be a whole number"),
])
def test_bad_atr_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrailingStopOrder(**kwargs)
