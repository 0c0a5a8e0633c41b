#!/usr/bin/env python
"""Parameter sweeps: serial vs a two-worker LocalCluster, vs backtesting.py's ``optimize``, and their memory.

    python benchmarks/bench_sweep.py [--quick] [--repeat 3] [--workers 2] [--output PATH]

One process (the "notebook"), four measurements on the same bars:

1. **daily**: a 10 x 10 grid (``fast`` 5..50, ``slow`` 60..240) of an SMA crossover on ten
   years of the bundled daily AAPL sample (2003-01-02 .. 2012-12-31, 2,517 real bars),
   ``sweep(..., client='serial')`` vs the same call on a ``LocalCluster`` of two
   single-threaded worker processes. The cluster is started once, before the first
   sweep; its start-up is timed apart and not counted in any sweep time. The two tables
   must be identical apart from ``seconds``.
2. **minute**: a 4 x 4 grid of the same strategy on six months of the synthetic minute
   sample (2012-07-02 .. 2012-12-31, 48,210 bars), serial vs the same cluster.
3. **backtesting.py**: ``Backtest.optimize(fast=..., slow=..., maximize='Sharpe Ratio',
   return_heatmap=True)`` on the daily grid and bars (it forks a process pool of
   ``os.cpu_count()`` workers itself), against our serial and cluster sweep times; the
   same 100 combinations must be tried, and a few of them are run in both engines to check
   that the round trips are identical.
4. **memory**: a 100 x 100 grid (10,000 combinations) of a do-nothing strategy over 20 daily
   bars (2012-01-03 .. 2012-01-31), serial, under ``tracemalloc``: the peak Python
   allocations of the sweep minus the final table's own memory
   (``table.memory_usage(deep=True)``), per row.

As in ``bench_engine.py``, the SMAs are computed once with pandas and given to both
engines as data columns (``sma5`` ... ``sma240``); a combination picks its two columns.
Each sweep is timed ``--repeat`` times (serial and cluster alternating) and the best run
counts: on a shared machine interference only slows a run down. The first cluster sweep
(cold workers: they import rustybt_nb and receive the bars) is printed as well.

Targets: cluster speed-up >= 1.6x (daily and minute), our sweep (serial and cluster)
faster than backtesting.py's optimize, memory <= 1 KiB per row beyond the table. A missed
target prints ``MISS`` and never fails the run. Exit status: 2 when something fails to run,
1 when a check fails (serial and cluster tables differ, the engines try other combinations
or make other trades), 0 otherwise. Results are written as JSON to
``benchmarks/results/sweep_latest.json``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import math
import os
import statistics
import sys
import time
import traceback
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "sweep_latest.json"

SYMBOL = "AAPL"
SHARES, CASH = 100, 1e9  # as bench_engine.py: a fixed order size, cash never limits an order
DAILY = ("2003-01-01", "2012-12-31")
DAILY_GRID = {"fast": list(range(5, 51, 5)), "slow": list(range(60, 241, 20))}
MINUTE = ("2012-07-01", "2012-12-31")
MINUTE_GRID = {"fast": [10, 20, 30, 60], "slow": [120, 240, 390, 780]}
MEMORY_WINDOW = ("2012-01-03", "2012-01-31")  # 20 sessions
MEMORY_GRID = {"a": list(range(100)), "b": list(range(100))}
QUICK_MEMORY_GRID = {"a": list(range(50)), "b": list(range(40))}
PARITY = ({"fast": 5, "slow": 60}, {"fast": 25, "slow": 140}, {"fast": 50, "slow": 240})
WORKERS = 2
REPEAT, QUICK_REPEAT = 3, 1
TARGETS = {"speedup": 1.6, "bytes_per_row": 1024}


# ================================================================================ strategies
def cross(prev_fast: float, prev_slow: float, fast: float, slow: float) -> tuple[bool, bool]:
    """(crossed up, crossed down) between the previous and the current bar; NaN -> no."""
    return (prev_fast <= prev_slow and fast > slow), (prev_fast >= prev_slow and fast < slow)


def make_cross() -> type:
    """Ours: buy 100 on a cross-up of column ``sma{fast}`` over ``sma{slow}`` while flat,
    close on a cross-down while long (bench_engine.py's S1 with the columns as parameters).
    Defined in a function, so Dask pickles the class by value."""
    from rustybt_nb import TradingAlgorithm

    class SmaCross(TradingAlgorithm):
        params = {"fast": 10, "slow": 60}

        def initialize(self, context):
            context.asset = self.symbol(SYMBOL)
            context.columns = (f"sma{self.params.fast}", f"sma{self.params.slow}")
            context.prev = (math.nan, math.nan)

        def handle_data(self, context, data):
            asset = context.asset
            fast = data.current(asset, context.columns[0])
            slow = data.current(asset, context.columns[1])
            up, down = cross(*context.prev, fast, slow)
            context.prev = (fast, slow)
            held = context.portfolio.positions[asset].amount
            if up and held == 0:
                self.order(asset, SHARES)
            elif down and held > 0:
                self.order_target(asset, 0)

    return SmaCross


def make_do_nothing() -> type:
    """The memory run's strategy: two parameters it ignores, no orders (every run costs the
    same, little: the engine's fixed per-run cost dominates)."""
    from rustybt_nb import TradingAlgorithm

    class DoNothing(TradingAlgorithm):
        params = {"a": 0, "b": 0}

        def handle_data(self, context, data):
            pass

    return DoNothing


def make_backtesting_cross() -> type:
    """backtesting.py: the same crossover (bench_engine.py's fastest form: the indicator
    arrays indexed), the columns chosen by the class attributes ``fast``/``slow``. Its
    optimize pickles the class by name for its (forked) pool: it is made a module global."""
    from backtesting import Strategy

    def column(values):
        return values

    class SmaCross(Strategy):
        fast = 10
        slow = 60

        def init(self):
            self.f = self.I(column, self.data[f"sma{self.fast}"], name=f"sma{self.fast}")
            self.s = self.I(column, self.data[f"sma{self.slow}"], name=f"sma{self.slow}")

        def next(self):
            up, down = cross(self.f[-2], self.s[-2], self.f[-1], self.s[-1])
            if up and not self.position:
                self.buy(size=SHARES)
            elif down and self.position:
                self.position.close()

    SmaCross.__name__ = SmaCross.__qualname__ = "BacktestingSmaCross"
    SmaCross.__module__ = __name__
    globals()["BacktestingSmaCross"] = SmaCross
    return SmaCross


# ================================================================================ data
def with_smas(df: Any, windows: list[int]) -> Any:
    for n in sorted(set(windows)):
        df[f"sma{n}"] = df["close"].rolling(n).mean()
    return df


def daily_bars() -> tuple[Any, Any]:
    """(our store, backtesting.py's frame): daily AAPL 2003-2012 with the SMA
    columns, computed over the whole sample (from 2000-03-01) so they are warm on the
    first bar."""
    from rustybt_nb.data import from_frame, load_sample

    full = with_smas(load_sample(SYMBOL).to_frame(), DAILY_GRID["fast"] + DAILY_GRID["slow"])
    df = full.loc[DAILY[0]:DAILY[1]].copy()
    caps = df.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"})
    caps.index.name = None
    return from_frame(df, symbol=SYMBOL, calendar="XNYS"), caps


def minute_bars() -> Any:
    """Our store: six months of the synthetic minute sample with the SMA columns (warm-up
    NaNs at the start never signal)."""
    from rustybt_nb.data import from_frame, load_sample

    df = load_sample(SYMBOL, frequency="minute", start=MINUTE[0], end=MINUTE[1]).to_frame()
    df = with_smas(df, MINUTE_GRID["fast"] + MINUTE_GRID["slow"])
    return from_frame(df, symbol=SYMBOL, frequency="minute", calendar="XNYS")


# ================================================================================ helpers
def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def size_of(grid: dict[str, list[Any]]) -> int:
    return math.prod(len(v) for v in grid.values())


def start_cluster(workers: int) -> tuple[Any, Any, float]:
    import distributed

    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster, set_as_default=False)
    client.wait_for_workers(workers)
    return cluster, client, time.perf_counter() - t0


def timed_sweep(strategy: type, grid: dict[str, list[Any]], store: Any, client: Any) -> dict[str, Any]:
    """One ``sweep(...)`` call: wall and CPU seconds of this process, and (on a cluster)
    what each task did on the workers."""
    from rustybt_nb.research import sweep

    stream = None
    if client == "serial":
        wall0, cpu0, epoch0 = time.perf_counter(), time.process_time(), time.time()
        result = sweep(strategy, grid, data=store, capital_base=CASH, client="serial", progress=False)
        wall, cpu, epoch1 = time.perf_counter() - wall0, time.process_time() - cpu0, time.time()
    else:
        from distributed import get_task_stream

        with get_task_stream(client=client) as stream:
            wall0, cpu0, epoch0 = time.perf_counter(), time.process_time(), time.time()
            result = sweep(strategy, grid, data=store, capital_base=CASH, client=client, progress=False)
            wall, cpu, epoch1 = time.perf_counter() - wall0, time.process_time() - cpu0, time.time()
    out = {"wall_s": wall, "cpu_s": cpu, "result": result,
           "run_seconds_sum": float(result.table["seconds"].sum()),
           "first_combination_s": float(result.table["seconds"].iloc[0])}
    if stream is not None:
        out["tasks"] = task_profile(stream.data, epoch0, epoch1)
    return out


