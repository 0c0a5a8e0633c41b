"""Where a run is wired: :class:`Backtest` and :func:`run_algorithm`.

This is the package's composition root. Everything that runs a backtest — ``run_algorithm``,
``%%backtest``, the widgets and the parameter sweeps — makes a :class:`Backtest` and calls
:meth:`Backtest.run` (or :meth:`Backtest.run_metrics`); nothing else builds a
:class:`~rustybt_nb.simulation.Simulation`.

A ``Backtest`` is "this strategy on these bars with these settings": it checks the settings
and loads (and validates) the bars once, when it is made. Each ``run(**params)`` then makes
a fresh algorithm with those parameters, simulates the bars from ``start`` to ``end``, and
reads the finished simulation into a :class:`~rustybt_nb.results.BacktestResult`
(:mod:`rustybt_nb.result_builder`). A ``Backtest`` pickles (plain ``pickle`` for strategies
importable by name, ``cloudpickle`` for ones defined in a notebook cell), holding its bars
once, so a sweep can send it to each worker process once.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd

from .algorithm import (
    TradingAlgorithm,
    check_param_names,
    declared_params,
    explain_context_error,
    make_algorithm,
)
from .data.bar_store import BarStore
from .data.sources import open_data
from .data.validation import normalize_frequency
from .errors import did_you_mean
from .finance.commission import CommissionModel, NoCommission
from .finance.contingency import SAME_BAR_POLICIES
from .finance.execution import TRAIL_REFERENCES
from .finance.fill_rules import FILL_MODELS
from .finance.slippage import NoSlippage, SlippageModel
from .result_builder import build_result, metric_values_of
from .results import BacktestResult
from .simulation import Simulation

__all__ = ["Backtest", "run_algorithm"]

HOOKS = ("initialize", "handle_data", "before_trading_start", "analyze", "on_order_event", "on_trade")


class Backtest:
    """One strategy on one set of bars with one set of settings, ready to run with any
    parameters.

    Parameters
    ----------
    strategy:
        A :class:`~rustybt_nb.TradingAlgorithm` subclass (a new instance per run) or an
        instance (used as it is, its parameters as defaults); or None with Zipline-style
        ``initialize=`` / ``handle_data=`` (``before_trading_start=``, ``analyze=``) functions.
    data:
        A bar store, a DataFrame, a ``{symbol: DataFrame}`` dict, a CSV/Parquet path or
        sample name(s) (default ``'AAPL'``); see :func:`rustybt_nb.data.open_data`.
        Loaded and validated here, once.
    start, end:
        The first and last simulated bar (inclusive; default: all). ``data.history`` can
        still read bars before ``start``. Times follow the one rule of
        :mod:`rustybt_nb.data.times` (naive = exchange time on minute bars).
    capital_base:
        Starting cash (default 100,000).
    data_frequency:
        ``'daily'`` or ``'minute'``; default the data's own (a mismatch raises).
    fill_model, trail_reference, same_bar:
        Simulation policies (see the README's semantics section).
    max_leverage:
        None (default: no limit; a run whose exposure passes 100 % is warned about once),
        or the largest gross exposure (gross market value of the positions / portfolio
        value) an order may take: an order placed (or modified) beyond it is rejected with
        the reason. Checked when the order is placed, at the last prices (see the README).
    check_lookahead:
        True to check, before the first bar, that no indicator declared with
        ``indicator()`` looks ahead: each is recomputed on the bars up to a few cut
        points and must give the same values (else :class:`~rustybt_nb.errors.LookAheadError`
        names it and the first bar that changes). Off by default (it costs four more
        computations of every indicator per run); sweeps and the tweak panel use the
        Backtest's setting.
    slippage, commission:
        Models (default none: costs are zero, and every summary says so).
    symbols:
        With sample names, the samples to load instead; otherwise the symbols to keep.

    ``run(**params)`` returns a :class:`~rustybt_nb.results.BacktestResult`;
    ``run_metrics(**params)`` only its metrics. Parameter names the strategy does not
    declare (in its ``params``) raise ``TypeError`` with near matches.
    """

    def __init__(
        self,
        strategy: Any = None,
        *,
        data: Any = "AAPL",
        start: Any = None,
        end: Any = None,
        capital_base: float = 100_000,
        data_frequency: str | None = None,
        fill_model: str = "ohlc",
        trail_reference: str = "high_low",
        same_bar: str = "stop_first",
        slippage: SlippageModel | None = None,
        commission: CommissionModel | None = None,
        symbols: Any = None,
        max_leverage: float | None = None,
        check_lookahead: bool = False,
        initialize: Callable[..., Any] | None = None,
        handle_data: Callable[..., Any] | None = None,
        before_trading_start: Callable[..., Any] | None = None,
        analyze: Callable[..., Any] | None = None,
        on_order_event: Callable[..., Any] | None = None,
        on_trade: Callable[..., Any] | None = None,
    ) -> None:
        __tracebackhide__ = True
        given = {"data": data, "start": start, "end": end, "capital_base": capital_base,
                 "data_frequency": data_frequency, "fill_model": fill_model, "trail_reference": trail_reference,
                 "same_bar": same_bar, "slippage": slippage, "commission": commission, "symbols": symbols,
                 "max_leverage": max_leverage, "check_lookahead": check_lookahead}
        # what the user set, to write the equivalent run_algorithm call (call_text)
        self._given = {k: v for k, v in given.items() if not _is_default(k, v)}
        self._written: dict[str, str] = {}
        functions = {"initialize": initialize, "handle_data": handle_data,
                     "before_trading_start": before_trading_start, "analyze": analyze,
                     "on_order_event": on_order_event, "on_trade": on_trade}
        self.strategy = strategy
        self.functions = {k: f for k, f in functions.items() if f is not None}
        _check_strategy(strategy, self.functions)
        # an instance's own parameters are the defaults of every run (runs do not accumulate)
        self._instance_params = ({**declared_params(strategy), **(vars(strategy).get("params") or {})}
                                 if isinstance(strategy, TradingAlgorithm) else {})
        self.capital_base = _check_capital(capital_base)
        self.fill_model = _check_choice("fill_model", fill_model, FILL_MODELS)
        self.trail_reference = _check_choice("trail_reference", trail_reference, TRAIL_REFERENCES)
        self.same_bar = _check_choice("same_bar", same_bar, SAME_BAR_POLICIES)
        self.slippage = _check_model("slippage", slippage, SlippageModel, "VolumeShareSlippage()")
        self.commission = _check_model("commission", commission, CommissionModel, "PerShare()")
        self.max_leverage = _check_max_leverage(max_leverage)
        if not isinstance(check_lookahead, bool):
            raise TypeError(f"`check_lookahead` must be True or False, got {check_lookahead!r}")
        self.check_lookahead = check_lookahead
        try:
            freq = normalize_frequency(data_frequency)
        except ValueError:
            raise ValueError(f"`data_frequency` must be 'daily' or 'minute' (or None for the data's own), "
                             f"got {data_frequency!r}") from None
        store = open_data(data, frequency=freq, symbols=symbols, start=start, end=end)
        if freq is not None and store.frequency != freq:
            raise ValueError(f"`data_frequency={data_frequency!r}` but the data has {store.frequency} bars; pass "
                             f"data_frequency={store.frequency!r} (or load {freq} data)")
        self.store: BarStore = store
        self.lo, self.hi = store.bar_range(start, end)

    # ------------------------------------------------------------------ facts
    @property
    def data_frequency(self) -> str:
        return self.store.frequency

    @property
    def start(self) -> pd.Timestamp:
        """The first simulated bar's time."""
        return self.store.index[self.lo]

    @property
    def end(self) -> pd.Timestamp:
        """The last simulated bar's time."""
        return self.store.index[self.hi]

    @property
    def params(self) -> dict[str, Any]:
        """The strategy's parameters as a run without overrides uses them."""
        if isinstance(self.strategy, TradingAlgorithm):
            return dict(self._instance_params)
        return declared_params(self.strategy) if self.strategy is not None else {}

    @property
    def strategy_name(self) -> str:
        if self.strategy is None:
            return "functions"
        return (self.strategy if isinstance(self.strategy, type) else type(self.strategy)).__name__

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` (naming the near matches) for a name the strategy does not
        declare; a strategy that declares no ``params`` takes any name."""
        if self.strategy is not None:
            check_param_names(self.strategy if isinstance(self.strategy, type) else type(self.strategy), params)

    def call_text(self, params: Mapping[str, Any] | None = None) -> str:
        """The ``run_algorithm(...)`` call that runs this backtest with ``params`` (those that
        differ from the strategy's defaults are written), to copy into a script. Data given
        as an object rather than a name is written as the variable ``data``."""
        parts = [self.strategy_name] if self.strategy is not None else \
            [f"{k}={getattr(f, '__name__', k)}" for k, f in self.functions.items()]
        names = [k for k in _DEFAULTS if k in self._given or k in self._written]
        parts += [f"{k}={self._written[k] if k in self._written else _literal(self._given[k], k)}" for k in names]
        defaults = self.params
        parts += [f"{k}={v!r}" for k, v in (params or {}).items() if k not in defaults or defaults[k] != v]
        return f"run_algorithm({', '.join(parts)})"

    @property
    def start_as_given(self) -> Any:
        """``start`` as it was written (a string, a date, a Timestamp), or None when the run
        starts at the first bar of the data; ``start`` is the first simulated bar."""
        return self._given.get("start")

    def between(self, start: Any = None, end: Any = None) -> Backtest:
        """The same backtest — the same bars (shared, not copied), strategy and settings —
        simulating the bars from ``start`` to ``end`` (None: the first / last bar of the
        data); ``data.history`` still sees the bars before ``start``. What walk-forward
        windows are."""
        other = copy.copy(self)
        other.lo, other.hi = self.store.bar_range(start, end)
        other._given = {**self._given, "start": start, "end": end}
        return other

    def sweep(self, grid: Mapping[str, Any], **options: Any) -> Any:
        """Run every combination of ``grid`` (see :func:`rustybt_nb.research.sweep`)."""
        from .research.options import checked_options
        from .research.sweeps import run_sweep

        return run_sweep(self, grid, **checked_options(run_sweep, options, "sweep"))

    def walk_forward(self, grid: Mapping[str, Any], **options: Any) -> Any:
        """Walk-forward optimisation of ``grid`` (see :func:`rustybt_nb.research.walk_forward`)."""
        from .research.folds import run_walk_forward
        from .research.options import checked_options

        return run_walk_forward(self, grid, **checked_options(run_walk_forward, options, "walk_forward"))

    def tweak(self, *, initial: Mapping[str, Any] | None = None, **controls: Any) -> Any:
        """A live panel that re-runs this backtest as its parameters move (see
        :func:`rustybt_nb.analytics.tweak`); ``controls`` say what a parameter's control is
        (``fast=(2, 30, 1)``) or where it starts (``fast=12``), as does ``initial``."""
        from .analytics.tweak_panel import TweakPanel

        return TweakPanel(self, initial=initial, **controls)

    def written_as(self, **arguments: str) -> Backtest:
        """Say how :meth:`call_text` writes arguments that were given as objects, e.g.
        ``written_as(data="'AAPL'")`` when the bars came from a sample name, or
        ``written_as(data="prices")`` when they came from a variable. Returns the backtest."""
        for name, text in arguments.items():
            if name not in _DEFAULTS:
                raise ValueError(f"`{name}` is not a backtest setting; the settings are {', '.join(_DEFAULTS)}")
            self._written[name] = str(text)
        return self

    def __repr__(self) -> str:
        return (f"<Backtest {self.strategy_name} on {', '.join(self.store.symbols)} ({self.data_frequency}), "
                f"{self.start} -> {self.end}, {self.hi - self.lo + 1} bars>")

    # ------------------------------------------------------------------ runs
    def run(self, progress: Callable[[int, int], Any] | None = None, **params: Any) -> BacktestResult:
        """Run with ``params`` (overriding the strategy's ``params``) and return the result.

        ``progress(done_bars, total_bars)``, if given, is called about 200 times. If the
        strategy (or its ``analyze``) raises, or the run is interrupted, the exception
        propagates with what was simulated attached as ``exc.partial_result``.
        """
        __tracebackhide__ = True
        sim = self._simulation(params)
        try:
            result = _simulate(sim, progress, build_result)
            _analyze(sim, result)
            return result
        finally:
            sim.unbind()  # the algorithm keeps no reference to a finished run

    def run_metrics(self, **params: Any) -> pd.Series:
        """``run(**params).metrics``, without building the rest of the result (no frames,
        no recorded values, no logs) and without calling ``analyze`` (which takes the whole
        result): what a parameter sweep needs of each run."""
        __tracebackhide__ = True
        return pd.Series(self.metric_values(**params), name="metrics")

    def metric_values(self, **params: Any) -> dict[str, float]:
        """:meth:`run_metrics` as a plain dict (metric name -> float, in
        :data:`~rustybt_nb.metrics.METRIC_NAMES` order): no pandas object is built, so a
        sweep's row costs the run and little more."""
        __tracebackhide__ = True
        sim = self._simulation(params)
        try:
            return _simulate(sim, None, lambda done, _wall: metric_values_of(done))
        finally:
            sim.unbind()

    def _simulation(self, params: Mapping[str, Any]) -> Simulation:
        if isinstance(self.strategy, TradingAlgorithm):
            self.check_params(params)
            self.strategy._set_params({**self._instance_params, **params})
            algo = make_algorithm(self.strategy, {})
        else:
            algo = make_algorithm(self.strategy, dict(params), self.functions)
        store = self.store
        slippage = self.slippage or NoSlippage()
        settings = {
            "algorithm": type(algo).__name__ if type(algo) is not TradingAlgorithm else "functions",
            "data": repr(store), "symbols": store.symbols, "frequency": store.frequency,
            "calendar": store.calendar, "start": store.index[self.lo], "end": store.index[self.hi],
            "capital_base": self.capital_base, "fill_model": self.fill_model,
            "trail_reference": self.trail_reference, "same_bar": self.same_bar, "slippage": repr(slippage),
            "commission": repr(self.commission or NoCommission()), "params": dict(algo.params),
            "volume_limit": slippage.volume_limit, "synthetic": bool(store.meta.get("synthetic", False)),
        }
        if store.frequency == "minute":
            settings["tz"] = store.tz
        max_leverage = getattr(self, "max_leverage", None)  # (a Backtest pickled before the setting existed)
        if max_leverage is not None:
            settings["max_leverage"] = max_leverage
        if getattr(self, "check_lookahead", False):
            settings["check_lookahead"] = True
        return Simulation(algo, store, lo=self.lo, hi=self.hi, capital_base=self.capital_base,
                          fill_model=self.fill_model, trail_reference=self.trail_reference,
                          same_bar=self.same_bar, slippage=self.slippage, commission=self.commission,
                          settings=settings, max_leverage=max_leverage,
                          indicator_cache=getattr(self, "_indicator_cache", None))

    @contextlib.contextmanager
    def reusing_indicators(self) -> Iterator[None]:
        """Within the block, runs of this backtest share the outputs of indicators declared
        with the same function, inputs and arguments
        (:class:`~rustybt_nb.indicators.IndicatorCache`). Sweeps and walk-forward runs use
        it for each batch of combinations; a single run computes its indicators afresh (a
        function edited or depending on a changed global in a notebook is seen at once)."""
        if getattr(self, "_indicator_cache", None) is not None:  # (nested: the outer block's cache)
            yield
            return
        from .indicators import IndicatorCache

        self._indicator_cache = IndicatorCache()
        try:
            yield
        finally:
            self._indicator_cache = None


def run_algorithm(
    algorithm: Any = None,
    *,
    initialize: Callable[..., Any] | None = None,
    handle_data: Callable[..., Any] | None = None,
    before_trading_start: Callable[..., Any] | None = None,
    analyze: Callable[..., Any] | None = None,
    on_order_event: Callable[..., Any] | None = None,
    on_trade: Callable[..., Any] | None = None,
    data: Any = "AAPL",
    start: Any = None,
    end: Any = None,
    capital_base: float = 100_000,
    data_frequency: str | None = None,
    fill_model: str = "ohlc",
    trail_reference: str = "high_low",
    same_bar: str = "stop_first",
    slippage: SlippageModel | None = None,
    commission: CommissionModel | None = None,
    max_leverage: float | None = None,
    check_lookahead: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    **params: Any,
) -> BacktestResult:
    """Run a backtest and return its :class:`~rustybt_nb.results.BacktestResult`:
    ``Backtest(algorithm, data=..., ...).run(progress, **params)`` (see :class:`Backtest`).

    ``algorithm`` is a :class:`TradingAlgorithm` subclass or instance; or pass Zipline
    style ``initialize=`` / ``handle_data=`` functions. Other keyword arguments are
    strategy parameters (``self.params``). Defaults cost nothing: no slippage, no
    commission (set them here or with ``set_slippage``/``set_commission`` in
    ``initialize``). If the strategy raises, the exception propagates with the partial
    result attached as ``exc.partial_result``.
    """
    __tracebackhide__ = True
    backtest = Backtest(algorithm, initialize=initialize, handle_data=handle_data,
                        before_trading_start=before_trading_start, analyze=analyze, on_order_event=on_order_event,
                        on_trade=on_trade, data=data, start=start,
                        end=end, capital_base=capital_base, data_frequency=data_frequency, fill_model=fill_model,
                        trail_reference=trail_reference, same_bar=same_bar, slippage=slippage,
                        commission=commission, max_leverage=max_leverage, check_lookahead=check_lookahead)
    return backtest.run(progress, **params)


# ====================================================================== helpers
def _simulate(sim: Simulation, progress: Callable[[int, int], Any] | None,
              read: Callable[[Simulation, float], Any]) -> Any:
    """Run ``sim`` and return ``read(sim, wall_seconds)``; if the run raises (or is
    interrupted), what it simulated is attached to the exception as ``partial_result``."""
    __tracebackhide__ = True
    t0 = time.perf_counter()
    with _fewer_full_collections():
        try:
            sim.run(progress)
        except BaseException as exc:
            _attach_partial(exc, lambda: build_result(sim, time.perf_counter() - t0))
            raise
        return read(sim, time.perf_counter() - t0)


def _analyze(sim: Simulation, result: BacktestResult) -> None:
    """The strategy's ``analyze(context, result)``; if it raises, the finished result is
    attached to the exception."""
    __tracebackhide__ = True
    algo = sim.algo
    algo._sim = sim
    sim._phase = "analyze"
    try:
        algo.analyze(sim.context, result)
    except BaseException as exc:
        explain_context_error(exc, sim.context)
        _attach_partial(exc, lambda: result)
        raise


def _attach_partial(exc: BaseException, build: Callable[[], BacktestResult]) -> None:
    """``exc.partial_result = build()``; a failure to build never hides the user's error."""
    with contextlib.suppress(Exception):
        exc.partial_result = build()  # type: ignore[attr-defined]


@contextlib.contextmanager
def _fewer_full_collections() -> Iterator[None]:
    """Run with Python's middle-generation collections 10x and its oldest-generation
    collections 100x rarer (restored after).

    A backtest keeps every order and event alive until it ends, so the collector's older
    generations would traverse that growing heap again and again for nothing. The
    youngest generation is still collected every 700 allocations, so cyclic garbage a
    strategy makes and drops within a bar is freed promptly; cycles that outlive one
    young collection wait for a middle pass (every 70k allocations instead of 7k)."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], max(old[1], 100), max(old[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*old)


_DEFAULTS = {"data": "AAPL", "start": None, "end": None, "capital_base": 100_000, "data_frequency": None,
             "fill_model": "ohlc", "trail_reference": "high_low", "same_bar": "stop_first", "slippage": None,
             "commission": None, "symbols": None, "max_leverage": None, "check_lookahead": False}


def _is_default(name: str, value: Any) -> bool:
    default = _DEFAULTS[name]
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return False
    if isinstance(value, int | float) and isinstance(default, int | float):
        return value == default  # (100000.0 is the default capital too)
    return isinstance(value, str) and value == default


def _literal(value: Any, name: str) -> str:
    """``value`` as Python source for :meth:`Backtest.call_text`."""
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return repr(list(value))
    if isinstance(value, pd.Timestamp):
        return repr(str(value))
    if isinstance(value, SlippageModel | CommissionModel):
        return repr(value)
    return name  # a frame, dict, store or path object: the caller's own variable


def _check_strategy(strategy: Any, functions: dict[str, Any]) -> None:
    if strategy is None:
        if "initialize" not in functions and "handle_data" not in functions:
            raise TypeError("a backtest needs a TradingAlgorithm subclass (or instance), or "
                            "initialize=/handle_data= functions")
    elif functions:
        raise TypeError("pass either an algorithm class/instance or initialize=/handle_data= functions, not both")
    elif not (isinstance(strategy, TradingAlgorithm)
              or (isinstance(strategy, type) and issubclass(strategy, TradingAlgorithm))):
        raise TypeError(f"`algorithm` must be a TradingAlgorithm subclass or instance, got {strategy!r}")
    for name, func in functions.items():
        if not callable(func):
            raise TypeError(f"`{name}` must be a function ({name}(context{', data' if name != 'initialize' else ''})"
                            f"), got {func!r}")


def _check_capital(capital_base: Any) -> float:
    if isinstance(capital_base, bool) or not isinstance(capital_base, int | float) or not capital_base > 0 \
            or capital_base == float("inf"):
        raise ValueError(f"`capital_base` must be a positive number, got {capital_base!r}")
    return float(capital_base)


def _check_max_leverage(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
        raise ValueError(f"`max_leverage` must be a positive number (1.0: no borrowing; 2.0: positions up to twice "
                         f"the portfolio value) or None for no limit, got {value!r}")
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.{did_you_mean(str(value), choices)}")
    return value


def _check_model(name: str, model: Any, kind: type, example: str) -> Any:
    if model is not None and not isinstance(model, kind):
        raise TypeError(f"`{name}` must be a {kind.__name__} such as {example} (or None), got {model!r}")
    return model
