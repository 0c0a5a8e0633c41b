#!/usr/bin/env python
"""Strategies as users write them: rustybt_nb vs backtrader, and the cost of each strategy API call.

    python benchmarks/bench_user.py [--quick] [--skip-peers] [--no-micro] [--no-profile] [--output PATH]

Three parts, each engine/strategy/size in a fresh subprocess (as in ``bench_engine.py``):

1. **S1u, S2u, S3u**: ``bench_engine.py``'s S1-S3 (SMA(10)/SMA(50) cross; market in/out,
   bracket, trailing stop) written with the habits of a user's notebook: on every flat bar
   the strategy checks ``get_open_orders(asset)`` before it may enter, sizes the entry
   from the current price (``int(1,000,000 / price)`` shares), reads
   ``context.portfolio.positions[asset]`` and ``record``s the two averages. backtrader's
   versions use its own habits for the same steps (``self.broker.get_orders_open()``,
   ``self.position.size``, ``self.data.close[0]``; it has no ``record``, so it records
   nothing: the comparison leaves that cost to us alone). Same bars as
   ``bench_engine.py``: 100k daily and 1M minute bars of one seeded random walk.
2. **S4**: a universe of 100 synthetic assets x 10 years of XNYS sessions (2010-2019,
   seeded), rebalanced on the first session of each month into the 10 best 6-month
   (126-session) performers with ``order_target_percent`` (9.5 % each; the others to 0).
   backtrader runs the same rule on 100 feeds (``order_target_percent``, sells first,
   ``checksubmit=False``). The fill lists (bar, symbol, shares, price) must be identical.
   Peak memory is compared too (target: at most 2x backtrader's).
3. **Per-call costs** of the strategy API: a strategy whose ``handle_data`` makes one call
   per bar, against the same strategy without the call, over 300,000 minute bars (100,000
   daily bars for ``history(..., '1d')``; 100 assets x 20,000 bars for the calls that take
   many assets); the difference per bar is the call's cost. Every case runs 7 times,
   interleaved, and the best run counts.

Targets (issue 18): S1u-S3u >= 50x backtrader at 100k daily and 1M minute bars with the
same trades; S4 >= 30x backtrader with the same fills; each API call <= 150 ns except
``history`` (<= 3 us) and order placement (<= 5 us for a market order, fill and events
included). A missed target prints ``MISS`` and never fails the run. Exit status: 1 when
trades differ, 2 when rustybt_nb fails to run, 0 otherwise. Results are written as JSON to
``benchmarks/results/user_latest.json``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_engine as be  # noqa: E402  (the shared bars, memory probes and trade comparison)

RESULTS_PATH = HERE / "results" / "user_latest.json"
NOTIONAL = 1_000_000.0  # S1u-S3u entries: int(NOTIONAL / price) shares (the 1M-bar walk reaches ~18,600)
CASH = 1e9
UNIVERSE, TOP, WEIGHT, LOOKBACK = 100, 10, 0.095, 126
S4_CASH = 10_000_000.0
UNIVERSE_SEED = 20261203
USER = ("S1u", "S2u", "S3u")
STRATEGY_TEXT = {
    "S1u": "S1 as users write it: open-order check on flat bars, price sizing, position reads, record",
    "S2u": "S2 (bracket: stop -2 %, target +5 %) with the same habits",
    "S3u": "S3 (market entry + 5 % trailing stop from the close) with the same habits",
    "S4": f"{UNIVERSE} assets x 10 years daily, monthly rebalance into the {TOP} best 6-month performers "
          f"(order_target_percent {WEIGHT:g})",
}
RATIO_TARGETS = {"S1u": 50.0, "S2u": 50.0, "S3u": 50.0, "S4": 30.0}
CALL_TARGET_NS = 150.0
HISTORY_TARGET_NS = 3000.0
ORDER_TARGET_NS = 5000.0


# ================================================================================ data
def make_universe(n_assets: int = UNIVERSE, sessions: Any = None, n_bars: int | None = None):
    """``{symbol: OHLCV frame}`` for ``n_assets`` seeded random walks on the same dates:
    the XNYS sessions of 2010-2019 by default, or ``n_bars`` consecutive calendar days
    (for the per-call measurements, on a 24/7 calendar). Each asset has its own drift
    (-5 %..+15 % a year) and volatility (15 %..45 % a year), so 6-month performance ranks
    change from month to month."""
    import numpy as np
    import pandas as pd

    if sessions is None:
        if n_bars is None:
            import exchange_calendars as xcals

            sessions = xcals.get_calendar("XNYS").sessions_in_range("2010-01-04", "2019-12-31")
            sessions = pd.DatetimeIndex(sessions).tz_localize(None)
        else:
            sessions = pd.date_range("1960-01-01", periods=n_bars, freq="D")
    n = len(sessions)
    rng = np.random.default_rng(UNIVERSE_SEED)
    drift = rng.uniform(-0.05, 0.15, n_assets) / 252
    vol = rng.uniform(0.15, 0.45, n_assets) / math.sqrt(252)
    out = {}
    for k in range(n_assets):
        draws = rng.standard_normal((n, 4))
        close = 50.0 * np.exp(np.cumsum(drift[k] + vol[k] * draws[:, 0]))
        prev = np.concatenate(([close[0]], close[:-1]))
        open_ = prev * np.exp(draws[:, 1] * vol[k] / 4)
        high = np.maximum(open_, close) * np.exp(np.abs(draws[:, 2]) * vol[k] / 2)
        low = np.minimum(open_, close) * np.exp(-np.abs(draws[:, 3]) * vol[k] / 2)
        volume = np.full(n, 1e6)
        out[f"A{k:03d}"] = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                                         "volume": volume}, index=sessions)
    return out


# ================================================================================ rustybt_nb
def ours_user_strategies() -> dict[str, Any]:
    from rustybt_nb import TradingAlgorithm
    from rustybt_nb.finance.execution import BracketOrder, MarketOrder, TrailingStopOrder

    class UserCrossover(TradingAlgorithm):
        """The crossover with a notebook's habits (see the module docstring)."""

        def initialize(self, context):
            context.asset = self.symbol("X")
            context.prev_fast = context.prev_slow = math.nan

        def handle_data(self, context, data):
            asset = context.asset
            fast = data.current(asset, "sma10")
            slow = data.current(asset, "sma50")
            up, down = be.cross(context.prev_fast, context.prev_slow, fast, slow)
            context.prev_fast, context.prev_slow = fast, slow
            self.record(fast=fast, slow=slow)
            position = context.portfolio.positions[asset]
            if position.amount == 0:
                if self.get_open_orders(asset):
                    return  # an entry (or its exits) still working
                if up:
                    price = data.current(asset, "price")
                    self.enter(asset, int(NOTIONAL / price), price)
            elif down:
                self.leave(asset)

        def enter(self, asset, shares, price):
            self.order(asset, shares)

        def leave(self, asset):
            self.order_target(asset, 0)

    class UserBracket(UserCrossover):
        def enter(self, asset, shares, price):
            self.order(asset, shares, style=BracketOrder(entry_style=MarketOrder(),
                                                         stop_loss_price=price * (1 - be.STOP_LOSS),
                                                         take_profit_price=price * (1 + be.TAKE_PROFIT)))

        def leave(self, asset):
            pass

    class UserTrailing(UserCrossover):
        def enter(self, asset, shares, price):
            self.order(asset, shares)
            self.order(asset, -shares, style=TrailingStopOrder(trail_percent=be.TRAIL))

        def leave(self, asset):
            pass

    class Rebalance(TradingAlgorithm):
        """S4: the first session of each month, the 10 best 6-month performers at 9.5 % each."""

        def initialize(self, context):
            context.assets = [self.symbol(s) for s in sorted(self.params.symbols)]
            self.schedule_function(self.rebalance, self.date_rules.month_start())

        def rebalance(self, context, data):
            closes = data.history(context.assets, "close", LOOKBACK + 1, "1d")
            if len(closes) <= LOOKBACK:
                return
            perf = closes.iloc[-1] / closes.iloc[0] - 1
            best = set(perf.sort_values(ascending=False, kind="stable").index[:TOP])
            positions = context.portfolio.positions
            for asset in context.assets:  # sells first
                if asset not in best and positions[asset].amount:
                    self.order_target_percent(asset, 0)
            for asset in context.assets:
                if asset in best:
                    self.order_target_percent(asset, WEIGHT)

        def handle_data(self, context, data):
            pass

    Rebalance.params = {"symbols": ()}
    return {"S1u": UserCrossover, "S2u": UserBracket, "S3u": UserTrailing, "S4": Rebalance}


