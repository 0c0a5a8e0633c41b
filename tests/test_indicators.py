"""Indicators declared once in ``initialize`` (``self.indicator`` / ``api.indicator``):
values, reads (``data.current``, ``data.history``, the handle), several outputs and
assets, errors at ``initialize`` time, and the look-ahead check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import bars

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frames
from rustybt_nb.errors import IndicatorError, LookAheadError

CLOSES = [100.0, 102, 101, 105, 107, 106, 110, 108, 111, 115, 117, 114]


@pytest.fixture(scope="module")
def store():
    return bars([(c, c + 2, c - 2, c) for c in CLOSES])


def sma(values, n):
    return pd.Series(values).rolling(n).mean().to_numpy()


def bands(values, n, k=2.0):
    s = pd.Series(values)
    mid = s.rolling(n).mean()
    sd = s.rolling(n).std(ddof=0)
    return pd.DataFrame({"lower": mid - k * sd, "mid": mid, "upper": mid + k * sd})


class Reader(TradingAlgorithm):
    """Declares sma(3) and reads it every way there is."""

    params = {"n": 3}

    def initialize(self, context):
        context.asset = self.symbol("X")
        context.rows = []
        self.fast = self.indicator(sma, "close", n=self.params.n)

    def handle_data(self, context, data):
        a = context.asset
        window = data.history(a, "sma", 2, "1d")
        context.rows.append((data.current(a, "sma"), self.fast[-1], self.fast[-2], float(self.fast),
                             window.tolist()))

    def analyze(self, context, results):
        self.rows = context.rows


def test_values_match_the_function_and_every_read_agrees(store):
    algo = Reader()
    run_algorithm(algo, data=store)
    want = sma(np.array(CLOSES), 3)
    for i, (current, now, before, as_float, window) in enumerate(algo.rows):
        same = (lambda x, y: (math.isnan(x) and math.isnan(y)) or x == y)
        assert same(current, want[i]) and same(now, want[i]) and same(as_float, want[i])
        assert same(before, want[i - 1] if i else math.nan)
        assert len(window) == min(i + 1, 2) and same(window[-1], want[i])


def test_parameters_change_the_indicator_per_run(store):
    seen = {}

    class Keep(Reader):
        def analyze(self, context, results):
            seen[self.params.n] = [r[0] for r in context.rows]

    bt = Backtest(Keep, data=store)
    for n in (2, 4):
        bt.run(n=n)
        assert seen[n][n - 1] == pytest.approx(np.mean(CLOSES[:n])) and math.isnan(seen[n][n - 2])
    assert bt.run(n=3).metrics is not None  # (the store keeps no field of a finished run)
    assert "sma" not in bt.store.fields


def test_several_outputs_and_assets_and_the_free_function():
    index = pd.bdate_range("2024-01-01", periods=12)
    frames = {s: pd.DataFrame({"close": np.array(CLOSES) * m}, index=index) for s, m in (("A", 1.0), ("B", 2.0))}
    store = from_frames(frames)
    out = {}

    def initialize(context):
        from rustybt_nb.api import indicator

        context.bb = indicator(bands, "close", n=4, name="bb")
        context.lower_sma = indicator(sma, context.bb[0], n=2, asset="B")

    def handle_data(context, data):
        out.setdefault("rows", []).append((data.current(["A", "B"], "bb_upper").tolist(), context.bb[1]["B", -1],
                                           data.current("A", "sma"), data.current("B", "sma")))

    run_algorithm(initialize=initialize, handle_data=handle_data, data=store)
    want = {s: bands(f["close"].to_numpy(), 4) for s, f in frames.items()}
    last = out["rows"][-1]
    assert last[0] == pytest.approx([want["A"]["upper"].iloc[-1], want["B"]["upper"].iloc[-1]])
    assert last[1] == pytest.approx(want["B"]["mid"].iloc[-1])
    assert math.isnan(last[2])  # computed for B only: A reads NaN
    assert last[3] == pytest.approx(want["B"]["lower"].iloc[-2:].mean())


@pytest.mark.parametrize("func, kwargs, message", [
    (lambda c: c[:-1], {"name": "short"}, "returned 11 values for 12 bars"),
    (lambda c: np.array(["x"] * len(c)), {"name": "text"}, "must be numbers"),
    (lambda c: None, {"name": "nothing"}, "must return an array"),
    (lambda c: c * 2, {}, "a lambda has no name"),
    (sma, {"name": "close", "n": 2}, "is taken"),
    (lambda c: 1 / 0, {"name": "boom"}, "raised ZeroDivisionError"),
])
def test_bad_indicators_are_refused_at_initialize(store, func, kwargs, message):
    class Bad(TradingAlgorithm):
        def initialize(self, context):
            self.indicator(func, "close", **kwargs)

        def handle_data(self, context, data):
            pass

    with pytest.raises(IndicatorError, match=message):
        run_algorithm(Bad, data=store)


def test_bad_inputs_and_late_declarations_are_refused(store):
    class UnknownField(TradingAlgorithm):
        def initialize(self, context):
            self.indicator(sma, "clsoe", n=2)

    with pytest.raises(IndicatorError, match=r"'clsoe' is not a field.*close"):
        run_algorithm(UnknownField, data=store, handle_data=None)

    class Late(TradingAlgorithm):
        def handle_data(self, context, data):
            self.indicator(sma, "close", n=2)

    with pytest.raises(IndicatorError, match="in initialize"):
        run_algorithm(Late, data=store)

    class Offset(Reader):
        def handle_data(self, context, data):
            self.fast[0]

    with pytest.raises(IndexError, match="negative bar offset"):
        run_algorithm(Offset, data=store)


@pytest.mark.parametrize("key", [0, 1, -1.5, -0.5, True, "x", None, (0,)])
def test_a_handle_refuses_every_offset_but_a_negative_integer_on_every_bar(store, key):
    seen = []

    class Bad(Reader):
        def handle_data(self, context, data):
            try:
                self.fast[key]
            except IndexError as exc:  # (the same error on the first bar, where -0.5 points before the data)
                seen.append(str(exc))
            # numpy integers are integers; a tuple names the asset
            assert self.fast[np.int64(-1)] == self.fast[-1] or math.isnan(self.fast[-1])
            assert self.fast[context.asset, -2] == self.fast[-2] or math.isnan(self.fast[-2])

    run_algorithm(Bad, data=store)
    assert len(seen) == len(CLOSES) and all("negative bar offset" in m or "say which" in m for m in seen)


def centred(values, n=3):
    return pd.Series(values).rolling(n, center=True).mean().to_numpy()


def peek(values):
    return pd.Series(values).shift(-1).to_numpy()


def ewm(values, span=5):
    return pd.Series(values).ewm(span=span).mean().to_numpy()


def cumulative_max(values):
    return np.maximum.accumulate(values)


@pytest.mark.parametrize("func, looks_ahead", [(centred, True), (peek, True), (sma, False), (ewm, False),
                                               (cumulative_max, False)])
def test_the_lookahead_check_catches_future_values_and_passes_causal_ones(func, looks_ahead):
    closes = 100 + np.cumsum(np.random.default_rng(7).standard_normal(300))
    store = bars([(c, c + 1, c - 1, c) for c in closes])

    class Uses(TradingAlgorithm):
        def initialize(self, context):
            self.indicator(func, "close", **({"n": 5} if func is sma else {}))

        def handle_data(self, context, data):
            pass

    if looks_ahead:
        with pytest.raises(LookAheadError, match=f"indicator '{func.__name__}' of X looks ahead: its value at"):
            run_algorithm(Uses, data=store, check_lookahead=True)
    else:
        run_algorithm(Uses, data=store, check_lookahead=True)
    run_algorithm(Uses, data=store)  # off by default: nothing is checked


def test_lookahead_check_reports_the_first_bar_that_changes():
    closes = 100 + np.arange(200.0)
    store = bars([(c, c + 1, c - 1, c) for c in closes])

    class Peeks(TradingAlgorithm):
        def initialize(self, context):
            self.indicator(peek, "close")

        def handle_data(self, context, data):
            pass

    with pytest.raises(LookAheadError) as info:
        run_algorithm(Peeks, data=store, check_lookahead=True)
    cut = int(199 * 0.1)  # the first cut point: its last bar is the first value that changes
    assert f"(bar {cut})" in str(info.value)
    assert f"its value at {store.index[cut].date()} " in str(info.value)  # (a date: daily bars)
    assert "but NaN when the bars after" in str(info.value)


def momentum(close, n=3):
    """Change over n bars: values around 0, far below the price, drawn in a row of its own by default."""
    return pd.Series(close).diff(n).to_numpy()


class Drawn(TradingAlgorithm):
    def initialize(self, context):
        self.indicator(sma, "close", n=3)
        self.indicator(momentum, "close")
        self.indicator(sma, "close", n=2, name="hidden", plot="none")
        self.indicator(momentum, "close", name="forced", plot="overlay")

    def handle_data(self, context, data):
        if data.current("X", "sma") > 0 and not context.portfolio.positions["X"].amount:
            self.order("X", 1)


def test_indicators_frame_settings_plot_and_save_load(store, tmp_path):
    result = run_algorithm(Drawn, data=store)
    frame = result.indicators
    assert list(frame.columns) == ["dt", "bar", "asset", "sma", "momentum", "hidden", "forced"]
    assert len(frame) == len(CLOSES) and set(frame["asset"]) == {"X"}
    np.testing.assert_allclose(frame["sma"].to_numpy(), sma(np.array(CLOSES), 3), equal_nan=True)
    assert result.settings["indicators"]["hidden"] == {"assets": ["X"], "plot": "none"}
    assert result.settings["indicators"]["sma"]["plot"] == "auto"

    fig = result.plot()
    rows = {t.name: t.yaxis for t in fig.data if t.name in ("sma", "momentum", "hidden", "forced", "X close")}
    assert "hidden" not in rows
    assert rows["sma"] == rows["X close"] == rows["forced"]  # on the price (by range / as asked)
    assert rows["momentum"] not in (rows["X close"], "y", "y2")  # an oscillator: a row of its own

    pytest.importorskip("pyarrow")
    loaded = type(result).load(result.save(tmp_path / "saved"))
    assert loaded.equals(result)
    pd.testing.assert_frame_equal(loaded.indicators, frame)


def test_a_run_without_indicators_has_an_empty_frame_and_loads_old_saves(store, tmp_path):
    pytest.importorskip("pyarrow")
    result = run_algorithm(Reader, data=store)
    assert "indicators" in result.settings
    plain = run_algorithm(initialize=lambda c: None, handle_data=lambda c, d: None, data=store)
    assert list(plain.indicators.columns) == ["dt", "bar", "asset"] and not len(plain.indicators)
    assert "indicators" not in plain.settings
    folder = plain.save(tmp_path / "old")
    (folder / "indicators.parquet").unlink()  # as a result saved before indicators existed
    assert type(plain).load(folder).equals(plain)


def test_the_tweak_panel_draws_indicators_and_redraws_them_when_a_parameter_moves(store):
    pytest.importorskip("ipywidgets")

    class Tuned(TradingAlgorithm):
        params = {"n": 3}

        def initialize(self, context):
            self.indicator(sma, "close", n=self.params.n)

        def handle_data(self, context, data):
            if not context.portfolio.positions["X"].amount:
                self.order("X", 1)

    panel = Backtest(Tuned, data=store).tweak()

    def last_value() -> float:
        y = next(t for t in panel.figures["equity"].data if t.name == "sma").y
        if isinstance(y, dict):  # (plotly keeps numbers as a typed array: dtype + base64 bytes)
            import base64

            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
        return float(np.asarray(y, dtype=float)[-1])

    assert last_value() == pytest.approx(np.mean(CLOSES[-3:]))
    panel.set(n=5)
    assert last_value() == pytest.approx(np.mean(CLOSES[-5:]))


def _crossing_strategy(calls):
    """A crossover of sma(fast) over sma(slow) (the second computed from the first and
    the close) that counts its function's calls per window in ``calls``."""

    def counted_sma(values, n):
        calls[n] = calls.get(n, 0) + 1
        return sma(values, n)

    def spread(fast, close, scale):
        return (close - fast) * scale[0]

    class Cross(TradingAlgorithm):
        params = {"fast": 2, "slow": 4, "scale": (1.0,)}

        def initialize(self, context):
            context.asset = self.symbol("X")
            self.fast = self.indicator(counted_sma, "close", n=self.params.fast, name="fast")
            self.slow = self.indicator(counted_sma, "close", n=self.params.slow, name="slow")
            # an input that is another indicator, and an unhashable argument (never reused)
            self.gap = self.indicator(spread, self.fast, "close", scale=list(self.params.scale), name="gap")

        def handle_data(self, context, data):
            a = context.asset
            held = context.portfolio.positions[a].amount
            if self.fast[-1] > self.slow[-1] and not held:
                self.order(a, 10)
            elif self.fast[-1] < self.slow[-1] and held:
                self.order_target(a, 0)

    return Cross


