#!/usr/bin/env python
"""Indicators declared once vs ``data.history`` in a sweep: rustybt_nb vs backtesting.py vs vectorbt.

    python benchmarks/bench_indicators.py [--repeat 3] [--output PATH]

On ten years of the bundled daily AAPL sample (2003-01-02 .. 2012-12-31, 2,517 bars), the
10 x 10 SMA-crossover grid of ``bench_sweep.py`` (fast 5..50, slow 60..240; buy 100 on a
cross-up while flat, close on a cross-down), measured side by side in one process:

1. **indicators**: the strategy declares ``self.indicator(sma, 'close', n=fast)`` and
   ``n=slow`` in ``initialize`` and reads ``ind[-1]``/``ind[-2]``;
   ``Backtest(...).sweep(grid, client='serial')``.
2. **history**: the same strategy computing both averages of this bar and the previous
   one from ``data.history(asset, 'close', slow + 1, '1d')`` on every bar (the way without
   indicators); the same sweep.
3. **backtesting.py**: ``Backtest.optimize`` on the same grid, the SMAs declared with
   ``self.I`` (its documented way; its own process pool).
4. **vectorbt** (if installed; ``pip install vectorbt``): ``MA.run`` over the grid's
   windows and ``Portfolio.from_signals`` on the crossovers, all 100 combinations at once,
   warm (its numba functions compiled by a first call, timed apart). A signal vectoriser:
   it fills at the signal bar's close, no orders, no callbacks.

Every combination's round trips must be identical between (1) and (2). Each measurement
is the best of ``--repeat``. Targets (issue 19): with indicators <= 3 ms per run
(per-run overhead included), the serial sweep faster than backtesting.py's optimize, and
within 5x of vectorbt. A missed target prints MISS and never fails the run; differing
trades exit 1. Results: ``benchmarks/results/indicators_latest.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_sweep as bs  # noqa: E402  (the grid, the daily window, backtesting.py's setup)

RESULTS_PATH = HERE / "results" / "indicators_latest.json"
GRID = bs.DAILY_GRID
TARGETS = {"ms_per_run": 3.0, "vs_vectorbt": 5.0}


def sma(close, n):
    import pandas as pd

    return pd.Series(close).rolling(n).mean().to_numpy()


def make_strategies() -> tuple[type, type]:
    from rustybt_nb import TradingAlgorithm

    class IndicatorCross(TradingAlgorithm):
        params = {"fast": 10, "slow": 60}

        def initialize(self, context):
            context.asset = self.symbol(bs.SYMBOL)
            self.fast = self.indicator(sma, "close", n=self.params.fast, name="fast")
            self.slow = self.indicator(sma, "close", n=self.params.slow, name="slow")

        def handle_data(self, context, data):
            fast, slow = self.fast, self.slow
            up, down = bs.cross(fast[-2], slow[-2], fast[-1], slow[-1])
            held = context.portfolio.positions[context.asset].amount
            if up and held == 0:
                self.order(context.asset, bs.SHARES)
            elif down and held > 0:
                self.order_target(context.asset, 0)

    class HistoryCross(TradingAlgorithm):
        params = {"fast": 10, "slow": 60}

        def initialize(self, context):
            context.asset = self.symbol(bs.SYMBOL)

        def handle_data(self, context, data):
            n_fast, n_slow = self.params.fast, self.params.slow
            closes = data.history(context.asset, "close", n_slow + 1, "1d").to_numpy()
            if len(closes) <= n_slow:
                return
            fast, prev_fast = closes[-n_fast:].mean(), closes[-n_fast - 1:-1].mean()
            slow, prev_slow = closes[-n_slow:].mean(), closes[:-1].mean()
            up, down = bs.cross(prev_fast, prev_slow, fast, slow)
            held = context.portfolio.positions[context.asset].amount
            if up and held == 0:
                self.order(context.asset, bs.SHARES)
            elif down and held > 0:
                self.order_target(context.asset, 0)

    return IndicatorCross, HistoryCross


def store_and_frame() -> tuple[Any, Any]:
    from rustybt_nb.data import from_frame, load_sample

    df = load_sample(bs.SYMBOL).to_frame().loc[bs.DAILY[0]:bs.DAILY[1]].copy()
    caps = df.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"})
    caps.index.name = None
    return from_frame(df, symbol=bs.SYMBOL, calendar="XNYS"), caps


def timed_sweep(strategy: type, store: Any, repeat: int) -> tuple[float, Any]:
    from rustybt_nb import Backtest

    bt = Backtest(strategy, data=store, capital_base=bs.CASH)
    bt.run(fast=GRID["fast"][0], slow=GRID["slow"][0])  # warm-up: first-use caches
    best, table = math.inf, None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        table = bt.sweep(GRID, client="serial", progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, table


def same_trades(store: Any, a: type, b: type) -> list[dict[str, Any]]:
    """Combinations whose round trips differ between strategies ``a`` and ``b``."""
    from rustybt_nb import Backtest

    runs = [Backtest(s, data=store, capital_base=bs.CASH) for s in (a, b)]
    differ = []
    for fast in GRID["fast"]:
        for slow in GRID["slow"]:
            trips = []
            for bt in runs:
                t = bt.run(fast=fast, slow=slow).trades
                trips.append(list(zip(t["entry_bar"], t["entry_price"], t["exit_bar"].fillna(-1), t["is_open"])))
            if trips[0] != trips[1]:
                differ.append({"fast": fast, "slow": slow, "indicators": len(trips[0]), "history": len(trips[1])})
    return differ


def make_backtesting_cross() -> type:
    from backtesting import Strategy

    class SmaCrossI(Strategy):
        fast = 10
        slow = 60

        def init(self):
            self.f = self.I(sma, self.data.Close, self.fast)
            self.s = self.I(sma, self.data.Close, self.slow)

        def next(self):
            up, down = bs.cross(self.f[-2], self.s[-2], self.f[-1], self.s[-1])
            if up and not self.position:
                self.buy(size=bs.SHARES)
            elif down and self.position:
                self.position.close()

    SmaCrossI.__name__ = SmaCrossI.__qualname__ = "BacktestingSmaCrossI"
    SmaCrossI.__module__ = __name__
    globals()["BacktestingSmaCrossI"] = SmaCrossI  # (its forked pool finds the class by name)
    return SmaCrossI


def timed_backtesting(caps: Any, repeat: int) -> dict[str, Any]:
    import backtesting
    import backtesting.backtesting as btmod

    btmod._tqdm = lambda seq, **_: seq
    strategy = make_backtesting_cross()
    best = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtesting.Backtest(caps, strategy, cash=bs.CASH, commission=0.0, trade_on_close=False,
                                  hedging=False, exclusive_orders=False, finalize_trades=False)
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            _stats, heatmap = bt.optimize(**GRID, maximize="Sharpe Ratio", return_heatmap=True)
            best = min(best, time.perf_counter() - t0)
    return {"best_s": best, "combinations": len(heatmap), "version": backtesting.__version__}


def timed_vectorbt(caps: Any, repeat: int) -> dict[str, Any] | None:
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    close = caps["Close"]
    fast_w = [f for f in GRID["fast"] for _ in GRID["slow"]]
    slow_w = [s for _ in GRID["fast"] for s in GRID["slow"]]

    def run() -> Any:
        fast = vbt.MA.run(close, fast_w, short_name="fast")
        slow = vbt.MA.run(close, slow_w, short_name="slow")
        entries = fast.ma_crossed_above(slow)
        exits = fast.ma_crossed_below(slow)
        return vbt.Portfolio.from_signals(close, entries, exits, size=bs.SHARES, init_cash=bs.CASH, fees=0.0,
                                          freq="1D")

    t0 = time.perf_counter()
    pf = run()
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        pf = run()
        _ = pf.sharpe_ratio()
        best = min(best, time.perf_counter() - t0)
    return {"best_s": best, "first_s": first, "columns": int(pf.wrapper.shape[1]), "version": vbt.__version__}


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--output", default=str(RESULTS_PATH))
    args = p.parse_args(argv)
    store, caps = store_and_frame()
    n_runs = len(GRID["fast"]) * len(GRID["slow"])
    print(f"10 x 10 SMA-crossover grid on daily {bs.SYMBOL} {bs.DAILY[0]} .. {bs.DAILY[1]} ({len(caps):,} bars); "
          f"best of {args.repeat}\n")
    backtesting = timed_backtesting(caps, args.repeat)  # (first: its pool forks this process)
    indicator_cls, history_cls = make_strategies()
    ind_s, ind_table = timed_sweep(indicator_cls, store, args.repeat)
    hist_s, _ = timed_sweep(history_cls, store, args.repeat)
    vbt = timed_vectorbt(caps, args.repeat)
    differ = same_trades(store, indicator_cls, history_cls)
    ok_rows = int((ind_table.table["status"] == "ok").sum()) if hasattr(ind_table, "table") else n_runs
    rows = [("rustybt_nb sweep, indicators (serial)", ind_s), ("rustybt_nb sweep, data.history (serial)", hist_s),
            (f"backtesting.py {backtesting['version']} optimize (its pool)", backtesting["best_s"])]
    if vbt is not None:
        rows.append((f"vectorbt {vbt['version']} MA.run + Portfolio.from_signals (warm)", vbt["best_s"]))
    print(f"{'':<58} {'wall s':>8} {'ms / combination':>17}")
    for name, wall in rows:
        print(f"{name:<58} {wall:8.3f} {wall / n_runs * 1e3:17.2f}")
    if vbt is not None:
        print(f"  (vectorbt's first call, numba compiling included: {vbt['first_s']:.2f} s)")
    else:
        print("  vectorbt: not installed (pip install vectorbt), skipped")
    per_run = ind_s / n_runs * 1e3
    print("\n== Targets ==")
    print(f"  with indicators {per_run:.2f} ms per run  [target <= {TARGETS['ms_per_run']:g} ms: "
          f"{mark(per_run <= TARGETS['ms_per_run'])}]  ({hist_s / ind_s:.1f}x faster than with data.history)")
    print(f"  serial sweep {ind_s:.3f} s vs backtesting.py optimize {backtesting['best_s']:.3f} s: "
          f"{backtesting['best_s'] / ind_s:.2f}x  [target > 1x: {mark(ind_s < backtesting['best_s'])}]")
    if vbt is not None:
        ratio = ind_s / vbt["best_s"]
        print(f"  vs vectorbt: {ratio:.1f}x its time  [target <= {TARGETS['vs_vectorbt']:g}x: "
              f"{mark(ratio <= TARGETS['vs_vectorbt'])}]")
    print(f"  round trips, indicators vs data.history: {n_runs - len(differ)} of {n_runs} combinations identical"
          + (f"; differ: {differ[:3]}" if differ else "") + f" ({ok_rows} ok rows)")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"indicators_s": ind_s, "history_s": hist_s, "backtesting": backtesting,
                               "vectorbt": vbt, "differ": differ, "combinations": n_runs}, indent=2, default=str))
    print(f"\nresults written to {out}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
