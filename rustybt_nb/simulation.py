"""The event loop and :func:`run_algorithm`.

For each bar, in this order (no look-ahead):

1. at the first bar of a session, ``before_trading_start`` runs, seeing data up to the
   previous bar;
2. the bar is revealed and working orders are matched against it
   (:class:`~rustybt_nb.finance.order_book.OrderBook`), then trailing stops move;
3. the portfolio is marked at the bar's close (lazily, when read);
4. scheduled functions due at this bar run, then ``handle_data``;
5. at the last bar of a session, DAY orders that could fill in it expire.

An order placed in step 1 or 4 is first matched on the next bar.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Any

import numpy as np
import pandas as pd

from .algorithm import Context, TradingAlgorithm, explain_context_error
from .clock import Clock
from .data.bar_store import BarStore
from .finance.commission import CommissionModel, NoCommission
from .finance.ledger import Ledger, Positions
from .finance.order_book import OrderBook
from .finance.slippage import NoSlippage, SlippageModel
from .scheduling import Schedule

_NEVER = 1 << 62  # a bar after every bar (OrderBook.skip_to with nothing to wait for)


class Portfolio:
    """``context.portfolio``: cash and positions marked at the current bar's price."""

    __slots__ = ("_sim", "positions")

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self.positions: Positions = sim.ledger.positions  # the live dict (Position prices are current)

    @property
    def cash(self) -> float:
        return self._sim.ledger.cash

    @property
    def starting_cash(self) -> float:
        return self._sim.ledger.starting_cash

    capital_base = starting_cash

    @property
    def positions_value(self) -> float:
        sim = self._sim
        bar = sim.bar
        if bar < 0:
            return 0.0
        prices = sim.book._prices
        total = 0.0
        for asset, pos in sim.ledger.positions.items():
            px = prices[asset.sid][bar]
            total += pos.amount * (px if px == px else pos._fill_price)
        return float(total)

    @property
    def portfolio_value(self) -> float:
        return self._sim.ledger.cash + self.positions_value

    @property
    def pnl(self) -> float:
        return self.portfolio_value - self._sim.ledger.starting_cash

    @property
    def returns(self) -> float:
        return self.portfolio_value / self._sim.ledger.starting_cash - 1.0

    @property
    def positions_exposure(self) -> float:
        return self.positions_value

    def __repr__(self) -> str:
        return (f"Portfolio(cash={self.cash:.2f}, positions_value={self.positions_value:.2f}, "
                f"portfolio_value={self.portfolio_value:.2f}, positions={len(self._sim.ledger.positions)})")