def task_profile(records: list[dict[str, Any]], epoch0: float, epoch1: float) -> dict[str, Any]:
    """The sweep's tasks from Dask's task stream, times relative to the sweep call: when
    the first batch started computing, each worker's compute time and tasks, other
    activity (transfers of the Backtest), and how long each worker sat idle at the end."""
    from dask.utils import key_split

    batches = []
    other: dict[str, float] = {}
    for r in records:
        name = key_split(r["key"])
        for s in r.get("startstops", ()):
            span = s["stop"] - s["start"]
            if name == "run_batch" and s["action"] == "compute":
                batches.append({"worker": r["worker"], "start": s["start"] - epoch0, "stop": s["stop"] - epoch0,
                                "compute_s": span})
            else:
                key = f"{name}:{s['action']}"
                other[key] = other.get(key, 0.0) + span
    batches.sort(key=lambda b: b["start"])
    per_worker: dict[str, dict[str, Any]] = {}
    for b in batches:
        w = per_worker.setdefault(b["worker"], {"tasks": 0, "compute_s": 0.0, "first_start": b["start"],
                                                "last_stop": 0.0, "durations": []})
        w["tasks"] += 1
        w["compute_s"] += b["compute_s"]
        w["last_stop"] = max(w["last_stop"], b["stop"])
        w["durations"].append(round(b["compute_s"], 3))
    wall = epoch1 - epoch0
    for w in per_worker.values():
        w["idle_at_end_s"] = wall - w["last_stop"]
    return {"batches": len(batches), "first_batch_start_s": batches[0]["start"] if batches else None,
            "last_batch_stop_s": max((b["stop"] for b in batches), default=None),
            "compute_s": sum(b["compute_s"] for b in batches), "workers": per_worker, "other_s": other,
            "wall_s": wall}


def batch_plan(first_s: float, workers: int, n: int) -> list[int]:
    """The batch sizes the package picks after the first combination (run in the notebook
    process, taking ``first_s``) for the other ``n - 1`` (rustybt_nb/research/runner.py)."""
    from rustybt_nb.research import runner

    size = runner.batch_sizes(first_s, workers, n - 1)
    plan: list[int] = []
    while sum(plan) < n - 1:
        plan.append(min(size(sum(plan)), n - 1 - sum(plan)))
    return plan


def same_rows(a: Any, b: Any) -> str | None:
    """None when two sweep tables are identical apart from ``seconds``; else what differs."""
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a.table.drop(columns="seconds"), b.table.drop(columns="seconds"))
    except AssertionError as exc:
        return str(exc).strip().splitlines()[0]
    return None


