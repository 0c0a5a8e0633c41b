"""Ledger and results (README: API at a glance, results): positions and their cost basis, realised
pnl, round-trip trades, the per-session perf frame, recorded values, logs, metrics,
save/load, the text summary, and the partial result of a strategy that raises.

Scripted strategies on hand-made daily bars (bar 0 = 2021-01-04, business days); the
expected numbers are worked out by hand in the comments. Capital is 100 000.
"""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest
from helpers import bars, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustybt_nb import BacktestResult
from rustybt_nb.finance.commission import PerShare, PerTrade
from rustybt_nb.finance.slippage import NoSlippage
from rustybt_nb.metrics import METRIC_NAMES
from rustybt_nb.results import FRAMES

CAPITAL = 100_000.0
DAY = pd.Timestamp("2021-01-04")


def session(i: int) -> pd.Timestamp:
    return DAY + pd.offsets.BDay(i)


def buy(n, **kw):
    return lambda a, c, d: a.order(c.asset, n, **kw)


def sell(n, **kw):
    return lambda a, c, d: a.order(c.asset, -n, **kw)


def steps(*fns):
    def step(algo, context, data):
        for fn in fns:
            fn(algo, context, data)

    return step


def snapshot(name):
    """A script step saving the position and portfolio as the strategy sees them."""

    def step(algo, context, data):
        pos = context.portfolio.positions[context.asset]
        pf = context.portfolio
        context.out[name] = {
            "amount": pos.amount, "cost_basis": pos.cost_basis, "last_sale_price": pos.last_sale_price,
            "last_sale_date": pos.last_sale_date, "cash": pf.cash, "positions_value": pf.positions_value,
            "portfolio_value": pf.portfolio_value, "pnl": pf.pnl, "returns": pf.returns,
            "starting_cash": pf.starting_cash,
        }

    return step


# Opens 10, 10, 12, 13, 13, 12; closes 10, 10.5, 12.5, 13, 12, 12
PATH = [(10, 10.5, 9.5, 10), (10, 11, 9, 10.5), (12, 13, 11, 12.5), (13, 14, 12, 13), (13, 14, 12, 12),
        (12, 12.5, 11.5, 12)]


# =========================================================================== positions
class TestPositions:
    def test_average_cost_realised_pnl_and_last_sale(self):
        # bar 0: buy 100 -> 100 @ 10 (bar 1 open); bar 1: buy 100 -> 100 @ 12 (bar 2 open)
        #   -> 200 shares, cost basis (1000 + 1200) / 200 = 11
        # bar 2: sell 50 -> 50 @ 13 (bar 3 open): realised (13 - 11) * 50 = 100; basis stays 11
        out = {}
        res = run({0: buy(100), 1: buy(100), 2: steps(snapshot("s2"), sell(50)), 3: snapshot("s3"),
                   4: snapshot("s4")}, bars(PATH), out=out)
        s2, s3 = out["s2"], out["s3"]
        assert (s2["amount"], s2["cost_basis"], s2["last_sale_price"], s2["last_sale_date"]) == \
            (200, 11.0, 12.5, session(2))
        assert (s3["amount"], s3["cost_basis"], s3["last_sale_price"]) == (150, 11.0, 13.0)
        assert out["s4"]["last_sale_price"] == 12.0
        assert res.fills["realized_pnl"].tolist() == [0.0, 0.0, 100.0]
        assert res.fills["position_after"].tolist() == [100.0, 200.0, 150.0]
        # portfolio while handling bar 2: cash 100_000 - 2200 = 97_800, 200 * 12.5 = 2500
        assert (s2["cash"], s2["positions_value"], s2["portfolio_value"]) == (97_800.0, 2500.0, 100_300.0)
        assert s2["pnl"] == pytest.approx(300.0) and s2["returns"] == pytest.approx(0.003)
        assert s2["starting_cash"] == CAPITAL

    def test_position_of_an_asset_not_held_is_empty(self):
        out = {}
        run({0: snapshot("s0")}, bars(PATH), out=out)
        assert out["s0"]["amount"] == 0
        assert out["s0"]["positions_value"] == 0.0

    def test_closed_position_leaves_the_portfolio(self):
        out = {}

        def look(a, c, d):
            out["held"] = dict(c.portfolio.positions)
            out["amount"] = c.portfolio.positions[c.asset].amount

        run({0: buy(100), 1: sell(100), 3: look}, bars(PATH), out=out)
        assert out["held"] == {} and out["amount"] == 0

    def test_positions_frame_per_session(self):
        # same trades as the first test; positions rows for sessions 1..5 while held
        res = run({0: buy(100), 1: buy(100), 2: sell(50)}, bars(PATH))
        p = res.positions
        assert p["dt"].tolist() == [session(i) for i in range(1, 6)]
        assert p["amount"].tolist() == [100.0, 200.0, 150.0, 150.0, 150.0]
        assert p["cost_basis"].tolist() == [10.0, 11.0, 11.0, 11.0, 11.0]
        assert p["last_sale_price"].tolist() == [10.5, 12.5, 13.0, 12.0, 12.0]
        assert p["market_value"].tolist() == [1050.0, 2500.0, 1950.0, 1800.0, 1800.0]
        assert set(p["asset"]) == {"X"}

    def test_short_position_cost_basis_and_pnl(self):
        # sell 100 @ 12 (bar 2 open), add sell 100 @ 13 (bar 3) -> -200, basis 12.5;
        # buy back 100 @ 13 (bar 4): realised (13 - 12.5) * -100 = -50
        res = run({1: sell(100), 2: sell(100), 3: buy(100)}, bars(PATH))
        assert res.fills["realized_pnl"].tolist() == [0.0, 0.0, -50.0]
        assert res.positions["cost_basis"].tolist() == [12.0, 12.5, 12.5, 12.5]
        assert res.positions["amount"].tolist() == [-100.0, -200.0, -100.0, -100.0]

    def test_commission_is_not_in_the_cost_basis(self):
        res = run({0: buy(100)}, bars(PATH), commission=PerShare(cost=0.05))
        assert res.positions["cost_basis"].iloc[0] == 10.0
        # cash 100_000 - 1000 - 5
        assert res.perf["cash"].iloc[-1] == pytest.approx(98_995.0)


