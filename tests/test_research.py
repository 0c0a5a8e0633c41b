"""Sweeps and walk-forward: serial and on a 2-worker LocalCluster, error rows, store and
resume, interrupts, a strategy defined in ``__main__``, walk-forward windows, heatmaps, the
deflated Sharpe ratio."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.metrics import METRIC_NAMES
from rustybt_nb.research import Grid, SweepResult, deflated_sharpe, sweep, walk_forward
from rustybt_nb.research import runner as runner_module
from rustybt_nb.research.folds import fold_windows, span
from rustybt_nb.research.grid import combinations

distributed = pytest.importorskip("distributed")

WINDOW = {"data": "AAPL", "start": "2010-01-01", "end": "2011-12-31"}
GRID = {"fast": [5, 7, 10], "slow": [20, 40]}


class Cross(TradingAlgorithm):
    """A moving-average crossover; ``fast=7`` raises (an error row), ``fast=-1`` kills its worker."""

    params = {"fast": 10, "slow": 30}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        p = self.params
        if p.fast == 7:
            raise RuntimeError("seven is unlucky")
        if p.fast == -1:
            os._exit(3)  # a worker that dies
        closes = data.history(context.asset, "close", p.slow, "1d")
        if len(closes) < p.slow:
            return
        fast, slow = closes.iloc[-p.fast:].mean(), closes.mean()
        held = context.portfolio.positions[context.asset].amount
        if fast > slow and not held:
            self.order(context.asset, 100)
        elif fast < slow and held:
            self.order_target(context.asset, 0)


class Flexible(Cross):
    """Cross with a parameter that changes nothing (a third grid dimension)."""

    params = {"fast": 10, "slow": 30, "other": 0}


@pytest.fixture(scope="module")
def client():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c
    cluster.close()


def rows(result: SweepResult) -> pd.DataFrame:
    return result.table.drop(columns="seconds")


# ------------------------------------------------------------------ rows
def test_serial_and_a_local_cluster_give_identical_rows(client):
    serial = sweep(Cross, GRID, client="serial", progress=False, **WINDOW)
    parallel = sweep(Cross, GRID, client=client, progress=False, **WINDOW)
    pd.testing.assert_frame_equal(rows(serial), rows(parallel))
    assert serial.complete and parallel.complete and serial.ran == parallel.ran == 6
    assert list(serial.table.columns) == ["fast", "slow", *METRIC_NAMES, "status", "error", "seconds"]
    assert (serial.table["seconds"] > 0).all()


def test_a_row_is_what_run_algorithm_gives():
    result = sweep(Cross, GRID, client="serial", progress=False, **WINDOW)
    row = result.table[(result.table["fast"] == 10) & (result.table["slow"] == 40)].iloc[0]
    direct = run_algorithm(Cross, fast=10, slow=40, **WINDOW).metrics
    for name in METRIC_NAMES:
        assert row[name] == direct[name] or (np.isnan(row[name]) and np.isnan(direct[name])), name


def test_a_failing_combination_is_an_error_row_and_the_sweep_goes_on():
    result = sweep(Cross, GRID, client="serial", progress=False, **WINDOW)
    errors = result.table[result.table["status"] == "error"]
    assert list(errors["fast"]) == [7, 7]
    assert errors["error"].str.startswith("RuntimeError: seven is unlucky (in handle_data, line").all()
    assert errors[list(METRIC_NAMES)].isna().all().all()
    assert (result.table.loc[result.table["fast"] != 7, "status"] == "ok").all()
    assert "2 errors" in repr(result)


def test_best_and_the_table_agree():
    result = Backtest(Cross, **WINDOW).sweep(GRID, client="serial", progress=False, maximize="total_return")
    ok = result.table[result.table["status"] == "ok"]
    top = ok.loc[ok["total_return"].idxmax()]
    assert result.best() == {"fast": int(top["fast"]), "slow": int(top["slow"])}
    assert result.best("sharpe") == {k: int(v) for k, v in ok.loc[ok["sharpe"].idxmax(), ["fast", "slow"]].items()}
    full = result.result()
    assert full.metrics["total_return"] == top["total_return"]
    with pytest.raises(ValueError, match=r"`metric`='sharp' is not a metric.*Did you mean 'sharpe'"):
        result.best("sharp")


def test_batches_take_about_half_a_second_and_shrink_so_the_workers_finish_together():
    size = runner_module.batch_sizes(0.01, workers=2, remaining=99)  # 10 ms a combination, 99 to go
    plan = []
    while sum(plan) < 99:
        plan.append(min(size(sum(plan)), 99 - sum(plan)))
    assert plan[0] == 13 and all(10 <= n <= 13 for n in plan[:-1])  # a share of the rest, >= 0.1 s of work
    assert sum(plan) == 99 and len(plan) >= 8  # several tasks a worker: none waits on a long last one
    big = runner_module.batch_sizes(0.01, workers=2, remaining=1_000_000)
    assert big(0) == 50  # 0.5 s of work at most
    assert runner_module.batch_sizes(0.01, workers=2, remaining=None)(0) == 50
    assert runner_module.batch_sizes(5.0, workers=2, remaining=10)(0) == 1  # slow runs: one a task


def test_a_worker_that_dies_is_retried_once_then_its_combinations_are_error_rows(client, monkeypatch):
    monkeypatch.setattr(runner_module, "TASK_SECONDS", 1e-9)  # one combination per task
    grid = {"fast": [5, -1, 10], "slow": [40]}
    result = sweep(Cross, grid, client=client, progress=False, **WINDOW)
    by_fast = result.table.set_index("fast")
    assert by_fast.loc[-1, "status"] == "error" and "task failed: KilledWorker" in by_fast.loc[-1, "error"]
    assert by_fast.loc[5, "status"] == by_fast.loc[10, "status"] == "ok"
    assert client.submit(sum, [1, 2], pure=False).result() == 3  # the cluster is still usable


# ------------------------------------------------------------------ store, resume, interrupt
def test_store_and_resume(tmp_path):
    store = tmp_path / "sweep.parquet"
    first = sweep(Cross, {"fast": [5, 10], "slow": [20, 40]}, client="serial", progress=False, store=store,
                  **WINDOW)
    assert first.ran == 4 and first.resumed == 0 and store.is_dir()
    assert len(pd.read_parquet(store)) == 4
    more = sweep(Cross, {"fast": [5, 10, 15], "slow": [20, 40]}, client="serial", progress=False, store=store,
                 resume=True, **WINDOW)
    assert more.ran == 2 and more.resumed == 4
    fresh = sweep(Cross, {"fast": [5, 10, 15], "slow": [20, 40]}, client="serial", progress=False, **WINDOW)
    pd.testing.assert_frame_equal(rows(more), rows(fresh))
    again = sweep(Cross, {"fast": [5, 10], "slow": [20, 40]}, client="serial", progress=False, store=store,
                  **WINDOW)  # without resume: the store starts over
    assert again.ran == 4 and len(pd.read_parquet(store)) == 4


def _interrupt_after(size: int, n: int):
    """A constraint that raises KeyboardInterrupt (as Ctrl-C would, in the notebook's process)
    once the sweep has counted the ``size`` combinations and then drawn ``n`` to run."""
    seen = []

    def constraint(params):
        seen.append(params)
        if len(seen) > size + n:
            raise KeyboardInterrupt
        return True

    return constraint


def test_an_interrupt_keeps_the_rows_done_and_leaves_the_cluster_usable(client, monkeypatch):
    monkeypatch.setattr(runner_module, "TASK_SECONDS", 1e-9)
    grid = {"fast": [5, 10, 15, 20], "slow": [20, 30, 40, 50]}
    t0 = time.perf_counter()
    result = sweep(Cross, grid, client=client, progress=False, constraint=_interrupt_after(16, 6), **WINDOW)
    assert time.perf_counter() - t0 < 30
    assert result.complete is False and 0 < len(result.table) < 16
    assert (result.table["status"] == "ok").all()
    assert "interrupted" in repr(result)
    assert client.submit(sum, [2, 3], pure=False).result() == 5
    assert sweep(Cross, {"fast": [5], "slow": [20]}, client=client, progress=False, **WINDOW).complete


def test_an_interrupt_of_a_serial_sweep_keeps_the_rows_done():
    result = sweep(Cross, {"fast": [5, 10, 15, 20], "slow": [20, 40]}, client="serial", progress=False,
                   constraint=_interrupt_after(8, 3), **WINDOW)
    assert result.complete is False and 1 <= len(result.table) < 8  # the batch in flight is not kept


# ------------------------------------------------------------------ grids
def test_combinations_are_lazy_numbered_and_constrained():
    grid = Grid({"a": range(1000), "b": range(1000), "c": [1, 2, 3]})
    assert grid.size == 3_000_000 and grid.params(5) == {"a": 0, "b": 1, "c": 3}
    first = list(zip(range(4), combinations(grid, constraint=lambda p: p["a"] < p["b"])))
    assert [k for _, k in first] == [3, 4, 5, 6]
    drawn = list(combinations(grid, method="random", n_samples=5, seed=1))
    assert drawn == list(combinations(grid, method="random", n_samples=5, seed=1)) and len(set(drawn)) == 5
    cols = grid.columns(np.array(drawn))
    assert [dict(zip(cols, v)) for v in zip(*cols.values())] == [grid.params(k) for k in drawn]
    with pytest.raises(ValueError, match="`n_samples`"):
        list(combinations(grid, method="random"))
    with pytest.raises(ValueError, match=r"`grid\['x'\]` is empty"):
        Grid({"x": []})


def test_unknown_grid_names_and_settings_are_clear_errors():
    with pytest.raises(TypeError, match="Cross has no parameter 'fsat'"):
        sweep(Cross, {"fsat": [1]}, client="serial", **WINDOW)
    with pytest.raises(TypeError, match="unexpected argument 'strat'"):
        sweep(Cross, GRID, strat="2010-01-01")
    with pytest.raises(ValueError, match="`maximize`='sharp'"):
        sweep(Cross, GRID, maximize="sharp", client="serial", **WINDOW)


# ------------------------------------------------------------------ views
def test_the_heatmap_is_built_from_the_table():
    result = sweep(Flexible, {"fast": [5, 10], "slow": [20, 40], "other": [1, 2]}, client="serial", progress=False,
                   **WINDOW)
    fig = result.heatmap("fast", "slow", metric="total_return", agg="max")
    heat = fig.data[0]
    expected = result.ok.groupby(["slow", "fast"])["total_return"].max().unstack("fast")
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), expected.to_numpy())
    assert heat.colorbar.title.text == "Total return" and list(heat.x) == ["5", "10"]
    assert "Sharpe" in heat.text[0][0] and "Max drawdown" in heat.text[0][0]
    assert "(max over other)" in fig.layout.title.text
    with pytest.raises(ValueError, match="`x`='fsat' is not a swept parameter"):
        result.heatmap("fsat", "slow")


def test_deflated_sharpe_falls_with_the_number_of_trials():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, 750)
    few = deflated_sharpe(returns, rng.normal(0.05, 0.02, 3))
    many = deflated_sharpe(returns, rng.normal(0.05, 0.02, 300))
    assert 0 < many < few < 1
    result = sweep(Cross, GRID, client="serial", progress=False, **WINDOW)
    assert 0 <= result.deflated_sharpe <= 1


# ------------------------------------------------------------------ walk-forward
def test_fold_windows_never_overlap_and_tile_the_test_span():
    first, last = pd.Timestamp("2004-01-01"), pd.Timestamp("2012-12-31")
    rolling = fold_windows(first, last, span("3Y", "train"), span("1Y", "test"), anchored=False)
    anchored = fold_windows(first, last, span("3Y", "train"), span("1Y", "test"), anchored=True)
    assert len(rolling) == len(anchored) == 6
    for (a, b, c, d), (a2, _, c2, d2) in zip(rolling, anchored):
        assert a < b < c <= d and b < c and (c - b).days == 1
        assert a2 == first and (c2, d2) == (c, d)
    for (_, _, _, d), (_, _, c, _) in itertools.pairwise(rolling):
        assert (c - d).days == 1  # test windows tile the span
    with pytest.raises(ValueError, match="`train`='3 years'"):
        span("3 years", "train")


def test_walk_forward_tests_each_fold_out_of_sample():
    wf = walk_forward(Flexible, {"fast": [5, 10], "slow": [20, 40]}, train="1Y", test="6M", client="serial",
                      progress=False, data="AAPL", start="2008-01-01", end="2011-12-31")
    folds = wf.folds
    assert len(folds) == 6 and list(folds.columns[:4]) == ["train_start", "train_end", "test_start", "test_end"]
    assert (folds["train_end"] < folds["test_start"]).all()
    assert (folds["test_start"].iloc[1:].to_numpy() > folds["test_end"].iloc[:-1].to_numpy()).all()
    for (k, row), result in zip(folds.iterrows(), wf.results):
        params = {"fast": row["fast"], "slow": row["slow"]}
        assert params == wf.sweeps[k - 1].best()
        assert result.settings["start"] == row["test_start"] and result.settings["params"]["fast"] == row["fast"]
        assert row["out_of_sample"] == result.metrics["sharpe"]
    equity = wf.equity
    assert equity.index[0] == folds["test_start"].iloc[0] and equity.index[-1] == folds["test_end"].iloc[-1]
    assert equity.is_monotonic_increasing is False or equity.iloc[-1] > 0
    assert np.isfinite(wf.efficiency)
    fig = wf.plot()
    assert fig.data[0].name == "out-of-sample equity" and len(fig.data) == 3
    assert "6 rolling folds" in repr(wf)


def test_walk_forward_warm_up_reads_bars_before_the_test_window():
    """A strategy that needs 40 bars of history trades from the first days of a test
    window: its history reaches back into the training window (never forward)."""
    wf = walk_forward(Cross, {"fast": [5], "slow": [40]}, train="6M", test="6M", client="serial", progress=False,
                      data="AAPL", start="2010-01-01", end="2011-12-31")
    first_orders = [r.orders["created"].min() for r in wf.results if len(r.orders)]
    starts = list(wf.folds["test_start"])
    assert any((o - s).days < 10 for o, s in zip(first_orders, starts))


# ------------------------------------------------------------------ a strategy from a notebook cell
def test_a_strategy_defined_in_main_runs_on_a_local_cluster(tmp_path):
    script = textwrap.dedent("""
        import logging
        import distributed
        from rustybt_nb import TradingAlgorithm
        from rustybt_nb.research import sweep

        class CellStrategy(TradingAlgorithm):
            params = {"size": 10, "every": 5}

            def initialize(self, context):
                context.asset = self.symbol("AAPL")
                context.n = 0

            def handle_data(self, context, data):
                context.n += 1
                if context.n % self.params.every == 0:
                    held = context.portfolio.positions[context.asset].amount
                    self.order(context.asset, -held if held else self.params.size)

        if __name__ == "__main__":
            assert CellStrategy.__module__ == "__main__"
            grid = {"size": [10, 20], "every": [3, 7]}
            window = dict(data="AAPL", start="2011-01-01", end="2011-06-30", progress=False)
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                          silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
                remote = sweep(CellStrategy, grid, client=c, **window)
            local = sweep(CellStrategy, grid, client="serial", **window)
            assert (remote.table["status"] == "ok").all(), remote.table["error"].tolist()
            print(remote.table.drop(columns="seconds").equals(local.table.drop(columns="seconds")))
    """)
    path = tmp_path / "cell.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "True"


# ------------------------------------------------------------------ what a researcher runs into
def test_folds_count_from_the_start_as_written_and_match_on_a_cluster(client):
    options = dict(train="2Y", test="1Y", progress=False, data="AAPL", start="2006-01-01", end="2009-12-31")
    wf = walk_forward(Cross, {"fast": [5, 10], "slow": [40]}, client="serial", **options)
    # calendar years from 2006-01-01: the first test year is 2008 (its first session 2008-01-02)
    assert [str(t.date()) for t in wf.folds["test_start"]] == ["2008-01-02", "2009-01-02"]
    assert str(wf.folds["train_end"].iloc[0].date()) == "2007-12-31"
    remote = walk_forward(Cross, {"fast": [5, 10], "slow": [40]}, client=client, **options)
    pd.testing.assert_frame_equal(remote.folds, wf.folds)
    pd.testing.assert_series_equal(remote.equity, wf.equity)
    fig = wf.plot()
    for shape in fig.layout.shapes:  # placed at dates (plotly writes datetime64 scalars as integer ns)
        assert str(shape.x0).startswith("2008") or str(shape.x0).startswith("2009")
    assert [a.x for a in fig.layout.annotations][:2] == [shape.x0 for shape in fig.layout.shapes]


def test_float_grids_have_tidy_values_and_best_can_take_the_lowest():
    assert Grid({"p": np.arange(0.1, 1.0, 0.1)}).values[0] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert Grid({"p": [1e-15, 2.5, "x", 3]}).values[0] == [1e-15, 2.5, "x", 3]
    result = Backtest(Cross, **WINDOW).sweep({"fast": [5, 10], "slow": [20, 40]}, client="serial", progress=False)
    ok = result.ok
    low = ok.loc[ok["annual_volatility"].idxmin()]
    assert result.best("annual_volatility", lowest=True) == {"fast": low["fast"], "slow": low["slow"]}


def test_settings_given_to_the_backtest_methods_say_where_they_go():
    bt = Backtest(Cross, **WINDOW)
    with pytest.raises(TypeError, match=r"`start` is a setting of the Backtest, not of \.sweep\(\).*between"):
        bt.sweep(GRID, start="2011-01-01")
    with pytest.raises(TypeError, match=r"walk_forward\(\) got an unexpected argument 'store'; its options are"):
        bt.walk_forward(GRID, store="x.parquet")
    with pytest.raises(TypeError, match="Did you mean 'maximize'"):
        bt.sweep(GRID, maximise="sharpe")


def test_a_store_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs pyarrow: pip install 'rustybt_nb\[research\]'"):
        sweep(Cross, GRID, client="serial", progress=False, store=tmp_path / "s.parquet", **WINDOW)