def run_ours(strategy: str, bars: Any, frequency: str) -> dict[str, Any]:
    from rustybt_nb import run_algorithm
    from rustybt_nb.data import from_frame, from_frames

    algo = ours_user_strategies()[strategy]
    t0 = time.perf_counter()
    if strategy == "S4":
        store = from_frames(bars, calendar="XNYS")
    elif frequency == "minute":
        store = from_frame(bars, symbol="X", frequency="minute", calendar="24/7")
    else:
        store = from_frame(bars, symbol="X")
    t1 = time.perf_counter()
    extra: dict[str, Any] = {"trail_reference": "close"} if strategy == "S3u" else {}
    if strategy == "S4":
        extra["symbols"] = tuple(bars)
    result = run_algorithm(algo, data=store, capital_base=S4_CASH if strategy == "S4" else CASH, **extra)
    _ = result.perf, result.trades, result.metrics
    t2 = time.perf_counter()
    if strategy == "S4":
        fills = result.fills
        trades = sorted([int(b), str(a), float(q), float(p)]
                        for b, a, q, p in zip(fills["bar"], fills["asset"], fills["qty"], fills["price"]))
    else:
        trades = [[int(r.entry_bar), float(r.entry_price), None if r.is_open else int(r.exit_bar),
                   None if r.is_open else float(r.exit_price)] for r in result.trades.itertuples(index=False)]
    return {"prep_s": t1 - t0, "run_s": t2 - t1, "trades": trades,
            "engine_loop_s": float(result.run_info["wall_seconds"])}


# ================================================================================ backtrader
def backtrader_user_parts() -> dict[str, Any]:
    import backtrader as bt

    class UserCrossover(bt.Strategy):
        """The crossover with backtrader's habits for the same steps."""

        def __init__(self):
            self.fills = []
            self.prev = (math.nan, math.nan)

        def notify_order(self, order):
            if order.status == order.Completed:
                self.fills.append((len(self.data) - 1, order.executed.price, order.executed.size))

        def next(self):
            d = self.data
            fast, slow = d.sma10[0], d.sma50[0]
            up, down = be.cross(self.prev[0], self.prev[1], fast, slow)
            self.prev = (fast, slow)
            if self.position.size == 0:
                if self.broker.get_orders_open():
                    return
                if up:
                    price = d.close[0]
                    self.enter(int(NOTIONAL / price), price)
            elif down:
                self.leave()

        def enter(self, shares, price):
            self.buy(size=shares)

        def leave(self):
            self.close()

    class UserBracket(UserCrossover):
        def enter(self, shares, price):
            self.buy_bracket(size=shares, exectype=bt.Order.Market, stopprice=price * (1 - be.STOP_LOSS),
                             limitprice=price * (1 + be.TAKE_PROFIT))

        def leave(self):
            pass

    class UserTrailing(UserCrossover):
        def enter(self, shares, price):
            self.buy(size=shares)
            self.sell(size=shares, exectype=bt.Order.StopTrail, trailpercent=be.TRAIL)

        def leave(self):
            pass

    class Rebalance(bt.Strategy):
        def __init__(self):
            self.fills = []
            self.month = None
            self.order_datas = sorted(self.datas, key=lambda d: d._name)

        def notify_order(self, order):
            if order.status == order.Completed:
                self.fills.append([len(order.data) - 1, order.data._name, float(order.executed.size),
                                   float(order.executed.price)])

        def next(self):
            month = self.datas[0].datetime.date(0).month
            new_month, self.month = month != self.month, month
            if not new_month or len(self) <= LOOKBACK:
                return
            perf = {d._name: d.close[0] / d.close[-LOOKBACK] - 1 for d in self.order_datas}
            best = set(sorted(perf, key=lambda s: -perf[s])[:TOP])
            for d in self.order_datas:  # sells first
                if d._name not in best and self.getposition(d).size:
                    self.order_target_percent(d, target=0.0)
            for d in self.order_datas:
                if d._name in best:
                    self.order_target_percent(d, target=WEIGHT)

    return {"S1u": UserCrossover, "S2u": UserBracket, "S3u": UserTrailing, "S4": Rebalance}