class Simulation:
    """One backtest run of one algorithm over a bar store."""

    def __init__(self, algo: TradingAlgorithm, store: BarStore, *, lo: int, hi: int, capital_base: float,
                 fill_model: str, trail_reference: str, same_bar: str,
                 slippage: SlippageModel | None = None, commission: CommissionModel | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        self.algo = algo
        self.store = store
        self.lo, self.hi = lo, hi
        self.clock = Clock(store)
        from .data.portal import BarData

        self.data = BarData(store, self.clock.session_of_bar, self.clock.session_first_bar,
                            self.clock.session_labels)
        self.ledger = Ledger(capital_base, mark_source=self.data)  # positions read prices at the current bar
        self.book = OrderBook(store, self.clock.session_of_bar, self.ledger, fill_model=fill_model,
                              trail_reference=trail_reference, same_bar=same_bar,
                              slippage=slippage or NoSlippage(), commission=commission or NoCommission())
        self.schedule = Schedule()
        self.context = Context(algo)
        self.portfolio = Portfolio(self)
        self.context.__dict__["portfolio"] = self.portfolio
        self.records: dict[int, dict[str, Any]] = {}
        self.logs: list[tuple[Any, str, str]] = self.book.log_sink  # strategy logs and engine warnings, in order
        self.settings = dict(settings or {})
        self._phase = "setup"
        self._in_bts = False
        self._sched_dirty = False
        self.error: BaseException | None = None
        self.last_bar = lo - 1

    # -------------------------------------------------------------- state
    @property
    def bar(self) -> int:
        """The bar the strategy is handling (orders placed now match from bar + 1)."""
        return self.data._i

    def current_dt(self) -> Any:
        i = self.data._i
        if self._in_bts or i < self.lo:
            nxt = min(i + 1, self.hi)
            return self.clock.session_labels[self.clock.session_of_bar[max(nxt, self.lo)]] \
                if self.store.frequency == "daily" else self.store.index[max(nxt, self.lo)]
        return self.store.timestamp(i)

    def add_log(self, level: str, message: str) -> None:
        self.logs.append((self.current_dt(), level, message))

    def record(self, values: dict[str, Any]) -> None:
        bar = max(self.data._i + 1 if self._in_bts else self.data._i, self.lo)  # BTS belongs to the coming session
        session = int(self.clock.session_of_bar[min(bar, self.hi)])
        self.records.setdefault(session, {}).update(values)

    def add_scheduled(self, func: Any, bars: np.ndarray) -> None:
        after = self.data._i if self._phase == "run" else self.lo - 1
        self.schedule.add(func, bars[(bars >= self.lo) & (bars <= self.hi)], after)
        self._sched_dirty = True
        self.book.skip_to = 0

    def set_model(self, kind: str, model: Any) -> None:
        if self._phase != "setup":
            raise RuntimeError(f"set_{kind} can only be called in initialize (the run has started)")
        setattr(self.book, kind, model)
        self.settings[kind] = repr(model)
        if kind == "slippage":
            self.settings["volume_limit"] = model.volume_limit

    # -------------------------------------------------------------- run
    def run(self, progress: Any = None) -> None:
        """Run every bar; ``progress(done, total)`` (optional) is called about 200 times."""
        __tracebackhide__ = True  # IPython shows the strategy's frames, not the engine's
        algo, ctx, data = self.algo, self.context, self.data
        from . import api

        api._push(algo)
        algo._sim = self
        try:
            data._i = self.lo - 1
            algo.initialize(ctx)
            self._phase = "run"
            if progress is None:
                self._loop(self.lo, self.hi + 1)
            else:
                total = self.hi - self.lo + 1
                step = max(1, total // 200)
                progress(0, total)
                for start in range(self.lo, self.hi + 1, step):
                    stop = min(start + step, self.hi + 1)
                    self._loop(start, stop)
                    progress(stop - self.lo, total)
        except BaseException as exc:
            explain_context_error(exc, ctx)
            self.error = exc
            raise
        finally:
            api._pop(algo)
            self._phase = "done"
            self.last_bar = data._i

    def _loop(self, start: int, stop: int) -> None:
        __tracebackhide__ = True
        algo, ctx, data, book, clock = self.algo, self.context, self.data, self.book, self.clock
        handle = algo.handle_data
        if type(algo).handle_data is TradingAlgorithm.handle_data and algo._funcs.get("handle_data") is None:
            handle = _no_handle_data  # (a call per bar on this rare path; no test per bar on the common one)
        bts = algo.before_trading_start  # a bound method: true (tested by truth value, the cheapest test)
        if type(algo).before_trading_start is TradingAlgorithm.before_trading_start \
                and algo._funcs.get("before_trading_start") is None:
            bts = None
        starts = clock.is_session_start if bts is not None else None
        ends = None  # clock.is_session_end, fetched when there are DAY orders to expire
        session_of_bar = clock.session_of_bar
        schedule = self.schedule
        next_sched = schedule.next_bar()
        self._sched_dirty = False
        for i in range(start, stop):
            if bts and starts[i]:
                data._i = i - 1
                self._in_bts = True
                bts(ctx, data)
                self._in_bts = False
            data._i = i
            if i >= book.skip_to:  # orders to match or functions scheduled at this bar (else nothing to do)
                # `ahead`: skip_to may now be past the next bar (the book looked ahead, or nothing is live)
                ahead = book.process_bar(i) if book.n_live else True
                if self._sched_dirty:
                    next_sched = schedule.next_bar()
                    self._sched_dirty = False
                if i == next_sched:
                    for func in schedule.pop(i):
                        func(ctx, data)
                    next_sched = schedule.next_bar()
                if ahead:  # (else the orders need the next bar anyway: skip_to <= i)
                    # the next bar with work; read after the scheduled functions, whose events
                    # (skip_to = 0) and schedule calls count
                    wake = (book.skip_to if book.n_live else _NEVER) if not self._sched_dirty else 0
                    book.skip_to = next_sched if i < next_sched < wake else wake
            handle(ctx, data)
            if book._day_orders:
                if ends is None:
                    ends = clock.is_session_end
                if ends[i]:
                    book.end_session(int(session_of_bar[i]), i)


def _no_handle_data(context: Any, data: Any) -> None:
    """``handle_data`` of a strategy that defines none (scheduled functions only)."""


def run_algorithm(
    algorithm: Any = None,
    *,
    initialize: Any = None,
    handle_data: Any = None,
    before_trading_start: Any = None,
    analyze: Any = None,
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
    progress: Any = None,
    **params: Any,
):
    """Run a backtest and return a :class:`~rustybt_nb.results.BacktestResult`.

    ``algorithm`` is a :class:`TradingAlgorithm` subclass or instance; or pass Zipline
    style ``initialize=`` / ``handle_data=`` functions. ``data`` is a bar store, a
    DataFrame, a ``{symbol: DataFrame}`` dict, a CSV/Parquet path or a sample name
    (default ``'AAPL'``). ``start``/``end`` limit the simulated bars; ``data.history``
    can still see earlier bars. ``data_frequency`` defaults to the data's own.
    Defaults cost nothing: no slippage, no commission (set them here or with
    ``set_slippage``/``set_commission`` in ``initialize``). Other keyword arguments are
    strategy parameters (``self.params``).

    ``progress(done_bars, total_bars)``, if given, is called about 200 times during the
    run (the notebook layer draws a progress bar with it).

    If the strategy raises, the exception propagates with the partial result attached
    as ``exc.partial_result``.
    """
    __tracebackhide__ = True
    from .data.loaders import as_bar_store
    from .results import build_result

    algo = _make_algorithm(algorithm, initialize, handle_data, before_trading_start, analyze, params)
    if data_frequency not in (None, "daily", "minute"):
        raise ValueError(f"`data_frequency` must be 'daily' or 'minute', got {data_frequency!r}")
    _check_capital(capital_base)
    store = as_bar_store(data, frequency=data_frequency)
    if data_frequency is not None and store.frequency != data_frequency:
        raise ValueError(
            f"`data_frequency={data_frequency!r}` but the data has {store.frequency} bars; pass "
            f"data_frequency={store.frequency!r} (or load {data_frequency} data)"
        )
    lo, hi = _bar_range(store, start, end)
    settings = {
        "algorithm": type(algo).__name__ if type(algo) is not TradingAlgorithm else "functions",
        "data": repr(store), "symbols": store.symbols, "frequency": store.frequency,
        "calendar": store.calendar, "start": store.index[lo], "end": store.index[hi],
        "capital_base": float(capital_base), "fill_model": fill_model, "trail_reference": trail_reference,
        "same_bar": same_bar, "slippage": repr(slippage or NoSlippage()),
        "commission": repr(commission or NoCommission()), "params": dict(algo.params),
        "volume_limit": (slippage or NoSlippage()).volume_limit,
        "synthetic": bool(store.meta.get("synthetic", False)),
    }
    sim = Simulation(algo, store, lo=lo, hi=hi, capital_base=capital_base, fill_model=fill_model,
                     trail_reference=trail_reference, same_bar=same_bar, slippage=slippage,
                     commission=commission, settings=settings)
    t0 = time.perf_counter()
    with _fewer_full_collections():
        try:
            sim.run(progress)
        except Exception as exc:
            with contextlib.suppress(Exception):  # never hide the user's error behind ours
                exc.partial_result = build_result(sim, time.perf_counter() - t0)  # type: ignore[attr-defined]
            raise
        result = build_result(sim, time.perf_counter() - t0)
    algo._sim = sim
    sim._phase = "analyze"
    try:
        algo.analyze(sim.context, result)
    except AttributeError as exc:
        explain_context_error(exc, sim.context)
        raise
    finally:
        algo._sim = None
    return result


@contextlib.contextmanager
def _fewer_full_collections():
    """Run with Python's middle-generation collections 10x and its oldest-generation
    collections 100x rarer (restored after).

    A backtest keeps every order and event alive until the end, so the garbage
    collector's full passes would traverse a growing heap again and again (a third of
    the run time of order-heavy strategies), and its middle-generation passes walk each
    order and event a second time (S1 on 100k bars: 3 passes, 2.5 ms). The youngest
    generation is still collected every 700 allocations, so cyclic garbage that a
    strategy creates and drops within a bar is freed promptly; cycles that outlive one
    young collection wait for a middle pass, which comes every 70k allocations instead
    of 7k."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], max(old[1], 100), max(old[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _make_algorithm(algorithm: Any, initialize: Any, handle_data: Any, before_trading_start: Any, analyze: Any,
                    params: dict[str, Any]) -> TradingAlgorithm:
    funcs = {"initialize": initialize, "handle_data": handle_data,
             "before_trading_start": before_trading_start, "analyze": analyze}
    if algorithm is None:
        if initialize is None and handle_data is None:
            raise TypeError("run_algorithm needs a TradingAlgorithm subclass (or instance), or "
                            "initialize=/handle_data= functions")
        return TradingAlgorithm(**funcs, **params)
    if any(f is not None for f in funcs.values()):
        raise TypeError("pass either an algorithm class/instance or initialize=/handle_data= functions, not both")
    if isinstance(algorithm, type) and issubclass(algorithm, TradingAlgorithm):
        algo = algorithm.__new__(algorithm)
        TradingAlgorithm.__init__(algo, **params)  # a custom __init__ already sees the parameters
        if algorithm.__init__ is not TradingAlgorithm.__init__:
            algorithm.__init__(algo)
        _ensure_base(algo)
        algo._set_params(params)
        return algo
    if isinstance(algorithm, TradingAlgorithm):
        _ensure_base(algorithm)
        if params:
            algorithm._set_params({**algorithm.params, **params})
        return algorithm
    raise TypeError(f"`algorithm` must be a TradingAlgorithm subclass or instance, got {algorithm!r}")


def _ensure_base(algo: TradingAlgorithm) -> None:
    """Give an algorithm whose own ``__init__`` skipped ``super().__init__()`` the base state."""
    from .algorithm import Params, _AlgoLog

    if not hasattr(algo, "_funcs"):
        algo._funcs = {}
    if not isinstance(algo.__dict__.get("params"), Params):
        algo._set_params({})
    if not isinstance(getattr(algo, "log", None), _AlgoLog):
        algo.log = _AlgoLog(algo)
    algo._sim = None


def _check_capital(capital_base: Any) -> None:
    if isinstance(capital_base, bool) or not isinstance(capital_base, (int, float)) or not capital_base > 0 \
            or capital_base != capital_base or capital_base == float("inf"):
        raise ValueError(f"`capital_base` must be a positive number, got {capital_base!r}")


def _bar_range(store: BarStore, start: Any, end: Any) -> tuple[int, int]:
    idx = store.index
    lo, hi = 0, len(idx) - 1
    if start is not None:
        ts = _align(start, idx)
        lo = int(idx.searchsorted(ts, side="left"))
    if end is not None:
        ts = _align(end, idx)
        if store.frequency == "minute" and isinstance(end, str) and len(end.strip()) <= 10:
            ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        hi = int(idx.searchsorted(ts, side="right")) - 1
    if lo > hi or lo >= len(idx) or hi < 0:
        raise ValueError(f"`start`={start!r}, `end`={end!r} select no bars; the data runs from {idx[0]} to {idx[-1]}")
    return lo, hi


def _align(value: Any, idx: pd.DatetimeIndex) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if idx.tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize("America/New_York").tz_convert(idx.tz) if len(str(value)) > 10 else \
            ts.tz_localize(idx.tz)
    elif idx.tz is None and ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts
