"""The strategy-facing API: both strategy styles, ``context``, the portfolio, parameters,
models, the clock and error propagation.

Prices are small scripted bars (``helpers.bars``) so every number can be checked exactly.
Orders placed while handling bar t fill at bar t+1's open (market orders, no slippage).
"""

from __future__ import annotations

import pickle

import pytest
from helpers import bars, run

from rustybt_nb import BacktestResult, TradingAlgorithm, run_algorithm
from rustybt_nb.api import (
    cancel_order,
    date_rules,
    get_datetime,
    get_open_orders,
    order,
    order_target,
    record,
    schedule_function,
    symbol,
    time_rules,
)
from rustybt_nb.finance.commission import PerShare
from rustybt_nb.finance.execution import LimitOrder
from rustybt_nb.finance.order import ORDER_STATUS, Order
from rustybt_nb.finance.slippage import FixedSlippage

# (open, high, low, close): opens 100, 100, 110, 111, ... so fills are easy to follow
ROWS = [(100, 101, 99, 100), (100, 106, 99, 105), (110, 112, 108, 111), (111, 113, 110, 112),
        (112, 114, 111, 113), (113, 115, 112, 114)]


@pytest.fixture(scope="module")
def store():
    return bars(ROWS)


# ------------------------------------------------------------------ subclass style
class Hooks(TradingAlgorithm):
    params = {"log": None}

    def initialize(self, context):
        context.calls = self.params.log
        context.calls.append("initialize")
        context.asset = self.symbol("X")

    def before_trading_start(self, context, data):
        context.calls.append(("bts", self.get_datetime()))

    def handle_data(self, context, data):
        context.calls.append(("handle", data.current_dt))
        if len(context.calls) == 3:
            self.order(context.asset, 5)

    def analyze(self, context, results):
        context.calls.append(("analyze", results))


def test_subclass_hooks_run_in_order_and_analyze_receives_the_result(store):
    log = []
    result = run_algorithm(Hooks, data=store, log=log)
    assert isinstance(result, BacktestResult)
    assert log[0] == "initialize"
    assert log[-1][0] == "analyze" and log[-1][1] is result
    middle = log[1:-1]
    assert len(middle) == 2 * len(ROWS)
    for k, dt in enumerate(store.index):
        assert middle[2 * k] == ("bts", dt)
        assert middle[2 * k + 1] == ("handle", dt)
    assert result.fills["qty"].tolist() == [5.0]
def test_record_in_before_trading_start_lands_on_its_own_session(store):
    def bts(context, data):
        record(bts_day=get_datetime().day)

    result = run_algorithm(initialize=lambda c: None, handle_data=lambda c, d: None, before_trading_start=bts,
                           data=store)
    assert result.perf["bts_day"].tolist() == [d.day for d in store.index]


def test_record_in_handle_data_lands_on_its_own_session(store):
    def handle_data(context, data):
        record(day=get_datetime().day)

    result = run_algorithm(initialize=lambda c: None, handle_data=handle_data, data=store)
    assert result.perf["day"].tolist() == [d.day for d in store.index]