# =========================================================================== trades
class TestTrades:
    def test_flip_closes_one_round_trip_and_opens_another(self):
        # buy 100 @ 10 (bar 1); sell 150 @ 13 (bar 3): closes the long (+300) and opens 50 short @ 13.
        # At the end (bar 5, close 12) the short is open: unrealised (13 - 12) * 50 = 50.
        res = run({0: buy(100), 2: sell(150)}, bars(PATH))
        t = res.trades
        assert len(t) == 2
        long_, short = t.iloc[0], t.iloc[1]
        assert (long_["direction"], long_["size"], long_["entry_price"], long_["exit_price"], long_["pnl"],
                long_["is_open"]) == ("long", 100.0, 10.0, 13.0, 300.0, False)
        assert (long_["entry_dt"], long_["exit_dt"]) == (session(1), session(3))
        assert (short["direction"], short["size"], short["entry_price"], short["exit_price"], short["pnl"],
                short["is_open"]) == ("short", 50.0, 13.0, 12.0, 50.0, True)
        assert short["entry_dt"] == session(3) and pd.isna(short["exit_dt"])
        assert res.fills["realized_pnl"].tolist() == [0.0, 300.0]
        assert res.positions["amount"].tolist() == [100.0, 100.0, -50.0, -50.0, -50.0]
        assert res.positions["cost_basis"].tolist() == [10.0, 10.0, 13.0, 13.0, 13.0]
        assert list(long_["order_ids"]) == [1, 2] and list(short["order_ids"]) == [2]

    def test_round_trip_with_adds_and_partial_exits(self):
        # buy 100 @ 10, buy 100 @ 12 (entry 11, size 200); sell 100 @ 13, sell 100 @ 13 (bar 4 open)
        # pnl (13 - 11) * 200 = 400; exit price 13
        res = run({0: buy(100), 1: buy(100), 2: sell(100), 3: sell(100)}, bars(PATH))
        t = res.trades
        assert len(t) == 1
        row = t.iloc[0]
        assert (row["size"], row["entry_price"], row["exit_price"], row["pnl"], row["is_open"]) == \
            (200.0, 11.0, 13.0, 400.0, False)
        assert (row["entry_bar"], row["exit_bar"], row["bars_held"]) == (1.0, 4.0, 3.0)
        assert list(row["order_ids"]) == [1, 2, 3, 4]

    def test_trade_commission_and_net_pnl(self):
        # PerTrade(2): buy 100 @ 10 (bar 1), sell 100 @ 13 (bar 3 open) -> pnl 300,
        # commission 2 + 2 = 4, net 296, return 296 / (10 * 100) = 0.296
        res = run({0: buy(100), 2: sell(100)}, bars(PATH), commission=PerTrade(cost=2.0))
        row = res.trades.iloc[0]
        assert (row["pnl"], row["commission"], row["net_pnl"]) == (300.0, 4.0, 296.0)
        assert row["return_pct"] == pytest.approx(0.296)

    def test_open_trade_at_the_end(self):
        # buy 100 @ 12 (bar 2 open); last close 12 -> open trade, pnl 0, exit_price = last price
        res = run({1: buy(100)}, bars(PATH))
        row = res.trades.iloc[0]
        assert bool(row["is_open"]) is True
        assert (row["entry_price"], row["exit_price"], row["pnl"]) == (12.0, 12.0, 0.0)
        assert res.metrics["trade_count"] == 0  # only closed trades count
    def test_flip_commission_is_split_between_both_trades(self):
        # PerTrade(3): buy 100 -> 3 on trade 1. The flip fill (sell 150) pays 3: 100/150 of it (2) closes
        # trade 1, 50/150 of it (1) opens trade 2. Trades 5 + 1 = total commission 6.
        res = run({0: buy(100), 2: sell(150)}, bars(PATH), commission=PerTrade(cost=3.0))
        assert res.metrics["total_commission"] == 6.0
        assert res.trades["commission"].tolist() == pytest.approx([5.0, 1.0])
        assert res.trades["commission"].sum() == pytest.approx(res.fills["commission"].sum())


# =========================================================================== perf
class TestPerf:
    def test_one_row_per_session_and_accounting_identities(self):
        # buy 100 @ 10 (bar 1), sell 150 @ 13 (bar 3) -> short 50.
        #   s0: cash 100_000, pv 100_000
        #   s1: cash 99_000, 100 * 10.5 = 1050 -> 100_050
        #   s2: 100 * 12.5 = 1250 -> 100_250
        #   s3: cash 99_000 + 1950 = 100_950, -50 * 13 = -650 -> 100_300
        #   s4: -50 * 12 = -600 -> 100_350;  s5: same -> 100_350
        res = run({0: buy(100), 2: sell(150)}, bars(PATH))
        perf = res.perf
        assert list(perf.index) == [session(i) for i in range(6)]
        assert perf["cash"].tolist() == [100_000.0, 99_000.0, 99_000.0, 100_950.0, 100_950.0, 100_950.0]
        assert perf["positions_value"].tolist() == [0.0, 1050.0, 1250.0, -650.0, -600.0, -600.0]
        assert perf["portfolio_value"].tolist() == [100_000.0, 100_050.0, 100_250.0, 100_300.0, 100_350.0,
                                                    100_350.0]
        pd.testing.assert_series_equal(perf["portfolio_value"], perf["cash"] + perf["positions_value"],
                                       check_names=False)
        assert perf["pnl"].tolist() == [0.0, 50.0, 200.0, 50.0, 50.0, 0.0]
        prev = [CAPITAL, *perf["portfolio_value"].iloc[:-1]]
        assert perf["returns"].tolist() == pytest.approx([v / p - 1 for v, p in zip(perf["portfolio_value"], prev)])
        assert perf["returns"].iloc[1] == pytest.approx(0.0005)
        assert perf["pnl"].sum() == pytest.approx(perf["portfolio_value"].iloc[-1] - CAPITAL)
        assert res.portfolio_value.equals(perf["portfolio_value"])

    def test_perf_matches_what_the_strategy_saw(self):
        out = {}
        script = {i: snapshot(f"s{i}") for i in range(6)}
        script[0] = steps(buy(100), snapshot("s0"))
        script[2] = steps(sell(150), snapshot("s2"))
        res = run(script, bars(PATH), out=out)
        for i in range(6):
            row = res.perf.iloc[i]
            assert row["portfolio_value"] == pytest.approx(out[f"s{i}"]["portfolio_value"])
            assert row["cash"] == pytest.approx(out[f"s{i}"]["cash"])

    def test_start_and_end_limit_the_sessions(self):
        res = run({0: buy(10)}, bars(PATH), start="2021-01-05", end="2021-01-07")
        assert list(res.perf.index) == [session(1), session(2), session(3)]
        # the first simulated bar is bar 1 (script bar number 0): fill at bar 2's open 12
        assert res.fills["price"].tolist() == [12.0]

    def test_no_trades_keeps_capital(self):
        res = run({}, bars(PATH), capital_base=5_000)
        assert (res.perf["portfolio_value"] == 5_000).all()
        assert (res.perf["returns"] == 0).all()
        assert res.metrics["total_return"] == 0.0