def test_a_sweep_computes_each_distinct_indicator_once_per_batch_with_the_same_results(store):
    calls = {}
    bt = Backtest(_crossing_strategy(calls), data=store)
    grid = {"fast": [2, 3], "slow": [4, 5, 6]}
    table = bt.sweep(grid, client="serial", progress=False)
    assert len(table.table) == 6
    # six runs declare twelve windows; within a batch each distinct one is computed once
    # (how the runs fall into batches depends on their timing: the first runs alone)
    assert set(calls) == {2, 3, 4, 5, 6} and sum(calls.values()) < 12
    before = dict(calls)
    for fast in grid["fast"]:
        for slow in grid["slow"]:
            single = bt.run_metrics(fast=fast, slow=slow)
            row = table.table[(table.table["fast"] == fast) & (table.table["slow"] == slow)].iloc[0]
            for name, value in single.items():
                assert row[name] == value or (math.isnan(row[name]) and math.isnan(value)), (fast, slow, name)
    assert calls[2] == before[2] + 3  # single runs compute afresh (no cache outside a sweep)


def test_the_indicator_cache_matches_inputs_and_arguments_exactly(store):
    calls = {}
    bt = Backtest(_crossing_strategy(calls), data=store)
    with bt.reusing_indicators():
        first = bt.run(fast=2, slow=4)
        again = bt.run(fast=2, slow=4)
        other_scale = bt.run(fast=2, slow=4, scale=(2.0,))
        cache = bt._indicator_cache
        assert cache.hits == 2 * 2  # fast and slow reused by the second and third runs; gap never
    assert bt._indicator_cache is None  # the block's cache is dropped with it
    assert calls == {2: 1, 4: 1}
    pd.testing.assert_frame_equal(first.indicators, again.indicators)
    gap = other_scale.indicators["gap"].to_numpy()
    base = first.indicators["gap"].to_numpy()
    np.testing.assert_allclose(gap, 2 * base, equal_nan=True)
    # keys carry the argument's type: 1 and 1.0 are different calls
    from rustybt_nb.indicators import IndicatorCache

    c = IndicatorCache()
    col = np.zeros(3)
    assert c.key(sma, [col], {"n": 1}) != c.key(sma, [col], {"n": 1.0})
    assert c.key(sma, [col], {"n": [1]}) is None