# ------------------------------------------------------------------ Zipline free functions
def test_zipline_free_functions_with_the_api_module(store):
    seen = {}

    def initialize(context):
        context.asset = symbol("X")
        context.n = 0
        schedule_function(lambda c, d: seen.setdefault("sched", []).append(get_datetime()),
                          date_rules.every_day(), time_rules.market_open())

    def handle_data(context, data):
        n = context.n
        context.n += 1
        assert get_datetime() == data.current_dt
        record(bar=n, close=data.current(context.asset, "close"))
        if n == 0:
            context.buy = order(context.asset, 10)
            context.lowball = order(context.asset, 10, limit_price=50.0)
            opened = get_open_orders(context.asset)
            seen["open0"] = sorted(opened)
            seen["all0"] = {a: sorted(d) for a, d in get_open_orders().items()}
            seen["types"] = {type(o) for o in opened.values()}
        elif n == 1:
            seen["cancel"] = cancel_order(context.lowball)
            seen["open1"] = sorted(get_open_orders(context.asset))
            context.target = order_target(context.asset, 3)

    result = run_algorithm(initialize=initialize, handle_data=handle_data, data=store)
    buy, lowball = 1, 2
    assert seen["open0"] == [buy, lowball]
    assert seen["all0"] == {store.assets[0]: [buy, lowball]}
    assert seen["types"] == {Order}
    assert seen["cancel"] is True
    assert seen["open1"] == []  # the buy filled at this bar's open, the limit order was canceled
    assert seen["sched"] == list(store.index)
    orders = result.orders.set_index("id")
    assert orders.loc[buy, "status"] == ORDER_STATUS.FILLED
    assert orders.loc[lowball, "status"] == ORDER_STATUS.CANCELED
    assert orders.loc[3, "amount"] == -7.0 and orders.loc[3, "status"] == "filled"
    fills = result.fills
    assert fills["qty"].tolist() == [10.0, -7.0]
    assert fills["price"].tolist() == [100.0, 110.0]  # next bar's open
    assert result.perf["bar"].tolist() == list(range(len(ROWS)))
    assert result.perf["close"].tolist() == [r[3] for r in ROWS]


def test_order_returns_the_order_id(store):
    seen = {}

    def go(algo, context, data):
        ticket = context.order(context.asset, 4)
        seen["ticket"] = ticket
        seen["is_int"] = isinstance(ticket, int)
        seen["order"] = algo.get_order(ticket)
        seen["status"] = ticket.status

    run({0: go}, store)
    assert seen["is_int"] and seen["ticket"] == 1 and hash(seen["ticket"]) == hash(1)
    assert seen["order"].id == 1 and seen["order"].amount == 4
    assert seen["status"] == ORDER_STATUS.OPEN


def test_a_ticket_reads_the_live_order_and_refuses_assignment(store):
    seen = {}

    def place(algo, context, data):
        context.out["ticket"] = context.order(context.asset, 4, style=LimitOrder(1_000.0))
        ticket = context.out["ticket"]
        try:
            ticket.status = "filled"
        except AttributeError as exc:
            seen["refusal"] = str(exc)

    def later(algo, context, data):
        ticket = context.out["ticket"]
        seen["later"] = (ticket.status, ticket.filled, ticket.open, ticket.remaining, ticket.limit,
                         ticket.avg_fill_price, ticket.to_dict()["id"])

    run({0: place, 2: later}, store, out={})
    assert seen["later"] == (ORDER_STATUS.FILLED, 4, False, 0, 1_000.0, 100.0, 1)  # a limit above: the open
    assert "read-only view of order 1" in seen["refusal"] and "modify_order" in seen["refusal"]


def test_api_functions_outside_a_run_say_they_need_a_running_backtest():
    for call in (lambda: order("X", 1), lambda: symbol("X"), lambda: get_datetime(), lambda: record(x=1)):
        with pytest.raises(Exception) as info:
            call()
        assert "backtest" in str(info.value) and "run" in str(info.value)
        assert "run_algorithm" in str(info.value)


def test_algorithm_methods_outside_a_run_need_a_running_backtest():
    with pytest.raises(Exception, match="needs a running backtest"):
        Hooks().order("X", 1)


# ------------------------------------------------------------------ context
def place(context, asset, n):
    return context.order(asset, n)


def test_context_exposes_the_api_to_helper_functions(store):
    seen = {}

    def initialize(context):
        context.asset = context.symbol("X")

    def handle_data(context, data):
        if "ticket" not in seen:
            seen["ticket"] = place(context, context.asset, 6)
            seen["dt"] = (context.get_datetime(), data.current_dt)
            seen["cash"] = context.portfolio.cash
            seen["params"] = dict(context.params)

    result = run_algorithm(initialize=initialize, handle_data=handle_data, data=store, capital_base=5_000)
    assert seen["ticket"] == 1
    assert seen["dt"][0] == seen["dt"][1] == store.index[0]
    assert seen["cash"] == 5_000
    assert seen["params"] == {}
    assert result.fills["qty"].tolist() == [6.0]