def run_backtrader(strategy: str, bars: Any, frequency: str) -> dict[str, Any]:
    import backtrader as bt

    feed_cls, _ = be.backtrader_parts()
    strategies = backtrader_user_parts()
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    if strategy == "S4":
        for sym, df in bars.items():
            cerebro.adddata(bt.feeds.PandasData(dataname=df, timeframe=bt.TimeFrame.Days), name=sym)
        cerebro.broker.setcash(S4_CASH)
        cerebro.broker.set_checksubmit(False)
    else:
        timeframe = bt.TimeFrame.Minutes if frequency == "minute" else bt.TimeFrame.Days
        cerebro.adddata(feed_cls(dataname=bars, timeframe=timeframe, compression=1))
        cerebro.broker.setcash(CASH)
    cerebro.addstrategy(strategies[strategy])
    t1 = time.perf_counter()
    strat = cerebro.run(runonce=True, preload=True)[0]
    t2 = time.perf_counter()
    trades = sorted(strat.fills) if strategy == "S4" else be.round_trips(strat.fills)
    return {"prep_s": t1 - t0, "run_s": t2 - t1, "trades": trades}


RUNNERS = {"rustybt_nb": run_ours, "backtrader": run_backtrader}


# ================================================================================ workers
def worker_engine(spec: dict[str, Any]) -> dict[str, Any]:
    engine, strategy, n, frequency = spec["engine"], spec["strategy"], spec["bars"], spec["frequency"]
    if strategy == "S4":
        bars = make_universe()
        warm = {s: f.iloc[:200].copy() for s, f in bars.items()}
    else:
        df = be.make_bars(n, frequency)
        bars = df if engine == "rustybt_nb" else be.peer_frames(df)[0]
        warm = bars.iloc[: min(n, 400)].copy()
    out = be.measure(RUNNERS[engine], strategy, bars, warm, frequency, spec["repeats"])
    return {"engine": engine, "strategy": strategy, "bars": n, "frequency": frequency, **out}


# ================================================================================ per-call costs
# name -> (statement run once per bar in handle_data, what the figure is compared with, store)
CALLS: dict[str, tuple[str, float, str]] = {
    "data.current(asset, 'close')": ("data.current(a, 'close')", CALL_TARGET_NS, "one"),
    "data.current(100 assets, 'close'), per asset": ("data.current(context.assets, 'close')", CALL_TARGET_NS,
                                                     "many"),
    "data.history(asset, 'close', 50, '1d') (daily bars)": ("data.history(a, 'close', 50, '1d')", HISTORY_TARGET_NS,
                                                            "daily"),
    "data.history(asset, 'close', 50, '1m') (minute bars)": ("data.history(a, 'close', 50, '1m')", HISTORY_TARGET_NS,
                                                             "one"),
    "data.history(asset, 'close', 50, '1d') (sessions from minute bars)": ("data.history(a, 'close', 50, '1d')",
                                                                          HISTORY_TARGET_NS, "one"),
    "data.can_trade(asset)": ("data.can_trade(a)", CALL_TARGET_NS, "one"),
    "context.portfolio.positions[asset]": ("context.portfolio.positions[a]", CALL_TARGET_NS, "one"),
    "context.portfolio.portfolio_value": ("context.portfolio.portfolio_value", CALL_TARGET_NS, "one"),
    "get_open_orders()": ("self.get_open_orders()", CALL_TARGET_NS, "one"),
    "get_open_orders(asset)": ("self.get_open_orders(a)", CALL_TARGET_NS, "one"),
    "order(asset, +1 / -1) (market; placement, fill, events)": ("self.order(a, context.side)", ORDER_TARGET_NS,
                                                                 "flat"),
    "order_target_percent(asset, 0.5 / 0) (placement, fill, events)":
        ("self.order_target_percent(a, context.flip)", ORDER_TARGET_NS, "flat"),
    "record(x=1.5)": ("self.record(x=1.5)", CALL_TARGET_NS, "one"),
    "self.params.x": ("self.params.x", CALL_TARGET_NS, "one"),
}
MICRO_BARS = 300_000
MICRO_MANY_BARS = 20_000
MICRO_DAILY_BARS = 100_000
MICRO_ROUNDS = 7