# ================================================================================ measuring
def measure_grid(name: str, strategy: type, grid: dict[str, list[Any]], store: Any, client: Any,
                 repeat: int, workers: int) -> dict[str, Any]:
    """Serial and cluster sweeps of ``grid``, alternating, ``repeat`` times each."""
    serial, clustered = [], []
    reference = None
    mismatches = []
    for _ in range(repeat):
        for where in ("serial", "cluster"):
            run = timed_sweep(strategy, grid, store, "serial" if where == "serial" else client)
            result = run.pop("result")
            if reference is None:
                reference = result
                run["ok_rows"] = int((result.table["status"] == "ok").sum())
                run["best"] = result.best()
            else:
                diff = same_rows(reference, result)
                if diff is not None:
                    mismatches.append(f"{where} run {len(serial if where == 'serial' else clustered) + 1}: {diff}")
            (serial if where == "serial" else clustered).append(run)
    best_serial = min(serial, key=lambda r: r["wall_s"])
    best_cluster = min(clustered, key=lambda r: r["wall_s"])
    n = size_of(grid)
    first_s = serial[0]["first_combination_s"]
    plan = batch_plan(best_cluster["first_combination_s"], workers, n)
    return {
        "name": name, "combinations": n, "bars": len(store), "grid": grid,
        "ok_rows": serial[0]["ok_rows"], "best_sharpe_params": serial[0]["best"],
        "serial": serial, "cluster": clustered,
        "serial_s": best_serial["wall_s"], "cluster_s": best_cluster["wall_s"],
        "cluster_first_s": clustered[0]["wall_s"],
        "speedup": best_serial["wall_s"] / best_cluster["wall_s"],
        "speedup_first": best_serial["wall_s"] / clustered[0]["wall_s"],
        "median_run_s": statistics.median(r["run_seconds_sum"] / n for r in serial),
        "first_combination_serial_s": first_s,
        "first_combination_cluster_s": best_cluster["first_combination_s"],
        "batches": plan, "tasks": len(plan),
        # the first combination runs in this process before any task is sent: the best
        # a cluster of `workers` can do, with no other overhead at all
        "ideal_s": best_cluster["first_combination_s"] + (best_serial["run_seconds_sum"]
                                                          - best_serial["first_combination_s"]) / workers,
        "identical": not mismatches, "mismatches": mismatches,
    }


def measure_backtesting(caps: Any, repeat: int) -> dict[str, Any]:
    """backtesting.py's optimize on the daily grid: best of ``repeat`` calls."""
    import backtesting
    import backtesting.backtesting as btmod

    strategy = make_backtesting_cross()
    btmod._tqdm = lambda seq, **_: seq  # no progress bar (ours runs with progress=False too)
    walls, cpu = [], []
    heatmap = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtesting.Backtest(caps, strategy, cash=CASH, commission=0.0, trade_on_close=False, hedging=False,
                                  exclusive_orders=False, finalize_trades=False)
        for _ in range(repeat):
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            _stats, heatmap = bt.optimize(**DAILY_GRID, maximize="Sharpe Ratio", return_heatmap=True)
            walls.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    tried = sorted(tuple(int(v) for v in k) for k in heatmap.index)
    return {"walls_s": walls, "best_s": min(walls), "parent_cpu_s": cpu, "heatmap_rows": len(heatmap),
            "heatmap_values": int(heatmap.notna().sum()), "values_per_combination": 1 if heatmap.ndim == 1 else
            heatmap.shape[1], "tried": tried, "best": {k: int(v) for k, v in zip(heatmap.index.names,
                                                                                  heatmap.idxmax())},
            "best_sharpe": float(heatmap.max()), "pool_processes": os.cpu_count(), "version": backtesting.__version__}