@pytest.mark.parametrize("name", ["order", "portfolio", "get_datetime", "record"])
def test_assigning_an_api_name_on_context_is_refused(store, name):
    def initialize(context):
        setattr(context, name, 1)

    with pytest.raises(AttributeError) as info:
        run_algorithm(initialize=initialize, handle_data=lambda c, d: None, data=store)
    msg = str(info.value)
    assert f"context.{name}" in msg
    assert f"context.my_{name}" in msg  # the suggested other name


def test_context_portfolio_is_read_only_and_not_user_state(store):
    seen = {}

    def initialize(context):
        context.asset = context.symbol("X")
        seen["repr"] = repr(context)
        seen["same"] = context.portfolio is context.portfolio
        try:
            del context.portfolio
        except AttributeError as exc:
            seen["del"] = str(exc)

    run_algorithm(initialize=initialize, handle_data=lambda c, d: None, data=store)
    assert seen["repr"] == "Context({'asset': Equity(0 [X])})"
    assert seen["same"] is True
    assert "context.portfolio" in seen["del"]


def test_reading_an_unset_context_attribute_raises_attribute_error(store):
    seen = {}

    def initialize(context):
        context.asset = context.symbol("X")
        try:
            context.foo  # noqa: B018 - the read is the test
        except AttributeError as exc:
            seen["foo"] = (exc.name, exc.obj is context)
        seen["hasattr"] = hasattr(context, "missing")

    run_algorithm(initialize=initialize, handle_data=lambda c, d: None, data=store)
    assert seen["foo"] == ("foo", True)
    assert seen["hasattr"] is False


@pytest.mark.parametrize("where", ["handle_data", "analyze"])
def test_an_unset_context_attribute_that_escapes_the_run_says_how_to_set_it(store, where):
    def initialize(context):
        context.asset = context.symbol("X")

    def broken(context, data):
        context.aset  # noqa: B018 - the typo is the test

    hooks = {"handle_data": lambda c, d: None, where: broken}
    with pytest.raises(AttributeError) as info:
        run_algorithm(initialize=initialize, data=store, **hooks)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert "context has no attribute 'aset'; set it first" in notes[0]
    assert "Did you mean 'asset'" in notes[0]


def test_an_attribute_error_from_elsewhere_gets_no_context_note(store):
    def handle_data(context, data):
        data.no_such_method()

    with pytest.raises(AttributeError) as info:
        run_algorithm(handle_data=handle_data, data=store)
    assert not getattr(info.value, "__notes__", [])


def test_context_keeps_user_state_across_bars(store):
    def initialize(context):
        context.count = 0

    def handle_data(context, data):
        context.count += 1
        record(count=context.count)

    result = run_algorithm(initialize=initialize, handle_data=handle_data, data=store)
    assert result.perf["count"].tolist() == list(range(1, len(ROWS) + 1))


# ------------------------------------------------------------------ portfolio
def _snapshot(portfolio, asset):
    pos = portfolio.positions[asset]
    return {
        "cash": portfolio.cash, "portfolio_value": portfolio.portfolio_value,
        "positions_value": portfolio.positions_value, "pnl": portfolio.pnl, "returns": portfolio.returns,
        "starting_cash": portfolio.starting_cash, "n_positions": len(portfolio.positions),
        "amount": pos.amount, "cost_basis": pos.cost_basis, "last_sale_price": pos.last_sale_price,
        "last_sale_date": pos.last_sale_date,
    }


