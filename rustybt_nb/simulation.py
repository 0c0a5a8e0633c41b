"""The event loop: one run of one algorithm over a bar store.

:mod:`rustybt_nb.backtest` wires a run (data, settings, the algorithm) and builds its
result; this module only simulates.

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

from typing import Any

import numpy as np

from .algorithm import Context, TradingAlgorithm, api_scope, explain_context_error
from .callbacks import Notifier
from .clock import Clock
from .data.bar_store import BarStore
from .errors import IndicatorError
from .finance.commission import CommissionModel, NoCommission
from .finance.ledger import Ledger, Positions
from .finance.order_book import OrderBook
from .finance.slippage import NoSlippage, SlippageModel
from .scheduling import Schedule

_NEVER = 1 << 62  # a bar after every bar (OrderBook.skip_to with nothing to wait for)


class Portfolio:
    """``context.portfolio``: cash and positions marked at the current bar's price.

    The positions' value is computed on first read at a bar and kept until the bar or
    the positions change (a fill), so a strategy that reads ``portfolio_value`` several
    times per bar (sizing each of its orders) pays once."""

    __slots__ = ("_data", "_ledger", "_prices", "_pv_bar", "_pv_fills", "_pv", "_sim", "positions")

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self._ledger = sim.ledger
        self._data = sim.data
        self._prices = [cols["price"] for cols in sim.data._mv]  # memoryviews: plain floats when indexed
        self._pv_bar, self._pv_fills, self._pv = -2, -1, 0.0
        self.positions: Positions = sim.ledger.positions  # the live dict (Position prices are current)

    @property
    def cash(self) -> float:
        return self._ledger.cash

    @property
    def starting_cash(self) -> float:
        return self._ledger.starting_cash

    capital_base = starting_cash

    @property
    def positions_value(self) -> float:
        positions = self._ledger.positions
        if not positions:
            return 0.0
        i = self._data._i
        fills = len(self._ledger.fills)
        if i == self._pv_bar and fills == self._pv_fills:
            return self._pv
        return self._mark(i, fills)

    def _mark(self, i: int, fills: int) -> float:
        """The positions' value at bar ``i`` (an asset without a price there: its last fill price)."""
        total = 0.0
        if i >= 0:
            prices = self._prices
            for asset, pos in self._ledger.positions.items():
                px = prices[asset.sid][i]
                total += pos.amount * (px if px == px else pos._fill_price)
        self._pv_bar, self._pv_fills, self._pv = i, fills, total
        return total

    @property
    def portfolio_value(self) -> float:
        ledger = self._ledger
        if not ledger.positions:
            return ledger.cash
        i = self._data._i
        fills = len(ledger.fills)
        if i == self._pv_bar and fills == self._pv_fills:
            return ledger.cash + self._pv
        if i < 0:
            return ledger.cash + self._mark(i, fills)
        total = 0.0  # (_mark, inlined: read on nearly every bar by strategies that size from the portfolio)
        prices = self._prices
        for asset, pos in ledger.positions.items():
            px = prices[asset.sid][i]
            total += pos.amount * (px if px == px else pos._fill_price)
        self._pv_bar, self._pv_fills, self._pv = i, fills, total
        return ledger.cash + total

    @property
    def pnl(self) -> float:
        return self.portfolio_value - self._ledger.starting_cash

    @property
    def returns(self) -> float:
        return self.portfolio_value / self._ledger.starting_cash - 1.0

    @property
    def positions_exposure(self) -> float:
        return self.positions_value

    def __repr__(self) -> str:
        return (f"Portfolio(cash={self.cash:.2f}, positions_value={self.positions_value:.2f}, "
                f"portfolio_value={self.portfolio_value:.2f}, positions={len(self._ledger.positions)})")


