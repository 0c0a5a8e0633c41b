"""Every hot-path shortcut kept in the engine equals the general path it stands in for.

The project rule: a shortcut (a special case handled inline, a call skipped because its
answer is known) stays only with a test that forces the general path and finds the same
result. Each test here names the shortcut it guards and how the general path is forced:
a never-reached "decoy" order beside the orders under test, a model subclass that
overrides a method with a plain ``super()`` call, the reference computation itself
(``slot_of``, ``np.searchsorted``, pandas' ``day_of_week``, ``index[i]``), or another
spelling of the same argument. See also
``test_contingencies.py::test_lone_trailing_stop_shortcut_matches_the_general_path``.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
import pytest
from helpers import bars, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustybt_nb.assets import Asset
from rustybt_nb.data import BarStore, from_frame, load_sample
from rustybt_nb.finance.commission import CommissionModel, NoCommission, PerDollar, PerShare, PerTrade
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from rustybt_nb.finance.level_index import LevelIndex, slot_of
from rustybt_nb.finance.order import ORDER_STATUS, Order
from rustybt_nb.finance.slippage import (
    FixedBasisPointsSlippage,
    FixedSlippage,
    NoSlippage,
    SlippageModel,
    VolumeShareSlippage,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_COLUMNS = ["order_id", "bar", "kind", "status_after", "qty", "price", "reason"]


def _walk(steps):
    """A one-asset daily store from ``(move, volume)`` steps: a random walk from 100."""
    rows, px = [], 100.0
    for move, volume in steps:
        o = px * (1 + move / 4)
        c = px * (1 + move)
        rows.append((o, max(o, c) * 1.004, min(o, c) * 0.996, c, volume))
        px = c
    return bars(rows)


def _without_first_order(frame):
    """``frame`` without order 1 (the decoy), the other ids renumbered as if it never was."""
    frame = frame[frame["order_id"] != 1]
    return frame.assign(order_id=frame["order_id"] - 1).reset_index(drop=True)


# ============================================================== 1. the lone market order
STEPS = st.lists(st.tuples(st.floats(-0.03, 0.03), st.integers(100, 5000)), min_size=3, max_size=50)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS,
       plan=st.lists(st.tuples(st.integers(0, 15), st.integers(-400, 400).filter(bool),
                               st.sampled_from(["GTC", "DAY"])), min_size=2, max_size=12),
       fill_model=st.sampled_from(["ohlc", "close"]),
       volume_limit=st.sampled_from([None, 0.02, 0.1, 0.5]))
def test_lone_market_order_shortcut_matches_the_general_path(steps, plan, fill_model, volume_limit):
    """Guards ``OrderBook._match_asset``'s shortcut for "one working market order and
    nothing else", which fills it at the open (or the close) without ``levels.reached``.
    The general path is forced by a decoy: a buy limit at 1.0, placed first on bar 0 and
    never reached, rests beside the market orders, so the book always searches its levels.
    With a ``VolumeShareSlippage`` volume limit, orders fill partially over several bars
    (one lone market order on some bars, several on others). The market orders' events
    and fills, and the performance, must be the same with and without the decoy."""
    store = _walk(steps)

    def init(algo, ctx):
        if volume_limit is not None:
            algo.set_slippage(VolumeShareSlippage(volume_limit=volume_limit, price_impact=0.1))

    def script(decoy):
        def each(algo, ctx, data):
            if ctx.bar_no == 0 and decoy:
                algo.order(ctx.asset, 1, style=LimitOrder(1.0))
            for at, amount, tif in plan:
                if at == ctx.bar_no:
                    algo.order(ctx.asset, amount, style=MarketOrder(time_in_force=tif))
        return dict.fromkeys(range(len(steps)), each)

    alone = run(script(False), store, fill_model=fill_model, init=init)
    beside = run(script(True), store, fill_model=fill_model, init=init)
    assert beside.order_events["order_id"].eq(1).any()  # (the decoy was placed)
    assert not beside.fills["order_id"].eq(1).any()  # (and never filled)
    pd.testing.assert_frame_equal(alone.order_events[EVENT_COLUMNS].reset_index(drop=True),
                                  _without_first_order(beside.order_events[EVENT_COLUMNS]), check_dtype=False)
    pd.testing.assert_frame_equal(alone.fills.reset_index(drop=True), _without_first_order(beside.fills),
                                  check_dtype=False)  # (an empty frame's text columns are object)
    pd.testing.assert_frame_equal(alone.perf, beside.perf)


# ============================================================== 2. base-class models not called
class _SlippageViaCalls:
    """Overrides the slippage methods with their own implementation: the engine must call them."""

    def capacity(self, bar_volume, already_filled):
        return super().capacity(bar_volume, already_filled)

    def slipped_price(self, price, is_buy, fill_qty, bar_volume, filled_on_bar):
        return super().slipped_price(price, is_buy, fill_qty, bar_volume, filled_on_bar)


class _CommissionViaCalls:
    """Overrides ``calculate`` with its own implementation: the engine must call it."""

    def calculate(self, order, fill_qty, fill_price):
        return super().calculate(order, fill_qty, fill_price)


def _via_calls(model):
    """A copy of ``model`` whose class is a subclass overriding the methods with ``super()``."""
    mixin = _SlippageViaCalls if isinstance(model, SlippageModel) else _CommissionViaCalls
    cls = type(f"Called{type(model).__name__}", (mixin, type(model)), {})
    twin = object.__new__(cls)
    twin.__dict__.update(vars(model))
    return twin


SLIPPAGES = [SlippageModel(), NoSlippage(), NoSlippage(volume_limit=0.05), SlippageModel(volume_limit=0.2),
             FixedSlippage(spread=0.1), FixedSlippage(spread=0.1, volume_limit=0.1), FixedBasisPointsSlippage(),
             VolumeShareSlippage(volume_limit=0.05, price_impact=0.1)]
COMMISSIONS = [CommissionModel(), NoCommission(), PerShare(cost=0.01, min_trade_cost=1.0), PerTrade(cost=2.0),
               PerDollar(cost=0.001)]


@PROPERTY
@given(steps=STEPS,
       plan=st.lists(st.tuples(st.integers(0, 20), st.integers(-300, 300).filter(bool),
                               st.sampled_from(["market", "limit", "stop", "stop_limit"]), st.floats(0.97, 1.03)),
                     min_size=1, max_size=8),
       fill_model=st.sampled_from(["ohlc", "close"]),
       slippage=st.sampled_from(SLIPPAGES), commission=st.sampled_from(COMMISSIONS))
def test_skipping_base_model_methods_matches_calling_them(steps, plan, fill_model, slippage, commission):
    """Guards the calls that ``OrderBook._match_asset`` and ``OrderBook.fill`` skip when the
    model keeps the base class's method (``SlippageModel.capacity`` without a volume limit,
    ``SlippageModel.slipped_price``, ``CommissionModel.calculate``): the answer is known
    (no cap, the rule price, no commission). The general path is forced by a subclass of
    the same model that overrides the three methods with a plain ``super()`` call, so the
    engine must call them. Every result frame must be the same as with the model itself."""
    store = _walk(steps)
    called_slippage, called_commission = _via_calls(slippage), _via_calls(commission)
    assert type(called_slippage).capacity is not SlippageModel.capacity
    assert type(called_slippage).slipped_price is not SlippageModel.slipped_price
    assert type(called_commission).calculate is not CommissionModel.calculate

    def each(algo, ctx, data):
        close = data.current(ctx.asset, "close")
        for at, amount, kind, f in plan:
            if at != ctx.bar_no:
                continue
            level = close * f
            if kind == "market":
                algo.order(ctx.asset, amount)
            elif kind == "limit":
                algo.order(ctx.asset, amount, style=LimitOrder(level))
            elif kind == "stop":
                algo.order(ctx.asset, amount, style=StopOrder(level))
            else:
                algo.order(ctx.asset, amount, style=StopLimitOrder(level, level * (1.01 if amount > 0 else 0.99)))

    script = dict.fromkeys(range(len(steps)), each)
    base = run(script, store, fill_model=fill_model, slippage=slippage, commission=commission)
    called = run(script, store, fill_model=fill_model, slippage=called_slippage, commission=called_commission)
    for name in ("perf", "orders", "order_events", "fills", "trades", "positions"):
        pd.testing.assert_frame_equal(getattr(base, name), getattr(called, name), obj=name)


# ============================================================== 3. LevelIndex.file's inline filing
STYLES = ["market", "limit", "stop", "stop_limit", "trailing_stop", "trailing_stop_limit"]
CAN_TRIGGER = {"stop", "stop_limit", "trailing_stop", "trailing_stop_limit"}
HAS_LIMIT = {"limit", "stop_limit", "trailing_stop_limit"}
HAS_STOP = {"stop", "stop_limit", "trailing_stop", "trailing_stop_limit"}
LIVE_STATUSES = [ORDER_STATUS.OPEN, ORDER_STATUS.TRIGGERED, ORDER_STATUS.PARTIALLY_FILLED]
STATUSES = [*LIVE_STATUSES, *LIVE_STATUSES, ORDER_STATUS.HELD, ORDER_STATUS.FILLED, ORDER_STATUS.CANCELED,
            ORDER_STATUS.REJECTED, ORDER_STATUS.EXPIRED, None]  # (None: not yet accepted)
LEVELS = st.sampled_from([95.0, 99.5, 100.0, 100.5, 105.0])  # few levels: ties between orders


def _check_index(index, filed):
    """``index`` against the orders that should be in it (``filed``: id -> order)."""
    assert set(index.where) == set(filed)
    for oid, order in filed.items():
        assert index.where[oid] == slot_of(order), (order.style, order.status, order.triggered)
    every_ids = sorted(o.id for o in index.every)
    assert every_ids == sorted(oid for oid, (kind, _) in index.where.items() if kind == "every")
    for kind, side in (("up", index.up), ("down", index.down)):
        assert side == sorted(side, key=lambda entry: entry[:2])
        assert sorted((level, oid) for level, oid, _ in side) == sorted(
            (level, oid) for oid, (k, level) in index.where.items() if k == kind)
        assert all(filed[oid] is order for _, oid, order in side)
    scratch = LevelIndex()  # _update_lone from scratch, on the same filing
    scratch.every, scratch.up, scratch.down = list(index.every), list(index.up), list(index.down)
    scratch._update_lone()
    assert index.lone is scratch.lone


@st.composite
def _operations(draw):
    orders = []
    for oid in range(1, draw(st.integers(2, 8)) + 1):
        style = draw(st.sampled_from(STYLES))
        limit = draw(LEVELS) if style in HAS_LIMIT else None
        stop = draw(LEVELS) if style in HAS_STOP else None
        amount = draw(st.sampled_from([-10, -1, 1, 10]))
        orders.append(Order(oid, Asset("X", 0), amount, style, None, 0, limit, stop))
    ops = draw(st.lists(st.tuples(st.integers(0, len(orders) - 1), st.sampled_from(["file", "file", "file", "remove"]),
                                  st.sampled_from(STATUSES), st.booleans(), st.one_of(st.none(), LEVELS)),
                        min_size=30, max_size=80))
    return orders, ops


@settings(max_examples=60, deadline=None)
@given(case=_operations())
def test_level_index_inline_filing_matches_slot_of_and_update_lone(case):
    """Guards ``LevelIndex.file``'s inline path for untriggered every-bar styles (market,
    trailing stops), which files them without calling ``slot_of`` and sets ``lone``
    without ``_update_lone``. The general path is the reference itself: after every
    ``file``/``remove`` of a random sequence over orders of all styles (triggered or not,
    live, held or closed; re-filed after a change of status, trigger or level, as the
    order book does), each filed order's ``where`` entry must equal ``slot_of(order)``, the
    side lists must agree with ``where``, and ``lone`` must equal what ``_update_lone``
    computes from scratch on the same filing."""
    orders, ops = case
    index = LevelIndex()
    filed: dict[int, Order] = {}
    for k, op, status, triggered, level in ops:
        order = orders[k]
        if op == "remove":
            index.remove(order)
            filed.pop(order.id, None)
        else:
            order.status = status
            order.triggered = triggered and order.style in CAN_TRIGGER
            if level is not None:  # a modify or a trailing move: a new level
                if order.style in HAS_STOP:
                    order.stop = level
                elif order.style in HAS_LIMIT:
                    order.limit = level
            index.file(order)
            if status in LIVE_STATUSES:
                filed[order.id] = order
            else:  # held or closed: filed nowhere
                filed.pop(order.id, None)
        _check_index(index, filed)
        assert len(index) == len(filed)


# ============================================================== 4. ordering by an Asset of the run
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.floats(-0.03, 0.03), st.just(100_000)), min_size=3, max_size=20),
       plan=st.lists(st.tuples(st.integers(0, 20), st.integers(-50, 50).filter(bool),
                               st.sampled_from(["market", "limit", "stop", "bracket"])), min_size=1, max_size=6))
def test_ordering_by_asset_matches_ordering_by_symbol(steps, plan):
    """Guards ``TradingAlgorithm.order``'s inline resolution of an ``Asset`` of this run
    (``store._by_symbol.get(asset)``), which skips ``_asset``. The general path is forced
    by naming the asset otherwise: the symbol string 'X', ``symbol('x')`` (a lower-case
    lookup), and an ``Asset('X')`` rebuilt outside the run (sid -1, resolved to the run's
    asset). The order rows, events and fills must be the same for every spelling. An
    asset that is not in the data ('Y', as a string or as an ``Asset`` with a foreign
    sid) must be rejected the same way too."""
    store = _walk(steps)
    spellings = {
        "context.asset": lambda algo, ctx: ctx.asset,
        "symbol string": lambda algo, ctx: "X",
        "symbol('x')": lambda algo, ctx: algo.symbol("x"),
        "rebuilt Asset": lambda algo, ctx: Asset("X"),
    }
    unknown = {"unknown string": lambda algo, ctx: "Y", "unknown Asset": lambda algo, ctx: Asset("Y", 0)}

    def script(spell):
        def each(algo, ctx, data):
            close = data.current(ctx.asset, "close")
            for at, amount, kind in plan:
                if at != ctx.bar_no:
                    continue
                asset = spell(algo, ctx)
                if kind == "market":
                    algo.order(asset, amount)
                elif kind == "limit":
                    algo.order(asset, amount, limit_price=close * 0.99)
                elif kind == "stop":
                    algo.order(asset, amount, stop_price=close * (1.01 if amount > 0 else 0.99))
                else:
                    algo.order(asset, abs(amount), style=BracketOrder(entry_style=MarketOrder(),
                                                                      stop_loss_price=close * 0.97,
                                                                      take_profit_price=close * 1.03))
        return dict.fromkeys(range(len(steps)), each)

    for group in (spellings, unknown):
        results = {name: run(script(spell), store) for name, spell in group.items()}
        first, *others = results
        for name in others:
            for frame in ("orders", "order_events", "fills"):
                pd.testing.assert_frame_equal(getattr(results[first], frame), getattr(results[name], frame),
                                              obj=f"{frame} ({first} vs {name})")
    assert results["unknown string"].orders["status"].eq("rejected").all()


# ============================================================== 5. counting fills per session
@st.composite
def _fill_and_query_bars(draw):
    n = draw(st.sampled_from([0, 1, 5, 63, 64, 65, 100, 300]))  # 64 queries and more: counted
    start = draw(st.integers(0, 300))
    contiguous = draw(st.booleans())
    if contiguous:
        queries = np.arange(start, start + n, dtype=np.int64)
    else:
        gaps = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
        queries = (start + np.cumsum(gaps, dtype=np.int64) - 1) if n else np.zeros(0, dtype=np.int64)
    last = int(queries[-1]) if n else 10
    span = draw(st.sampled_from(["dense", "sparse", "beyond"]))
    top = {"dense": last, "sparse": 40 * (last + 1), "beyond": last + 50}[span]
    bottom = draw(st.sampled_from([0, -5])) if draw(st.booleans()) else 0
    fills = draw(st.lists(st.integers(bottom, top), max_size=draw(st.sampled_from([0, 3, 50, 400]))))
    if bottom < 0 and draw(st.booleans()):
        fills.append(-1)  # a fill before the first bar
    return np.array(sorted(fills), dtype=np.int64), queries, contiguous


@settings(max_examples=60, deadline=None)
@given(case=_fill_and_query_bars())
def test_counting_fills_matches_searchsorted(case):
    """Guards ``_fills_up_to`` (the result builder's count of fills at or before each
    session's last bar), which counts with ``np.bincount`` when there are 64 queries or
    more and the fills are dense enough, and slices the counts when the query bars are a
    contiguous run. The general path is ``np.searchsorted(fill_bars, bars, side='right')``,
    computed here directly, on empty, dense, sparse and negative-first fill bars with
    contiguous and gapped query bars."""
    try:
        from rustybt_nb.results import _fills_up_to
    except ImportError:
        from rustybt_nb.result_builder import _fills_up_to
    fill_bars, queries, contiguous = case
    got = _fills_up_to(fill_bars, queries, contiguous)
    np.testing.assert_array_equal(got, np.searchsorted(fill_bars, queries, side="right"))
    assert got.shape == queries.shape


# ============================================================== 6. weekend dates from day counts
@settings(max_examples=60, deadline=None)
@given(dates=st.lists(st.dates(_dt.date(1960, 1, 1), _dt.date(2200, 12, 31)), max_size=20),
       weekdays_only=st.booleans(), unit=st.sampled_from(["s", "ms", "us", "ns"]))
def test_weekend_dates_from_day_counts_match_day_of_week(dates, weekdays_only, unit):
    """Guards ``_has_weekend_dates`` (the loaders' choice of a 24/7 calendar), which takes
    the weekday from the day count since 1970-01-01 instead of pandas' ``day_of_week``
    field. The general path is ``(DatetimeIndex(dates).day_of_week >= 5).any()``, computed
    here, on dates from 1960 (negative day counts) to 2200, in every datetime unit; half
    of the examples keep weekdays only, so both answers occur."""
    from rustybt_nb.data.loaders import _has_weekend_dates

    if weekdays_only:
        dates = [d for d in dates if d.weekday() < 5]
    index = pd.DatetimeIndex(sorted(set(dates))).as_unit(unit)
    assert _has_weekend_dates(index) == bool((index.day_of_week >= 5).any())


# ============================================================== 7. BarStore.timestamp
def _frame(index):
    px = 100 + np.arange(len(index), dtype=float)
    return pd.DataFrame({"open": px, "high": px + 1, "low": px - 1, "close": px, "volume": 1000.0}, index=index)


def _direct_store(unit, tz):
    index = pd.date_range("2024-03-08 09:31", periods=200, freq="17min", tz=tz).as_unit(unit)
    return BarStore(index, {"X": {c: v.to_numpy() for c, v in _frame(index).items()}}, frequency="minute")


STORES = {
    "daily sample": lambda: load_sample("AAPL"),
    "minute sample": lambda: load_sample("AAPL", frequency="minute", start="2012-06-01", end="2012-06-05"),
    "aware minute frame": lambda: from_frame(
        _frame(pd.date_range("2024-01-02 09:31", periods=300, freq="min", tz="Asia/Tokyo")), "X"),
    "aware daily frame": lambda: from_frame(
        _frame(pd.date_range("2024-01-02", periods=60, freq="B", tz="America/New_York")), "X"),
    "direct, s, New York": lambda: _direct_store("s", "America/New_York"),  # (across a DST change)
    "direct, ms, naive": lambda: _direct_store("ms", None),
    "direct, us, UTC": lambda: _direct_store("us", "UTC"),
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast constructor", "fallback"])
@pytest.mark.parametrize("name", list(STORES))
def test_store_timestamp_matches_index(name, fast, monkeypatch):
    """Guards ``BarStore.timestamp(i)``, which builds ``index[i]`` from the int64 value and
    resolution (pandas' internal constructor; or, without it, from the datetime64 value)
    instead of pandas' indexing. The general path is ``store.index[i]``, read here for
    every bar: the same type, value, unit and time zone, for daily, minute and tz-aware
    stores. ``fast=False`` takes the fallback by hiding the internal constructor."""
    if not fast:
        from rustybt_nb.data import bar_store

        monkeypatch.setattr(bar_store, "_from_value_and_reso", None)
    store = STORES[name]()
    index = store.index
    assert len(index) > 0
    for i in range(len(index)):
        got, want = store.timestamp(i), index[i]
        assert type(got) is type(want), i
        assert got == want, i
        assert got.unit == want.unit, i
        assert str(got.tz) == str(want.tz), i
        assert got.value == want.value, i
    if not fast:
        assert store._ts_fast is False