def test_portfolio_fields_after_a_scripted_fill(store):
    snaps = {}

    def buy(algo, context, data):
        snaps[0] = _snapshot(context.portfolio, context.asset)
        context.order(context.asset, 10)

    def look(algo, context, data):
        snaps[context.bar_no] = _snapshot(context.portfolio, context.asset)

    run({0: buy, 1: look, 2: look}, store, capital_base=100_000)
    assert snaps[0]["cash"] == 100_000 and snaps[0]["portfolio_value"] == 100_000
    assert snaps[0]["amount"] == 0 and snaps[0]["n_positions"] == 0
    # bar 1: 10 shares filled at its open 100, marked at its close 105
    s1 = snaps[1]
    assert s1["cash"] == 100_000 - 10 * 100
    assert s1["positions_value"] == 10 * 105
    assert s1["portfolio_value"] == 100_050
    assert s1["pnl"] == 50
    assert s1["returns"] == pytest.approx(0.0005)
    assert s1["starting_cash"] == 100_000
    assert (s1["amount"], s1["cost_basis"], s1["last_sale_price"]) == (10, 100.0, 105.0)
    assert s1["last_sale_date"] == store.index[1]
    # bar 2: no trade, marked at close 111
    s2 = snaps[2]
    assert (s2["cash"], s2["positions_value"], s2["portfolio_value"]) == (99_000, 1_110, 100_110)
    assert s2["pnl"] == 110 and s2["returns"] == pytest.approx(0.0011)


def test_position_of_an_asset_not_held_is_empty(store):
    seen = {}

    def first(algo, context, data):
        pos = context.portfolio.positions[context.asset]
        seen["before"] = (pos.amount, pos.asset, context.asset in context.portfolio.positions)
        context.order(context.asset, 2)

    def sell(algo, context, data):
        context.order(context.asset, -2)

    def after(algo, context, data):
        positions = context.portfolio.positions
        seen["after"] = (positions[context.asset].amount, len(positions), context.asset in positions)

    run({0: first, 1: sell, 3: after}, store)
    assert seen["before"] == (0, store.assets[0], False)
    assert seen["after"] == (0, 0, False)


def test_cost_basis_is_the_average_price_per_share(store):
    seen = {}

    def buy(algo, context, data):
        context.order(context.asset, 10)

    def look(algo, context, data):
        pos = context.portfolio.positions[context.asset]
        seen[context.bar_no] = (pos.amount, pos.cost_basis)

    def look_and_sell(algo, context, data):
        look(algo, context, data)
        context.order(context.asset, -5)

    # buys fill at bar 1 (open 100) and bar 2 (open 110); the sale at bar 3 keeps the basis
    run({0: buy, 1: lambda a, c, d: (look(a, c, d), buy(a, c, d)), 2: look_and_sell, 3: look}, store)
    assert seen[1] == (10, 100.0)
    assert seen[2] == (20, 105.0)
    assert seen[3] == (15, 105.0)


# ------------------------------------------------------------------ parameters
class WithParams(TradingAlgorithm):
    params = {"n": 5, "window": 20}

    def initialize(self, context):
        record(n=self.params.n, window=self.params["window"], ctx_n=context.params.n)


def _params_of(result):
    row = result.perf.iloc[0]
    return int(row["n"]), int(row["window"]), int(row["ctx_n"])


def test_class_params_are_defaults(store):
    assert _params_of(run_algorithm(WithParams, data=store)) == (5, 20, 5)


def test_run_algorithm_keywords_override_params(store):
    result = run_algorithm(WithParams, data=store, n=7)
    assert _params_of(result) == (7, 20, 7)
    assert result.settings["params"] == {"n": 7, "window": 20}
    assert WithParams.params == {"n": 5, "window": 20}  # the class default is untouched


def test_unknown_param_is_a_type_error_with_a_near_match(store):
    with pytest.raises(TypeError) as info:
        run_algorithm(WithParams, data=store, windw=3)
    msg = str(info.value)
    assert "'windw'" in msg and "Did you mean 'window'" in msg


def test_passing_an_algorithm_instance_works(store):
    assert _params_of(run_algorithm(WithParams(n=9), data=store)) == (9, 20, 9)
    assert _params_of(run_algorithm(WithParams(), data=store, window=3)) == (5, 3, 5)
    log = []
    result = run_algorithm(Hooks(log=log), data=store)
    assert log[-1] == ("analyze", result)