class Simulation:
    """One backtest run of one algorithm over a bar store."""

    def __init__(self, algo: TradingAlgorithm, store: BarStore, *, lo: int, hi: int, capital_base: float,
                 fill_model: str, trail_reference: str, same_bar: str,
                 slippage: SlippageModel | None = None, commission: CommissionModel | None = None,
                 settings: dict[str, Any] | None = None, max_leverage: float | None = None,
                 indicator_cache: Any = None) -> None:
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
                              slippage=slippage or NoSlippage(), commission=commission or NoCommission(),
                              max_leverage=max_leverage)
        self.schedule = Schedule()
        self.context = Context(algo)
        on_event, on_trade = algo._callback("on_order_event"), algo._callback("on_trade")
        self.notifier = Notifier(self.book, self.ledger, self.context, on_event, on_trade) \
            if on_event is not None or on_trade is not None else None
        self.portfolio = Portfolio(self)
        self.context.__dict__["portfolio"] = self.portfolio
        self.records: dict[int, dict[str, Any]] = {}
        self.indicators: list[Any] = []  # IndicatorSpec of each output, in the order declared
        self.indicator_cache = indicator_cache  # outputs shared with other runs of a sweep batch (or None)
        self._rec: tuple | None = None  # record's shortcut (see bind)
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
        """Merge ``values`` into the session's record (``values`` becomes that record when
        the session has none yet: the caller hands over a dict of its own). The bars of a
        run outside before_trading_start take a shortcut in ``TradingAlgorithm.record``."""
        bar = max(self.data._i + 1 if self._in_bts else self.data._i, self.lo)  # BTS belongs to the coming session
        session = int(self.clock.session_of_bar[min(bar, self.hi)])
        rec = self.records.get(session)
        if rec is None:
            self.records[session] = values
        else:
            rec.update(values)

    def bind(self) -> None:
        """Make this run the algorithm's: its API calls act on this simulation (and the
        per-bar shortcuts of :class:`TradingAlgorithm` point into it)."""
        algo = self.algo
        algo._sim = self
        algo._book = self.book
        algo._working = {a: self.book.working[a.sid] for a in self.store.assets}  # (the book's lists themselves)
        algo._rec = self._rec = (self.data, self.lo, self.hi, self.clock.session_of_bar.tolist(), self.records)

    def unbind(self) -> None:
        """The algorithm keeps no reference to this run (its API calls raise again)."""
        algo = self.algo
        algo._sim = None
        for name in ("_book", "_working", "_rec"):
            algo.__dict__.pop(name, None)  # (back to the class's missing-run defaults)

    def add_scheduled(self, func: Any, bars: np.ndarray) -> None:
        after = self.data._i if self._phase == "run" else self.lo - 1
        if self.notifier is not None:
            func = self.notifier.around(func)
        self.schedule.add(func, bars[(bars >= self.lo) & (bars <= self.hi)], after)
        self._sched_dirty = True
        self.book.skip_to = 0

    def add_indicator(self, func: Any, inputs: tuple[Any, ...], name: Any, asset: Any, kwargs: dict[str, Any],
                      plot: Any = None) -> Any:
        """``TradingAlgorithm.indicator`` (see :func:`rustybt_nb.indicators.declare`)."""
        from .indicators import declare

        if self._phase != "setup":
            raise IndicatorError("indicator() is called in initialize: the values are computed once, before the "
                                 "first bar")
        return declare(self, func, inputs, name, asset, kwargs, plot)

    def check_lookahead(self) -> None:
        """Raise :class:`~rustybt_nb.errors.LookAheadError` if an indicator's values change
        when later bars are removed (see :func:`rustybt_nb.indicators.check_run`)."""
        from .indicators import check_run

        check_run(self)

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
        self.bind()
        try:
            with api_scope(algo):
                data._i = self.lo - 1
                algo.initialize(ctx)
                if self.settings.get("check_lookahead"):
                    self.check_lookahead()
                if self.notifier is not None:
                    self.notifier.deliver()
                self._phase = "run"
                self.book.guard_fills()  # (the cost models are final now)
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
                if self.notifier is not None:  # (what the last bar's session end left)
                    self.notifier.deliver()
        except BaseException as exc:
            explain_context_error(exc, ctx)
            self.error = exc
            raise
        finally:
            self._phase = "done"
            self.last_bar = data._i
            self.book.close()  # the result is read from the book's records: they must not change any more

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
        if self.notifier is not None:  # (only then: a strategy without callbacks pays nothing)
            handle = self.notifier.around(handle)
            if bts is not None:
                bts = self.notifier.after(bts)
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
                algo._rec = None  # (records now belong to the coming session: record's slow path knows)
                bts(ctx, data)
                self._in_bts = False
                algo._rec = self._rec
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