# =========================================================================== record and logs
class Thing:
    def __repr__(self) -> str:
        return "Thing<7>"


class TestRecordAndLogs:
    def test_record_numbers_strings_objects_carried_forward(self):
        res = run({0: lambda a, c, d: a.record(x=1, label="start"),
                   1: lambda a, c, d: a.record(x=2.5, obj=Thing()),
                   2: lambda a, c, d: a.record("y", 3, flag=True)}, bars(PATH[:4]))
        perf = res.perf
        assert perf["x"].tolist() == [1.0, 2.5, 2.5, 2.5]
        assert perf["label"].tolist() == ["start"] * 4
        assert perf["obj"].iloc[0] is None or pd.isna(perf["obj"].iloc[0])
        assert perf["obj"].iloc[1:].tolist() == ["Thing<7>"] * 3
        assert pd.isna(perf["y"].iloc[0]) and perf["y"].iloc[2:].tolist() == [3, 3]
        assert perf["flag"].iloc[2:].tolist() == [True, True]

    def test_last_record_of_a_session_wins(self):
        res = run({0: lambda a, c, d: (a.record(x=1), a.record(x=2))}, bars(PATH[:2]))
        assert res.perf["x"].tolist() == [2.0, 2.0]

    def test_record_name_clash_with_perf_column_is_kept_apart(self):
        res = run({0: lambda a, c, d: a.record(cash=-1)}, bars(PATH[:2]))
        assert res.perf["cash"].tolist() == [CAPITAL, CAPITAL]
        assert res.perf["recorded_cash"].tolist() == [-1, -1]

    def test_record_rejects_odd_positional_args(self):
        out = {}

        def bad(a, c, d):
            with pytest.raises(TypeError, match="record"):
                a.record("x")
            out["ok"] = True

        run({0: bad}, bars(PATH[:2]), out=out)
        assert out["ok"]
    def test_recorded_numeric_looking_string_stays_a_string(self):
        res = run({0: lambda a, c, d: a.record(code="007")}, bars(PATH[:2]))
        assert res.perf["code"].tolist() == ["007", "007"]
    def test_recorded_timestamp_stays_a_timestamp(self):
        ts = pd.Timestamp("2020-01-01")
        res = run({0: lambda a, c, d: a.record(when=ts)}, bars(PATH[:2]))
        assert res.perf["when"].tolist() == [ts, ts]

    def test_log_records_carry_simulation_time(self):
        def init(a, c):
            a.log.info("set up")

        res = run({1: lambda a, c, d: a.log.info("bar %d at %s", 1, "open"),
                   3: lambda a, c, d: (a.log.warning("careful"), a.log.error("bad"))},
                  bars(PATH[:5]), init=init)
        logs = res.logs
        assert list(logs.columns) == ["dt", "level", "message"]
        assert logs["message"].tolist() == ["set up", "bar 1 at open", "careful", "bad"]
        assert logs["level"].tolist() == ["INFO", "INFO", "WARNING", "ERROR"]
        # initialize runs before the first session: stamped with that session
        assert logs["dt"].tolist() == [session(0), session(1), session(3), session(3)]
    def test_logs_keep_the_order_things_happened_within_a_bar(self):
        def go(a, c, d):
            a.log.info("before")
            a.cancel_order(1)  # already filled: a WARNING now
            a.log.info("after")

        res = run({0: buy(1), 1: go}, bars(PATH[:3]))
        assert res.logs["level"].tolist() == ["INFO", "WARNING", "INFO"]

    def test_context_log_is_the_algorithm_log(self):
        res = run({0: lambda a, c, d: c.log.info("via context")}, bars(PATH[:2]))
        assert res.logs["message"].tolist() == ["via context"]


# =========================================================================== metrics
# closes 10, 11, 12, 11, 10, 10; opens 10, 10, 12, 11, 10.5, 10
METRIC_PATH = [(10, 10.5, 9.5, 10), (10, 11.2, 9.8, 11), (12, 12.3, 11.8, 12), (11, 11.4, 10.8, 11),
               (10.5, 10.7, 9.8, 10), (10, 10.2, 9.8, 10)]