def _micro_class(statement: str | None, hold: bool = True):
    """A strategy that runs ``statement`` once per bar after the same prelude as the
    baseline (``statement=None``). With ``hold`` it buys 100 shares on the first bar (so
    positions and the portfolio value have something to mark); without, the statement's
    own orders open and close a round trip every two bars (``context.side`` alternates
    +1/-1, ``context.flip`` 0.5/0)."""
    from rustybt_nb import TradingAlgorithm

    src = (
        "def handle_data(self, context, data):\n"
        "    a = context.asset\n"
        "    context.flip = 0.5 - context.flip\n"
        "    context.side = -context.side\n"
        "    if context.first:\n"
        "        context.first = False\n"
        f"        {'self.order(a, 100)' if hold else 'pass'}\n"
        "        return\n"
        f"    {statement or 'pass'}\n"
    )
    scope: dict[str, Any] = {}
    exec(compile(src, "<micro>", "exec"), scope)

    class Micro(TradingAlgorithm):
        params = {"x": 1}

        def initialize(self, context):
            context.asset = self.symbol(self.params.symbol)
            context.assets = [self.symbol(s) for s in self.params.symbols] or [context.asset]
            context.first = True
            context.flip = 0.0
            context.side = -1

        handle_data = scope["handle_data"]

    Micro.params = {"x": 1, "symbol": "X", "symbols": ()}
    return Micro


def worker_micro(spec: dict[str, Any]) -> dict[str, Any]:
    from rustybt_nb import run_algorithm
    from rustybt_nb.data import from_frame, from_frames

    one = from_frame(be.make_bars(spec["bars"], "minute"), symbol="X", frequency="minute", calendar="24/7")
    universe = make_universe(UNIVERSE, n_bars=spec["many_bars"])
    many = from_frames(universe, calendar="24/7")
    stores = {"one": (one, {"symbol": "X"}), "many": (many, {"symbol": "A000", "symbols": tuple(universe)})}
    stores["flat"] = stores["one"]  # (the same bars; the strategy holds nothing of its own)
    stores["daily"] = (from_frame(be.make_bars(spec["daily_bars"], "daily"), symbol="X"), {"symbol": "X"})
    cases = {name: (_micro_class(stmt, hold=store != "flat"), store) for name, (stmt, _, store) in CALLS.items()}
    bases = {key: _micro_class(None, hold=key != "flat") for key in stores}
    best: dict[str, float] = {}

    def timed(cls, key):
        store, params = stores[key]
        res = run_algorithm(cls, data=store, capital_base=CASH, **params)
        return float(res.run_info["wall_seconds"])

    for cls_key in [(bases[k], k) for k in stores] + [(c, s) for c, s in cases.values()]:
        timed(*cls_key)  # warm-up: first-use caches
    for _ in range(spec["rounds"]):
        for key in stores:
            best[f"base:{key}"] = min(best.get(f"base:{key}", math.inf), timed(bases[key], key))
        for name, (cls, key) in cases.items():
            best[name] = min(best.get(name, math.inf), timed(cls, key))
    out: dict[str, Any] = {"bars": {k: len(s.index) for k, (s, _) in stores.items()}, "calls": {}}
    for name, (_, target, key) in CALLS.items():
        n = len(stores[key][0].index) - 1  # (the first bar places the position instead)
        ns = (best[name] - best[f"base:{key}"]) / n * 1e9
        if key == "many":
            ns /= UNIVERSE
        out["calls"][name] = {"ns": ns, "target_ns": target, "bars": n}
    out["baseline_ns_per_bar"] = {k: best[f"base:{k}"] / (len(s.index)) * 1e9 for k, (s, _) in stores.items()}
    return out