def parity(store: Any, caps: Any) -> list[dict[str, Any]]:
    """Round trips (entry bar, entry price, exit bar, exit price) of a few combinations in
    both engines: the two strategies must trade alike."""
    import backtesting

    from rustybt_nb import Backtest

    ours = Backtest(make_cross(), data=store, capital_base=CASH)
    theirs_cls = make_backtesting_cross()
    out = []
    for params in PARITY:
        trades = ours.run(**params).trades
        mine = [(int(r.entry_bar), round(float(r.entry_price), 9),
                 None if r.is_open else int(r.exit_bar), None if r.is_open else round(float(r.exit_price), 9))
                for r in trades.itertuples(index=False)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = backtesting.Backtest(caps, theirs_cls, cash=CASH, commission=0.0, trade_on_close=False,
                                         hedging=False, exclusive_orders=False, finalize_trades=False).run(**params)
        theirs = [(int(r.EntryBar), round(float(r.EntryPrice), 9), int(r.ExitBar), round(float(r.ExitPrice), 9))
                  for r in stats["_trades"].itertuples(index=False)]
        theirs += [(int(t.entry_bar), round(float(t.entry_price), 9), None, None) for t in stats["_strategy"].trades]
        theirs.sort(key=lambda t: t[0])
        out.append({"params": params, "ours": len(mine), "theirs": len(theirs), "same": mine == theirs})
    return out


def measure_memory(grid: dict[str, list[Any]]) -> dict[str, Any]:
    """The serial sweep of ``grid`` once untraced (its time), then under tracemalloc: the
    peak of the traced allocations during the call (above what was allocated before it)
    minus the table's ``memory_usage(deep=True)``. A read-only probe around the table
    builder (``rustybt_nb.research.sweeps._table``) records what was held when the rows
    were all in, before the table was built."""
    from rustybt_nb.data import load_sample
    from rustybt_nb.research import sweep
    from rustybt_nb.research import sweeps as sweeps_module

    strategy = make_do_nothing()
    store = load_sample(SYMBOL, start=MEMORY_WINDOW[0], end=MEMORY_WINDOW[1])
    n = size_of(grid)
    sweep(strategy, {"a": [1, 2], "b": [0, 1]}, data=store, client="serial", progress=False)  # warm-up
    gc.collect()
    t0 = time.perf_counter()
    result = sweep(strategy, grid, data=store, client="serial", progress=False)
    untraced = time.perf_counter() - t0
    del result
    gc.collect()

    probe: dict[str, int] = {}
    original = sweeps_module._table

    def table_probe(spec, rows):
        probe["held"], probe["peak_running"] = tracemalloc.get_traced_memory()
        return original(spec, rows)

    sweeps_module._table = table_probe
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        result = sweep(strategy, grid, data=store, client="serial", progress=False)
        traced = time.perf_counter() - t0
        current, peak = tracemalloc.get_traced_memory()
        gc.collect()  # what of `current` was cyclic garbage of the runs, not yet collected
        garbage = current - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        sweeps_module._table = original
    table = int(result.table.memory_usage(deep=True).sum())
    peak -= base
    return {"combinations": n, "rows": len(result.table), "ok_rows": int((result.table["status"] == "ok").sum()),
            "bars": len(store), "untraced_s": untraced, "traced_s": traced, "peak_bytes": peak,
            "table_bytes": table, "beyond_table_bytes": peak - table, "per_row_bytes": (peak - table) / n,
            "table_per_row_bytes": table / n, "held_before_table_bytes": probe.get("held", 0) - base,
            "peak_while_running_bytes": probe.get("peak_running", 0) - base, "kept_after_bytes": current - base,
            "cyclic_garbage_after_bytes": garbage,
            "columns": len(result.table.columns)}


# ================================================================================ report
def compact(sizes: list[int]) -> str:
    """Batch sizes run-length encoded: ``[13, 13, 13, 11]`` -> ``'13 x3, 11'``."""
    parts = [(size, len(list(run))) for size, run in itertools.groupby(sizes)]
    return ", ".join(f"{size} x{count}" if count > 1 else str(size) for size, count in parts)


def print_grid(g: dict[str, Any], startup_s: float, workers: int) -> None:
    grid = " x ".join(f"{k} {v[0]}..{v[-1]} ({len(v)})" for k, v in g["grid"].items())
    print(f"\n== {g['name']}: {g['combinations']} combinations ({grid}) on {g['bars']:,} bars ==")
    print(f"  {g['ok_rows']} ok rows; best Sharpe at {g['best_sharpe_params']}; a combination takes "
          f"{g['median_run_s'] * 1e3:.1f} ms (the serial runs' mean `seconds`, median of the runs)")
    for kind in ("serial", "cluster"):
        runs = ", ".join(f"{r['wall_s']:.2f}" for r in g[kind])
        cpu = ", ".join(f"{r['cpu_s'] / r['wall_s']:.0%}" for r in g[kind])
        print(f"  {kind:<8} wall s: {runs:<16} (this process's CPU / wall: {cpu})")
    print(f"  serial {g['serial_s']:.2f} s, cluster {g['cluster_s']:.2f} s (best of each; cluster start-up "
          f"{startup_s:.2f} s not counted) -> speed-up {g['speedup']:.2f}x "
          f"[target >= {TARGETS['speedup']}x: {mark(g['speedup'] >= TARGETS['speedup'])}]")
    print(f"  first sweep on the fresh cluster (cold workers): {g['cluster_first_s']:.2f} s -> "
          f"{g['speedup_first']:.2f}x; with the start-up: {g['cluster_first_s'] + startup_s:.2f} s")
    same = "yes" if g["identical"] else "NO: " + "; ".join(g["mismatches"])
    print(f"  tables identical apart from `seconds`: {same}")
    print(f"  batches (best cluster run): the first combination runs in this process "
          f"({g['first_combination_cluster_s'] * 1e3:.1f} ms), then batches of {compact(g['batches'])} (about "
          f"TASK_SECONDS of work, shrinking to share out the rest) -> {g['tasks']} tasks for {workers} workers; "
          f"ideal cluster time with no overhead "
          f"{g['ideal_s']:.2f} s ({g['serial_s'] / g['ideal_s']:.2f}x)")
    best = min(g["cluster"], key=lambda r: r["wall_s"])
    shown = [("cold", g["cluster"][0])] + ([("best", best)] if best is not g["cluster"][0] else [])
    for label, run in shown:
        t = run.get("tasks")
        if not t or not t["batches"]:
            continue
        busy = t["compute_s"] / (workers * t["wall_s"])
        per = t["compute_s"] / max(1, g["combinations"] - 1)
        print(f"  {label} cluster run: first batch computing at +{t['first_batch_start_s']:.2f} s, last done at "
              f"+{t['last_batch_stop_s']:.2f} s of {t['wall_s']:.2f} s; workers computing {busy:.0%} of "
              f"{workers} x wall, {per * 1e3:.1f} ms a combination ({per / g['median_run_s']:.2f}x the serial "
              f"sweep's: above 1, the workers had less than a core each)")
        for w, info in sorted(t["workers"].items(), key=lambda kv: kv[1]["first_start"]):
            print(f"    worker {w.rsplit(':', 1)[-1]}: {info['tasks']} tasks {info['durations']} s, from "
                  f"+{info['first_start']:.2f} s, idle for the last {info['idle_at_end_s']:.2f} s")
        if t["other_s"]:
            print("    other task activity: " + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(t["other_s"].items())))