class TestMetrics:
    def _run(self, **kw):
        # trade 1: buy 100 @ 10 (bar 1), sell @ 12 (bar 2): +200
        # trade 2: buy 100 @ 11 (bar 3), sell @ 10.5 (bar 4): -50
        return run({0: buy(100), 1: sell(100), 2: buy(100), 3: sell(100)}, bars(METRIC_PATH), **kw)

    def test_hand_checked_metrics(self):
        res = self._run()
        m = res.metrics
        # portfolio: s0 100_000; s1 99_000 + 1100 = 100_100; s2 100_200; s3 99_100 + 1100 = 100_200;
        # s4 100_200 - 50 = 100_150; s5 100_150
        pv = [100_000, 100_100, 100_200, 100_200, 100_150, 100_150]
        assert res.perf["portfolio_value"].tolist() == pv
        prev = [CAPITAL, *pv[:-1]]
        rets = [v / p - 1 for v, p in zip(pv, prev)]
        mean, std = statistics.fmean(rets), statistics.stdev(rets)
        downside = math.sqrt(statistics.fmean([min(r, 0.0) ** 2 for r in rets]))
        years = 7 / 365.25  # 2021-01-04 .. 2021-01-11
        assert m["start_value"] == CAPITAL and m["end_value"] == 100_150
        assert m["total_return"] == pytest.approx(0.0015)
        assert m["cagr"] == pytest.approx(1.0015 ** (1 / years) - 1)
        assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
        assert m["annual_volatility"] == pytest.approx(std * math.sqrt(252))
        assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
        # the only drawdown: peak 100_200 -> 100_150, lasting 2 sessions (s4, s5)
        assert m["max_drawdown"] == pytest.approx(100_150 / 100_200 - 1)
        assert m["max_drawdown_duration"] == 2
        assert m["trade_count"] == 2
        assert m["win_rate"] == 0.5
        assert m["profit_factor"] == pytest.approx(200 / 50)
        assert m["avg_trade_pnl"] == pytest.approx(75.0)
        # positions held at the close of s1 and s3 only: 2 of 6 sessions
        assert m["exposure"] == pytest.approx(2 / 6)
        assert m["total_commission"] == 0.0
        assert m["sessions"] == 6

    def test_metrics_with_commission(self):
        # PerTrade(5) on 4 fills: 20 in total; trades net 200 - 10 = 190 and -50 - 10 = -60
        res = self._run(commission=PerTrade(cost=5.0))
        m = res.metrics
        assert m["total_commission"] == 20.0
        assert m["end_value"] == 100_130.0
        assert m["profit_factor"] == pytest.approx(190 / 60)
        assert res.trades["net_pnl"].tolist() == [190.0, -60.0]

    def test_metric_names(self):
        res = self._run()
        assert set(METRIC_NAMES) <= set(res.metrics.index)
        for name in ("total_return", "sharpe", "max_drawdown", "trade_count", "win_rate", "profit_factor",
                     "exposure", "cagr", "sortino"):
            assert name in res.metrics.index

    def test_all_winners_profit_factor_is_infinite(self):
        res = run({0: buy(100), 1: sell(100)}, bars(METRIC_PATH))
        assert res.metrics["profit_factor"] == math.inf
        assert res.metrics["win_rate"] == 1.0


# =========================================================================== save / load / summary
def _rich_result():
    """Partial fills, a rejected order, a cancel, a warning, logs, numeric records, a flip."""
    store = bars([(*row, 1000) for row in PATH])

    def bar0(a, c, d):
        a.order(c.asset, 150)
        a.order("NOPE", 1)
        a.order(c.asset, 5, limit_price=1.0)
        a.record(x=1.5, flag=True)

    def bar2(a, c, d):
        a.cancel_order(3)
        a.cancel_order(3)  # refused: a WARNING
        a.order(c.asset, -250)
        a.log.info("flip")
        a.record(n=3)

    return run({0: bar0, 2: bar2}, store, slippage=NoSlippage(volume_limit=0.1), commission=PerTrade(cost=1.0))