# ================================================================================ profile
def profile_s2u(n: int, top: int = 14) -> list[str]:
    """Where S2u's time goes at ``n`` minute bars: cProfile's ``tottime`` by function."""
    import cProfile
    import pstats

    from rustybt_nb import run_algorithm
    from rustybt_nb.data import from_frame

    store = from_frame(be.make_bars(n, "minute"), symbol="X", frequency="minute", calendar="24/7")
    algo = ours_user_strategies()["S2u"]
    prof = cProfile.Profile()
    prof.enable()
    run_algorithm(algo, data=store, capital_base=CASH)
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    lines = [f"total {total:.2f} s under cProfile ({n:,} minute bars; cProfile inflates call-heavy code)"]
    for (file, line, func), (_, calls, tottime, _, _) in rows:
        where = f"{Path(file).name}:{line}" if line else file
        lines.append(f"  {tottime / total:6.1%}  {tottime:6.2f} s  {calls:>9,} calls  {func} ({where})")
    return lines


# ================================================================================ orchestration
def spawn(spec: dict[str, Any]) -> dict[str, Any]:
    """A worker of this script in a fresh interpreter (``bench_engine.spawn``)."""
    return be.spawn(spec, script=Path(__file__))


def compare_fills(a: list[list[Any]], b: list[list[Any]]) -> int | None:
    """Index of the first (bar, symbol, shares, price) fill that differs, or None."""
    for k in range(max(len(a), len(b))):
        if k >= len(a) or k >= len(b):
            return k
        x, y = a[k], b[k]
        if x[0] != y[0] or x[1] != y[1] or x[2] != y[2] or not math.isclose(x[3], y[3], rel_tol=1e-9):
            return k
    return None


def engine_implementation() -> str:
    """Which implementation of the engine ran (pure Python unless compiled modules load)."""
    import rustybt_nb.finance.order_book as ob

    return "compiled" if not ob.__file__.endswith(".py") else "pure Python"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 10k daily bars, no minute run, a fifth of the per-call bars, a 100k-bar profile")
    p.add_argument("--skip-peers", action="store_true", help="rustybt_nb only")
    p.add_argument("--no-micro", action="store_true", help="skip the per-call costs")
    p.add_argument("--no-profile", action="store_true", help="skip the S2u profile")
    p.add_argument("--strategies", default="S1u,S2u,S3u,S4")
    p.add_argument("--output", default=str(RESULTS_PATH))
    p.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    chosen = [s.strip() for s in args.strategies.split(",") if s.strip()]
    sizes = [(10_000, "daily")] if args.quick else [(100_000, "daily"), (1_000_000, "minute")]
    cases = [(s, n, f) for n, f in sizes for s in USER if s in chosen]
    if "S4" in chosen:
        cases.append(("S4", 2516, "daily"))
    return cases