def print_backtesting(b: dict[str, Any], daily: dict[str, Any] | None, checks: list[dict[str, Any]],
                      startup_s: float) -> None:
    from rustybt_nb.metrics import METRIC_NAMES

    print(f"\n== backtesting.py {b['version']} Backtest.optimize on the daily grid "
          f"(maximize='Sharpe Ratio', return_heatmap=True; a fork pool of {b['pool_processes']} processes) ==")
    print(f"  wall s: {', '.join(f'{w:.2f}' for w in b['walls_s'])} (best {b['best_s']:.2f} s); "
          f"{b['heatmap_rows']} combinations tried, {b['heatmap_values']} with a value (runs without a trade are NaN);"
          f" best Sharpe {b['best_sharpe']:.3f} at {b['best']}")
    if daily is not None:
        ours = {"serial": daily["serial_s"], "cluster": daily["cluster_s"]}
        for kind, secs in ours.items():
            print(f"  ours {kind:<7} {secs:6.2f} s: {b['best_s'] / secs:5.2f}x faster "
                  f"[target > 1x: {mark(secs < b['best_s'])}]")
        both = daily["cluster_s"] + startup_s
        print(f"  (ours on a cluster started for the sweep, as client=None does: {both:.2f} s, "
              f"{b['best_s'] / both:.2f}x; backtesting.py starts its pool inside optimize, counted)")
    print(f"  values per combination: ours {len(METRIC_NAMES)} (every metric of BacktestResult.metrics, plus "
          f"status, error, seconds); backtesting.py {b['values_per_combination']} (the heatmap's "
          f"'Sharpe Ratio')")
    for c in checks:
        print(f"  round trips at {c['params']}: ours {c['ours']}, backtesting.py {c['theirs']}: "
              f"{'identical' if c['same'] else 'DIFFERENT'}")