def test_run_collects_older_generations_less_often_and_restores_the_thresholds():
    """During a run the middle and oldest generations are collected rarer (the run's
    orders and events are not walked again and again); the youngest as usual; after
    the run, and after a run that raised, the thresholds are the caller's again."""
    import gc

    seen = []
    store = bars([(10, 11, 9, 10)] * 5)
    before = gc.get_threshold()
    run({1: lambda algo, ctx, data: seen.append(gc.get_threshold())}, store)
    assert seen[0][0] == before[0]
    assert seen[0][1] >= max(before[1], 100) and seen[0][2] >= max(before[2], 1000)
    assert gc.get_threshold() == before

    def boom(algo, ctx, data):
        raise RuntimeError("strategy error")

    with pytest.raises(RuntimeError, match="strategy error"):
        run({2: boom}, store)
    assert gc.get_threshold() == before


class TestDeferredFrames:
    """orders / order_events / fills / positions / prices are built on first read."""

    DEFERRED = ("orders", "order_events", "fills", "positions", "prices")

    def test_a_run_leaves_them_unbuilt_until_read_then_keeps_them(self):
        res = _rich_result()
        assert not any(isinstance(vars(res)[f"_{name}"], pd.DataFrame) for name in self.DEFERRED)
        assert res.run_info["orders"] == len(res.orders) == 4
        assert res.run_info["events"] == len(res.order_events)
        for name in self.DEFERRED:
            assert getattr(res, name) is getattr(res, name)  # built once, then the same frame
        res.orders["note"] = "mine"  # a change to the frame stays, as with any attribute
        assert (res.orders["note"] == "mine").all()
        res.fills = res.fills.iloc[:0]
        assert len(res.fills) == 0

    def test_frames_read_late_equal_frames_read_at_once(self):
        late = _rich_result()
        early = _rich_result()
        frames = {name: getattr(early, name) for name in self.DEFERRED}
        run({0: lambda a, c, d: a.order(c.asset, 7)}, bars([(*row, 1000) for row in PATH]))  # another run between
        for name, frame in frames.items():
            pd.testing.assert_frame_equal(getattr(late, name), frame, obj=name)