def test_missing_param_reads_as_attribute_error_with_near_match(store):
    seen = {}

    class Typo(WithParams):
        def initialize(self, context):
            try:
                self.params.windo  # noqa: B018
            except AttributeError as exc:
                seen["msg"] = str(exc)

    run_algorithm(Typo, data=store)
    assert "'windo'" in seen["msg"] and "Did you mean 'window'" in seen["msg"]


def test_params_read_as_attributes_stay_in_step_with_the_dict():
    params = WithParams(n=7).params
    params["window"] = 30
    params.update(extra=1)
    params.n = 8  # attribute assignment sets the parameter
    assert (params.n, params["n"], params.window, params.extra) == (8, 8, 30, 1)
    del params["extra"]
    assert not hasattr(params, "extra")
    params.setdefault("lookback", 3)
    params |= {"size": 10}
    assert (params.lookback, params.size) == (3, 10)
    params["items"] = 2  # named like a dict method: the method stays, the value reads by subscript
    assert callable(params.items) and params["items"] == 2
    copied = pickle.loads(pickle.dumps(params))
    assert copied == params and (copied.n, copied.size) == (8, 10)
    params.clear()
    assert not hasattr(params, "n") and dict(params) == {}


# ------------------------------------------------------------------ models
class Models(TradingAlgorithm):
    def initialize(self, context):
        context.asset = self.symbol("X")
        self.set_slippage(FixedSlippage(spread=1.0))
        self.set_commission(PerShare(cost=0.5))

    def handle_data(self, context, data):
        if not context.portfolio.positions[context.asset].amount and not self.get_open_orders():
            self.order(context.asset, 10)


def test_set_slippage_and_set_commission_in_initialize(store):
    result = run_algorithm(Models, data=store, end=store.index[1])
    fill = result.fills.iloc[0]
    assert fill["price"] == 100.5  # open 100 plus half the spread
    assert fill["commission"] == 5.0  # 10 shares x 0.5
    assert result.perf["cash"].iloc[-1] == 100_000 - 10 * 100.5 - 5.0


@pytest.mark.parametrize("call", ["set_slippage", "set_commission"])
def test_setting_models_after_initialize_raises(store, call):
    model = FixedSlippage(spread=1.0) if call == "set_slippage" else PerShare(cost=0.5)

    def late(algo, context, data):
        getattr(algo, call)(model)

    with pytest.raises(RuntimeError, match="initialize"):
        run({1: late}, store)


def test_set_models_refuse_non_models(store):
    def initialize(context):
        context.set_commission(0.5)

    with pytest.raises(TypeError, match="commission model"):
        run_algorithm(initialize=initialize, handle_data=lambda c, d: None, data=store)


# ------------------------------------------------------------------ clock
def test_get_datetime_is_the_current_bar_timestamp(store):
    seen = []

    def handle_data(context, data):
        seen.append((get_datetime(), context.get_datetime(), data.current_dt))

    run_algorithm(initialize=lambda c: None, handle_data=handle_data, data=store, start=store.index[2])
    assert [s[0] for s in seen] == list(store.index[2:])
    assert all(a == b == c for a, b, c in seen)


# ------------------------------------------------------------------ errors
class Boom(Exception):
    pass


def test_exception_in_handle_data_propagates_unchanged_with_partial_result(store):
    raised = Boom("boom at bar 2", 42)

    def buy(algo, context, data):
        context.order(context.asset, 1)

    def explode(algo, context, data):
        raise raised

    with pytest.raises(Boom) as info:
        run({0: buy, 2: explode}, store)
    exc = info.value
    assert exc is raised
    assert exc.args == ("boom at bar 2", 42)
    partial = exc.partial_result
    assert isinstance(partial, BacktestResult)
    assert list(partial.perf.index) == list(store.index[:3])
    assert partial.fills["qty"].tolist() == [1.0]


def test_builtin_exception_type_and_message_are_kept(store):
    def explode(algo, context, data):
        {}["missing-key"]

    with pytest.raises(KeyError) as info:
        run({1: explode}, store)
    assert info.value.args == ("missing-key",)
    assert hasattr(info.value, "partial_result")