def print_memory(m: dict[str, Any]) -> None:
    n = m["combinations"]
    kib = 1024
    print(f"\n== memory: {n:,} combinations of a do-nothing strategy on {m['bars']} daily bars, serial ==")
    print(f"  sweep time: {m['untraced_s']:.1f} s untraced ({n / m['untraced_s']:,.0f} combinations/s), "
          f"{m['traced_s']:.1f} s under tracemalloc; {m['ok_rows']:,} ok rows, {m['columns']} columns")
    print(f"  peak traced allocations during the sweep: {m['peak_bytes'] / kib:,.0f} KiB "
          f"({m['peak_bytes'] / n:,.0f} B/row)")
    print(f"  the table (memory_usage(deep=True)): {m['table_bytes'] / kib:,.0f} KiB "
          f"({m['table_per_row_bytes']:,.0f} B/row)")
    print(f"  peak beyond the table: {m['beyond_table_bytes'] / kib:,.0f} KiB = {m['per_row_bytes']:,.0f} B/row "
          f"[target <= {TARGETS['bytes_per_row']} B/row: {mark(m['per_row_bytes'] <= TARGETS['bytes_per_row'])}]")
    print(f"  where: rows held when the last one was in (before the table is built) "
          f"{m['held_before_table_bytes'] / n:,.0f} B/row (peak while running "
          f"{m['peak_while_running_bytes'] / n:,.0f} B/row); still allocated after the call "
          f"{m['kept_after_bytes'] / n:,.0f} B/row, of which {m['cyclic_garbage_after_bytes'] / n:,.0f} B/row was "
          f"cyclic garbage of the runs (freed by a gc.collect() after the call; the rest is the table and the "
          f"freed tuples CPython keeps for reuse)")


def busy_machine(sections: dict[str, Any], loads: list[list[float] | None]) -> str:
    """Why the timings are not trustworthy, or '': a serial sweep that got less than 90 % of
    a core (CPU / wall of this process), or a 1-minute load average above the CPU count."""
    why = []
    shares = [r["cpu_s"] / r["wall_s"] for name in ("daily", "minute") if name in sections
              for r in sections[name]["serial"]]
    if shares and min(shares) < 0.9:
        why.append(f"a serial sweep had {min(shares):.0%} of a core")
    cpus = os.cpu_count() or 1
    high = [load[0] for load in loads if load and load[0] > cpus]
    if high:
        why.append(f"load average {max(high):g} on {cpus} CPUs")
    return "; ".join(why)