class TestSaveLoad:
    def test_round_trip_is_equal_frame_by_frame(self, tmp_path):
        res = _rich_result()
        assert len(res.fills) >= 4 and len(res.logs) == 2 and (res.orders["status"] == "rejected").any()
        folder = res.save(tmp_path / "run1")
        loaded = BacktestResult.load(folder)
        for name in FRAMES:
            pd.testing.assert_frame_equal(getattr(res, name), getattr(loaded, name), obj=name)
        pd.testing.assert_series_equal(res.metrics, loaded.metrics)
        assert res.equals(loaded)
        assert loaded.settings["fill_model"] == "ohlc"
        assert loaded.summary() == res.summary()

    def test_saved_folder_has_no_pickle(self, tmp_path):
        _rich_result().save(tmp_path)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert "meta.json" in names
        assert all(n.endswith((".parquet", ".json")) for n in names)

    def test_load_of_a_missing_folder_raises(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            BacktestResult.load(tmp_path / "nothing-here")

    def test_equals_detects_a_difference(self, tmp_path):
        res = _rich_result()
        loaded = BacktestResult.load(res.save(tmp_path))
        loaded.perf.iloc[-1, 0] += 1000.0
        assert not res.equals(loaded)
        other = BacktestResult.load(tmp_path)
        other.orders.loc[0, "status"] = "canceled"
        assert not res.equals(other)
    def test_equals_detects_a_one_dollar_difference(self, tmp_path):
        res = _rich_result()
        loaded = BacktestResult.load(res.save(tmp_path))
        loaded.perf.iloc[-1, 0] += 1.0  # 100_398 -> 100_399
        assert not res.equals(loaded)
    def test_round_trip_with_string_records(self, tmp_path):
        res = run({0: lambda a, c, d: a.record(label="hi", obj=Thing())}, bars(PATH[:3]))
        loaded = BacktestResult.load(res.save(tmp_path))
        assert res.equals(loaded)
    def test_save_with_mixed_type_record(self, tmp_path):
        res = run({0: lambda a, c, d: a.record(v="warming up"), 1: lambda a, c, d: a.record(v=3)},
                  bars(PATH[:3]))
        res.save(tmp_path)
        assert BacktestResult.load(tmp_path).perf["v"].tolist()[1:] == [3, 3]


class TestSummary:
    def test_summary_mentions_symbols_return_and_fill_model(self):
        res = run({0: buy(100), 2: sell(100)}, bars(PATH, symbol="ABC"), symbol="ABC")
        text = res.summary()
        # pv at the end: 100_000 + (13 - 10) * 100 = 100_300 -> total return 0.30 %
        assert "ABC" in text
        assert "0.30%" in text
        assert "ohlc" in text
        assert repr(res) == text

    def test_summary_shows_the_close_model(self):
        res = run({0: buy(100)}, bars(PATH), fill_model="close")
        assert "fill model close" in res.summary()
        assert res.settings["fill_model"] == "close"


# =========================================================================== errors
class TestStrategyErrors:
    def test_exception_propagates_with_partial_result(self):
        def boom(a, c, d):
            raise ZeroDivisionError("boom at bar 3")

        with pytest.raises(ZeroDivisionError, match="boom at bar 3") as info:
            run({0: buy(100), 1: lambda a, c, d: a.record(x=1), 3: boom}, bars(PATH))
        partial = info.value.partial_result
        assert isinstance(partial, BacktestResult)
        # sessions 0..3 are in (bar 3 was revealed and marked before handle_data raised)
        assert list(partial.perf.index) == [session(i) for i in range(4)]
        assert partial.fills["price"].tolist() == [10.0]
        assert partial.perf["x"].tolist()[1:] == [1.0, 1.0, 1.0]
        # s3: cash 99_000 + 100 * 13 = 100_300
        assert partial.perf["portfolio_value"].iloc[-1] == 100_300.0
        assert partial.run_info["completed"] is False
        assert "ZeroDivisionError" in partial.run_info["error"]

    def test_exception_in_initialize_has_an_empty_partial_result(self):
        def init(a, c):
            raise RuntimeError("bad init")

        with pytest.raises(RuntimeError, match="bad init") as info:
            run({}, bars(PATH), init=init)
        partial = info.value.partial_result
        assert len(partial.perf) == 0 and len(partial.fills) == 0


# =========================================================================== multi-asset and a property
class TestMultiAsset:
    def test_perf_sums_positions_of_several_assets(self):
        from rustybt_nb.data import from_frames

        idx = pd.date_range("2021-01-04", periods=4, freq="B")
        fx = pd.DataFrame({"open": [10.0, 10, 11, 12], "high": [10.5, 10.5, 11.5, 12.5],
                           "low": [9.5, 9.5, 10.5, 11.5], "close": [10.0, 10.5, 11.0, 12.0]}, index=idx)
        fy = pd.DataFrame({"open": [50.0, 50, 48, 47], "high": [51.0, 51, 49, 48],
                           "low": [49.0, 49, 47, 46], "close": [50.0, 49.0, 48.0, 46.0]}, index=idx)
        store = from_frames({"X": fx, "Y": fy})

        def go(a, c, d):
            a.order(a.symbol("X"), 100)
            a.order(a.symbol("Y"), -20)

        res = run({0: go}, store)
        # fills at bar 1 opens: X +100 @ 10, Y -20 @ 50 -> cash 100_000 - 1000 + 1000 = 100_000
        # s1: 100 * 10.5 - 20 * 49 = 1050 - 980 = 70;  s2: 1100 - 960 = 140;  s3: 1200 - 920 = 280
        assert res.perf["cash"].tolist() == [100_000.0] * 4
        assert res.perf["positions_value"].tolist() == [0.0, 70.0, 140.0, 280.0]
        assert res.perf["portfolio_value"].tolist() == [100_000.0, 100_070.0, 100_140.0, 100_280.0]
        p = res.positions
        assert p[p["dt"] == session(3)][["asset", "amount", "market_value"]].values.tolist() == \
            [["X", 100.0, 1200.0], ["Y", -20.0, -920.0]]
        assert sorted(res.trades["asset"]) == ["X", "Y"]
        assert res.trades.set_index("asset")["pnl"].to_dict() == {"X": 200.0, "Y": 80.0}


_q = st.integers(min_value=32, max_value=48).map(lambda k: k / 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(closes=st.lists(_q, min_size=3, max_size=8), data=st.data())
def test_accounting_identities_hold_for_random_trading(closes, data):
    rows = [(c, c + 0.5, c - 0.5, c) for c in closes]  # open = close, so a fill is at the next bar's close
    amounts = data.draw(st.lists(st.integers(-30, 30), min_size=len(rows) - 1, max_size=len(rows) - 1))
    script = {i: buy(n) for i, n in enumerate(amounts) if n}
    res = run(script, bars(rows), commission=PerShare(cost=0.01, min_trade_cost=0.25))
    perf, fills = res.perf, res.fills
    cash = CAPITAL - float((fills["qty"] * fills["price"]).sum()) - float(fills["commission"].sum())
    assert perf["cash"].iloc[-1] == pytest.approx(cash)
    assert (perf["portfolio_value"] - perf["cash"] - perf["positions_value"]).abs().max() < 1e-6
    # positions valued at the close of every session
    held = fills.groupby("bar")["qty"].sum().reindex(range(len(rows)), fill_value=0.0).cumsum()
    assert perf["positions_value"].tolist() == pytest.approx((held * pd.Series(closes)).tolist())
    # gross trade pnl (closed + open, before commission) = change in value + commissions paid
    total = perf["portfolio_value"].iloc[-1] - CAPITAL + fills["commission"].sum()
    assert res.trades["pnl"].sum() == pytest.approx(total, abs=1e-6)
    assert res.metrics["total_commission"] == pytest.approx(fills["commission"].sum())
    assert res.fills["realized_pnl"].sum() == pytest.approx(res.trades.loc[~res.trades["is_open"], "pnl"].sum() +
                                                            _realized_in_open(res), abs=1e-6)


def _realized_in_open(res) -> float:
    """Realised pnl already booked inside trades still open at the end (partial exits)."""
    open_trades = res.trades[res.trades["is_open"]]
    if open_trades.empty:
        return 0.0
    pos = res.positions[res.positions["dt"] == res.perf.index[-1]]
    unreal = float(((pos["last_sale_price"] - pos["cost_basis"]) * pos["amount"]).sum())
    return float(open_trades["pnl"].sum()) - unreal


# ------------------------------------------------------------------ order log text
def test_order_log_text_describes_each_order_as_it_stood_at_each_event():
    from rustybt_nb.finance.execution import BracketOrder, MarketOrder

    store = bars([(100, 101, 99, 100)] * 5)
    out = {}

    def place(algo, ctx, data):
        out["bid"] = algo.order(ctx.asset, 10, limit_price=90.0)
        algo.order(ctx.asset, 5, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=95,
                                                    take_profit_price=120))

    def reprice(algo, ctx, data):
        assert algo.modify_order(out["bid"], limit_price=92.5, amount=20)

    lines = run({0: place, 2: reprice}, store).order_log_text([1]).splitlines()
    assert "nan" not in " ".join(lines)  # a plain order has no role, even when brackets exist
    submitted, updated = lines
    assert "#1   buy  10    limit 90" in submitted
    assert "#1   buy  20    limit 92.5" in updated and "modified: amount=20, limit=92.5" in updated


def test_exposure_counts_bars_in_the_market_also_for_intraday_strategies():
    # minute bars: buy at 10:00, sell at 15:00 New York time every day; flat at every close,
    # yet in the market for about 300 of the 390 minutes of each session
    from rustybt_nb import TradingAlgorithm, run_algorithm

    class Intraday(TradingAlgorithm):
        def initialize(self, context):
            context.asset = self.symbol("AAPL")
            self.schedule_function(lambda c, d: self.order(c.asset, 10), self.date_rules.every_day(),
                                   self.time_rules.market_open(minutes=30))
            self.schedule_function(lambda c, d: self.order_target(c.asset, 0), self.date_rules.every_day(),
                                   self.time_rules.market_close(minutes=60))

    res = run_algorithm(Intraday, data="AAPL", data_frequency="minute", start="2012-10-01", end="2012-10-05")
    assert res.perf["positions_value"].eq(0).all()
    assert res.metrics["exposure"] == pytest.approx(300 / 390, abs=0.01)


def test_minute_text_shows_exchange_local_times():
    from rustybt_nb import run_algorithm

    def handle(context, data):
        from rustybt_nb.api import order, symbol

        if not context.portfolio.positions:
            order(symbol("AAPL"), 10)

    res = run_algorithm(initialize=lambda c: None, handle_data=handle, data="AAPL", data_frequency="minute",
                        start="2012-10-01", end="2012-10-01")
    assert "2012-10-01 09:31 EDT -> 2012-10-01 16:00 EDT" in res.summary()
    first = res.order_log_text().splitlines()[0]
    assert first.startswith("2012-10-01 09:31 EDT  #1   buy  10")