def test_a_method_reading_the_strategys_parameters_is_never_shared_between_runs(store):
    class Method(TradingAlgorithm):
        params = {"n": 2}

        def window_mean(self, close):  # reads self.params: the same bound method each run of an instance
            return sma(close, self.params.n)

        def initialize(self, context):
            context.asset = self.symbol("X")
            self.mean = self.indicator(self.window_mean, "close", name="mean")

        def handle_data(self, context, data):
            held = context.portfolio.positions[context.asset].amount
            if data.current(context.asset, "close") > self.mean[-1] and not held:
                self.order(context.asset, 10)
            elif data.current(context.asset, "close") < self.mean[-1] and held:
                self.order_target(context.asset, 0)

    bt = Backtest(Method(), data=store)  # an instance: every run uses (and re-parameterises) this object
    table = bt.sweep({"n": [2, 3, 4, 5]}, client="serial", progress=False).table
    for n in (2, 3, 4, 5):
        single = Backtest(Method, data=store).run_metrics(n=n)
        row = table[table["n"] == n].iloc[0]
        assert row["end_value"] == single["end_value"] and row["trade_count"] == single["trade_count"], n
    with bt.reusing_indicators():
        bt.run(n=2)
        bt.run(n=3)
        assert bt._indicator_cache.hits == 0