def repeats(n: int, engine: str) -> int:
    if engine == "backtrader":
        return 1 if n >= 100_000 else 2
    return 3 if n >= 1_000_000 else 5


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return be.run_worker(args.worker, worker_micro, worker_engine)
    started = time.perf_counter()
    engines = ["rustybt_nb"] if args.skip_peers else ["rustybt_nb", "backtrader"]
    print(f"rustybt_nb user-style benchmark; engine: {engine_implementation()}; engines: {', '.join(engines)}")
    print("each engine/strategy/size in a fresh subprocess; wall = load the bars + run + results; best of "
          "5 runs (3 at 1M bars; backtrader 2, 1 from 100k bars)\n")
    rows: list[dict[str, Any]] = []
    for strategy, n, freq in plan(args):
        case = {}
        for engine in engines:
            print(f"  running {strategy} {n:,} {freq} bars on {engine} ...", end="", flush=True)
            t0 = time.perf_counter()
            res = spawn({"kind": "engine", "engine": engine, "strategy": strategy, "bars": n, "frequency": freq,
                         "repeats": repeats(n, engine)})
            print(f" {time.perf_counter() - t0:.1f} s" + (f"  [{res['error']}]" if "error" in res else ""))
            res.update(engine=engine, strategy=strategy, bars=n, frequency=freq)
            case[engine] = res
        ours, peer = case.get("rustybt_nb"), case.get("backtrader")
        if ours and peer and "error" not in ours and "error" not in peer:
            peer["speed_ratio"] = peer["wall_s"] / ours["wall_s"]
            peer["memory_ratio"] = ours["peak_mb"] / peer["peak_mb"] if peer["peak_mb"] > 0 else math.nan
            same = (compare_fills(ours["trades"], peer["trades"]) if strategy == "S4"
                    else be.compare_trades(ours["trades"], peer["trades"]))
            peer["first_difference"] = same
        rows.extend(case.values())

    print("\n== Strategies ==")
    for s in STRATEGY_TEXT:
        print(f"  {s}: {STRATEGY_TEXT[s]}")
    print()
    be.print_table(rows)
    ok = True
    peers = [r for r in rows if r["engine"] == "backtrader" and "speed_ratio" in r]
    if peers:
        print("\n== Targets (same trades, speed against backtrader) ==")
    for r in peers:
        target = RATIO_TARGETS[r["strategy"]]
        same = r["first_difference"] is None
        ok &= same
        what = "fills" if r["strategy"] == "S4" else "round trips"
        line = (f"  {r['strategy']:<4} {r['bars']:>9,} {r['frequency']:<6} {r['speed_ratio']:6.1f}x "
                f"[target >= {target:g}x: {be.mark(r['speed_ratio'] >= target)}]  {what}: "
                f"{'identical' if same else 'DIFFER from #' + str(r['first_difference'])}")
        if r["strategy"] == "S4":
            line += (f"; peak memory {r['memory_ratio']:.2f}x backtrader's "
                     f"[target <= 2x: {be.mark(r['memory_ratio'] <= 2.0)}]")
        print(line)

    micro: dict[str, Any] = {}
    if not args.no_micro:
        scale, rounds = (5, 3) if args.quick else (1, MICRO_ROUNDS)  # (--quick: a fifth of the bars, 3 rounds)
        print(f"\n== Per-call costs (one call per bar; minus the same strategy without it; best of {rounds}) ==",
              flush=True)
        micro = spawn({"kind": "micro", "bars": MICRO_BARS // scale, "many_bars": MICRO_MANY_BARS // scale,
                       "daily_bars": MICRO_DAILY_BARS // scale, "rounds": rounds})
        if "error" in micro:
            print(f"  n/a: {micro['error']}")
        else:
            for name, c in micro["calls"].items():
                shown = f"{c['ns']:8.0f} ns" if c["ns"] < 10_000 else f"{c['ns'] / 1e3:8.2f} us"
                print(f"  {name:<64} {shown}  [target <= {c['target_ns']:g} ns: {be.mark(c['ns'] <= c['target_ns'])}]")
            base = micro["baseline_ns_per_bar"]
            print(f"  (the strategy without the call: {base['one']:.0f} ns per minute bar holding a position, "
                  f"{base['flat']:.0f} ns flat, {base['daily']:.0f} ns per daily bar, {base['many']:.0f} ns per bar "
                  f"with 100 assets)")
        micro["import"] = be.micro_import()
        imp = micro["import"]
        print(f"  python -c 'import rustybt_nb': {imp['import_s']:.3f} s  [target <= 0.3 s: "
              f"{be.mark(imp['import_s'] <= 0.3)}]")
    profile: list[str] = []
    if not args.no_profile:
        n_profile = 100_000 if args.quick else 1_000_000
        print(f"\n== Where S2u's time goes (cProfile, {n_profile:,} minute bars) ==")
        profile = profile_s2u(n_profile)
        print("\n".join(profile))

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": be.environment(), "implementation": engine_implementation(),
                               "runs": [{k: v for k, v in r.items() if k != "trades"} for r in rows],
                               "micro": micro, "profile": profile,
                               "elapsed_s": time.perf_counter() - started}, indent=2, default=str))
    print(f"\nresults written to {out}  (total {time.perf_counter() - started:.0f} s)")
    if any(r["engine"] == "rustybt_nb" and "error" in r for r in rows):
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