def environment() -> dict[str, Any]:
    import bench_engine  # (this folder is on sys.path when a benchmark runs as a script)

    return bench_engine.environment(("rustybt_nb", "backtesting", "dask", "distributed", "numpy", "pandas"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: each sweep once, a {size_of(QUICK_MEMORY_GRID):,}-combination memory grid")
    p.add_argument("--repeat", type=int, default=None, help=f"sweeps of each kind per grid (default {REPEAT})")
    p.add_argument("--workers", type=int, default=WORKERS, help=f"cluster workers (default {WORKERS})")
    p.add_argument("--output", default=str(RESULTS_PATH), help="JSON output path")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else REPEAT
    if args.repeat < 1 or args.workers < 1:
        p.error("--repeat and --workers must be at least 1")
    return args


def strip(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "result"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    memory_grid = QUICK_MEMORY_GRID if args.quick else MEMORY_GRID
    start_load = loadavg()
    print(f"rustybt_nb sweep benchmark: {os.cpu_count()} CPUs, load average {start_load} at the start; "
          f"best of {args.repeat} per sweep")
    print("strategy: SMA(fast)/SMA(slow) cross, market in/out, 100 shares, cash 1e9; the SMAs are precomputed "
          "data columns")
    failures: list[str] = []
    checks_failed: list[str] = []
    sections: dict[str, Any] = {}
    startup_s = math.nan

    # backtesting.py first: its optimize forks this process, best before Dask's threads exist
    store = caps = None
    try:
        store, caps = daily_bars()
        minute = minute_bars()
    except Exception:
        failures.append(traceback.format_exc())
    if store is not None and not failures:
        try:
            print("  backtesting.py optimize ...", end="", flush=True)
            t0 = time.perf_counter()
            sections["backtesting"] = measure_backtesting(caps, args.repeat)
            sections["parity"] = parity(store, caps)
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
        except Exception:
            print(" failed")
            failures.append(traceback.format_exc())

        cluster = client = None
        try:
            cluster, client, startup_s = start_cluster(args.workers)
            print(f"  LocalCluster of {args.workers} single-threaded worker processes started in {startup_s:.2f} s")
            strategy = make_cross()
            for name, grid, bars in (("daily", DAILY_GRID, store), ("minute", MINUTE_GRID, minute)):
                print(f"  {name} sweeps ...", end="", flush=True)
                t0 = time.perf_counter()
                sections[name] = measure_grid(name, strategy, grid, bars, client, args.repeat, args.workers)
                print(f" {time.perf_counter() - t0:.1f} s", flush=True)
        except Exception:
            print(" failed")
            failures.append(traceback.format_exc())
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()

    try:
        print("  memory sweep ...", end="", flush=True)
        t0 = time.perf_counter()
        sections["memory"] = measure_memory(memory_grid)
        print(f" {time.perf_counter() - t0:.1f} s", flush=True)
    except Exception:
        print(" failed")
        failures.append(traceback.format_exc())

    for name in ("daily", "minute"):
        if name in sections:
            print_grid(sections[name], startup_s, args.workers)
            if not sections[name]["identical"]:
                checks_failed.append(f"{name}: serial and cluster tables differ")
    b = sections.get("backtesting")
    if b is not None:
        print_backtesting(b, sections.get("daily"), sections.get("parity", []), startup_s)
        if "daily" in sections:
            ours = sorted(tuple(int(v) for v in p) for p in
                          itertools.product(DAILY_GRID["fast"], DAILY_GRID["slow"]))
            if b["tried"] != ours:
                checks_failed.append("backtesting.py tried other combinations than ours")
        checks_failed += [f"round trips differ at {c['params']}" for c in sections.get("parity", []) if not c["same"]]
    if "memory" in sections:
        print_memory(sections["memory"])

    summary = []
    for name in ("daily", "minute"):
        if name in sections:
            g = sections[name]
            summary.append((f"cluster speed-up, {name}", f"{g['speedup']:.2f}x (cold {g['speedup_first']:.2f}x)",
                            f">= {TARGETS['speedup']}x", g["speedup"] >= TARGETS["speedup"]))
    if b is not None and "daily" in sections:
        d = sections["daily"]
        slower = max(d["serial_s"], d["cluster_s"])
        summary.append(("faster than backtesting.py optimize", f"{d['serial_s']:.2f} / {d['cluster_s']:.2f} vs "
                        f"{b['best_s']:.2f} s", "serial and cluster < theirs", slower < b["best_s"]))
    if "memory" in sections:
        m = sections["memory"]
        summary.append(("memory beyond the table", f"{m['per_row_bytes']:,.0f} B/row", f"<= {TARGETS['bytes_per_row']}"
                        " B/row", m["per_row_bytes"] <= TARGETS["bytes_per_row"]))
    end_load = loadavg()
    print(f"\n== Summary (load average {end_load} at the end; a shared, noisy machine) ==")
    for what, value, target, ok in summary:
        print(f"  {what:<38} {value:<30} [target {target}: {mark(ok)}]")
    busy = busy_machine(sections, [start_load, end_load])
    if busy:
        print(f"  WARNING: the machine was busy ({busy}); the timings, the speed-ups above all, are not reliable: "
              "run again on an idle machine")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in ("daily", "minute"):
        if name in sections:
            sections[name]["serial"] = [strip(r) for r in sections[name]["serial"]]
            sections[name]["cluster"] = [strip(r) for r in sections[name]["cluster"]]
    payload = {
        "environment": environment(),
        "settings": {"daily": DAILY, "daily_grid": DAILY_GRID, "minute": MINUTE, "minute_grid": MINUTE_GRID,
                     "memory_window": MEMORY_WINDOW, "memory_grid_size": size_of(memory_grid),
                     "repeat": args.repeat, "workers": args.workers, "targets": TARGETS},
        "cluster_startup_s": startup_s,
        **sections,
        "summary": [{"what": w, "value": v, "target": t, "ok": ok} for w, v, t, ok in summary],
        "busy_machine": busy,
        "load_average": {"start": start_load, "end": end_load},
        "checks_failed": checks_failed,
        "failures": failures,
        "elapsed_s": time.perf_counter() - started,
    }
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nresults written to {out}  (total {payload['elapsed_s']:.0f} s)")
    if failures:
        print("FAIL: something failed to run:\n" + "\n".join(failures))
        return 2
    if checks_failed:
        print("FAIL: " + "; ".join(checks_failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
