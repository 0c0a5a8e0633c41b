"""``TradingAlgorithm``: the strategy base class and the API a running strategy uses.

Write a strategy as a subclass::

    class MyStrategy(TradingAlgorithm):
        def initialize(self, context):
            context.asset = self.symbol("AAPL")

        def handle_data(self, context, data):
            if context.portfolio.positions[context.asset].amount == 0:
                self.order(context.asset, 100)

or as Zipline free functions (``initialize(context)``, ``handle_data(context, data)``)
passed to :func:`rustybt_nb.run_algorithm`, using :mod:`rustybt_nb.api`.

Orders placed while handling bar *t* are first matched on bar *t + 1*. ``order()``
returns an :class:`OrderTicket`: the order id (an ``int`` that compares and hashes as
the id) that also reads the order's live attributes (``ticket.status``) and links OCO
siblings (``ticket.add_oco_sibling(other)``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Protocol

from .assets import Asset
from .errors import AlgorithmError, SymbolNotFound, did_you_mean
from .finance.commission import CommissionModel
from .finance.execution import (
    MAX_SHARES,
    ExecutionStyle,
    LimitOrder,
    MarketOrder,
    StopLimitOrder,
    StopOrder,
    _check_tif,
    check_amount,
    shown,
    too_many_shares,
)
from .finance.order import Order
from .finance.slippage import SlippageModel
from .scheduling import DateRule, EveryDay, TimeRule, date_rules, fire_bars, time_rules

_pylog = logging.getLogger("rustybt_nb.algorithm")


class RunningBacktest(Protocol):
    """What the algorithm's API calls use of the simulation running it
    (:class:`rustybt_nb.simulation.Simulation`; named here so this module does not import it)."""

    store: Any  # the BarStore
    book: Any  # the OrderBook
    clock: Any
    data: Any  # the BarData the strategy reads
    context: Context
    portfolio: Any

    @property
    def bar(self) -> int: ...
    def current_dt(self) -> Any: ...
    def add_log(self, level: str, message: str) -> None: ...
    def record(self, values: dict[str, Any]) -> None: ...
    def add_scheduled(self, func: Any, bars: Any) -> None: ...
    def set_model(self, kind: str, model: Any) -> None: ...


# The algorithms whose run is under way, innermost last: what the free functions of
# rustybt_nb.api call (Zipline keeps the same stack for its API).
_API_STACK: list[TradingAlgorithm] = []


@contextmanager
def api_scope(algo: TradingAlgorithm) -> Iterator[None]:
    """Make ``algo`` the algorithm that :mod:`rustybt_nb.api`'s free functions call, for the
    duration of the block (nested runs restore the outer one)."""
    _API_STACK.append(algo)
    try:
        yield
    finally:
        if _API_STACK and _API_STACK[-1] is algo:
            _API_STACK.pop()


def get_algorithm() -> TradingAlgorithm:
    """The algorithm whose backtest is running now."""
    if not _API_STACK:
        raise AlgorithmError(
            "rustybt_nb.api functions work only while a backtest runs: call them from initialize/handle_data/"
            "scheduled functions of a strategy passed to run_algorithm(...) or a %%backtest cell"
        )
    return _API_STACK[-1]


class Param:
    """A strategy parameter declared with the range a tweak control offers::

        class Crossover(TradingAlgorithm):
            params = {"fast": Param(10, 2, 50, 1, "fast moving-average window"),
                      "mode": Param("long", options=["long", "short"]),
                      "slow": 30}                       # a plain default works too

    The strategy reads the value (``self.params.fast`` is 10 unless a run sets it).
    ``low``/``high``/``step`` bound a numeric slider, ``options`` make a dropdown, ``doc``
    is the control's tooltip; a run may still set any value."""

    __slots__ = ("default", "doc", "high", "low", "options", "step")

    def __init__(self, default: Any, low: float | None = None, high: float | None = None,
                 step: float | None = None, doc: str = "", *, options: Any = None) -> None:
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        if (low is not None or high is not None or step is not None) and not numeric:
            raise TypeError(f"Param: `low`/`high`/`step` bound a number, but the default is {default!r}; "
                            "use options=[...] for a choice")
        if low is not None and high is not None and not low <= high:
            raise ValueError(f"Param: `low`={low!r} is above `high`={high!r}")
        if numeric and ((low is not None and default < low) or (high is not None and default > high)):
            raise ValueError(f"Param: the default {default!r} is outside [{low!r}, {high!r}]")
        if step is not None and not step > 0:
            raise ValueError(f"Param: `step` must be > 0, got {step!r}")
        if options is not None:
            options = list(options)
            if default not in options:
                raise ValueError(f"Param: the default {default!r} is not one of the options {options!r}")
        self.default, self.low, self.high, self.step, self.doc, self.options = default, low, high, step, doc, options

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in ("low", "high", "step", "doc", "options")
                        if getattr(self, k) not in (None, ""))
        return f"Param({self.default!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def declared_params(strategy: Any) -> dict[str, Any]:
    """The parameters a strategy class (or instance's class) declares, as default values
    (a :class:`Param` stands for its ``default``)."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return {k: (v.default if isinstance(v, Param) else v) for k, v in (getattr(cls, "params", None) or {}).items()}


class Params(dict):
    """Strategy parameters: a dict whose keys also read as attributes (``params.window``).

    The string keys are mirrored in the instance's own ``__dict__``, so an attribute read
    finds them directly instead of failing over to ``__getattr__``: strategies read their
    parameters on every bar. Every mutating dict method re-mirrors. Keys named like a dict
    method (``items``, ``get``...) read only by subscript; ``__getattr__`` still answers
    names that are not parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mirror()

    def _mirror(self) -> None:
        names = self.__dict__
        names.clear()
        names.update((k, v) for k, v in self.items() if isinstance(k, str) and not hasattr(dict, k))

    def __setattr__(self, name: str, value: Any) -> None:  # params.x = v sets the parameter
        self[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            names = sorted(k for k in self if isinstance(k, str))
            raise AttributeError(f"no parameter {name!r}; parameters are {names}.{did_you_mean(name, names)}") from None


def _remirroring(name: str) -> Any:
    base = getattr(dict, name)

    def method(self: Params, *args: Any, **kwargs: Any) -> Any:
        out = base(self, *args, **kwargs)
        self._mirror()
        return out

    method.__name__, method.__qualname__ = name, f"Params.{name}"
    method.__doc__ = base.__doc__
    return method


# every dict method that changes the contents, followed by the mirror's refresh
for _name in ("__setitem__", "__delitem__", "__ior__", "update", "setdefault", "pop", "popitem", "clear"):
    setattr(Params, _name, _remirroring(_name))
del _name


class OrderTicket(int):
    """What ``order()`` returns: the order id, with the order's attributes readable
    (``ticket.status``, ``ticket.filled``) and ``add_oco_sibling``."""

    def __new__(cls, order: Order, algo: TradingAlgorithm) -> OrderTicket:
        obj = int.__new__(cls, order.id)
        obj._order = order
        obj._algo = algo
        return obj

    @property
    def order(self) -> Order:
        return self._order

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._order, name)

    def add_oco_sibling(self, *others: Any) -> bool:
        """Link this order and ``others`` one-cancels-other."""
        return self._algo.link_oco(self, *others)

    def cancel(self) -> bool:
        return self._algo.cancel_order(self)

    def __repr__(self) -> str:
        return int.__repr__(self)

    __str__ = __repr__


def _order_view(name: str) -> property:
    def refuse(ticket: OrderTicket, value: Any) -> None:
        raise AttributeError(f"`ticket.{name}` is a read-only view of order {int(ticket)}; change a live order "
                             f"with modify_order(ticket, ...) or cancel it with cancel_order(ticket)")

    return property(attrgetter(f"_order.{name}"), refuse, doc=f"The order's ``{name}`` (read-only here).")


# The order's fields and views as C-level getters on the ticket, so ``ticket.status`` is not
# a failed lookup followed by ``__getattr__`` (which still answers the rest).
for _name in (*Order.__slots__, *(k for k, v in vars(Order).items() if isinstance(v, property))):
    if not _name.startswith("_") and not hasattr(OrderTicket, _name):
        setattr(OrderTicket, _name, _order_view(_name))
del _name


class _AlgoLog:
    """``self.log``: records carry the simulation time and are kept in the results."""

    def __init__(self, algo: TradingAlgorithm) -> None:
        self._algo = algo

    def _emit(self, level: str, msg: Any, *args: Any) -> None:
        text = str(msg) % args if args else str(msg)
        self._algo._sim_required().add_log(level, text)
        _pylog.log(getattr(logging, level), text)

    def debug(self, msg: Any, *args: Any) -> None:
        self._emit("DEBUG", msg, *args)

    def info(self, msg: Any, *args: Any) -> None:
        self._emit("INFO", msg, *args)

    def notice(self, msg: Any, *args: Any) -> None:
        self._emit("INFO", msg, *args)

    def warning(self, msg: Any, *args: Any) -> None:
        self._emit("WARNING", msg, *args)

    warn = warning

    def error(self, msg: Any, *args: Any) -> None:
        self._emit("ERROR", msg, *args)

    def exception(self, msg: Any, *args: Any) -> None:
        self._emit("ERROR", msg, *args)


class Context:
    """The per-run namespace for user state (``context.asset = ...``). It also exposes
    the algorithm's API (``context.order(...)``, ``context.portfolio``), so helper
    functions that take ``context`` work; those names cannot be assigned.

    The API names are read-only descriptors on the class (installed below), so user
    attributes are plain instance attributes: no Python-level ``__setattr__`` runs when
    a strategy stores its state on every bar.
    """

    def __init__(self, algo: TradingAlgorithm) -> None:
        self.__dict__["_algo"] = algo
        self.__dict__["portfolio"] = None  # set by the simulation; read-only (see _ReadOnlyValue)

    # No ``__getattr__`` here on purpose: defining one sends every ``context.x`` read down
    # Python's slow generic attribute path, and strategies read context on every bar.
    # A missing attribute is explained by :func:`explain_context_error` instead.

    def __repr__(self) -> str:
        return f"Context({_user_state(self)})"


def _user_state(context: Context) -> dict[str, Any]:
    return {k: v for k, v in context.__dict__.items() if not k.startswith("_") and k not in API_NAMES}


def explain_context_error(exc: BaseException, context: Context) -> None:
    """If ``exc`` is an ``AttributeError`` raised by reading a ``context`` attribute that
    was never set, attach a note saying how to set it (and the closest names set)."""
    if not isinstance(exc, AttributeError) or getattr(exc, "obj", None) is not context:
        return
    name = exc.name
    if not isinstance(name, str) or name in context.__dict__ or name.startswith("__"):
        return
    exc.add_note(
        f"context has no attribute {name!r}; set it first (e.g. in initialize: context.{name} = ...)."
        f"{did_you_mean(name, list(_user_state(context)))}"
    )


def _refuse(name: str):
    def setter(self: Context, value: Any) -> None:
        raise AttributeError(
            f"`context.{name}` is part of the algorithm API and cannot be assigned; "
            f"store your value under another name, e.g. context.my_{name} = ..."
        )

    return setter


class _ReadOnlyValue:
    """``context.portfolio``: the value lives in the context's own ``__dict__`` (so reading
    it, on nearly every bar of most strategies, is a plain instance-dict read rather than a
    property call); this class attribute only refuses assignment. A descriptor
    with ``__set__`` but no ``__get__`` lets the instance dict answer reads."""

    def __init__(self, name: str) -> None:
        self._refuse = _refuse(name)

    def __set__(self, obj: Context, value: Any) -> None:
        self._refuse(obj, value)

    def __delete__(self, obj: Context) -> None:
        self._refuse(obj, None)


def _forward(name: str):
    def getter(self: Context) -> Any:
        return getattr(self.__dict__["_algo"], name)

    return getter


class TradingAlgorithm:
    """Base class of strategies (see the module docstring).

    Class attribute ``params`` holds default parameters; ``run_algorithm(..., key=value)``
    overrides them and the strategy reads ``self.params.key`` (or ``context.params``).
    """

    params: dict[str, Any] = {}
    date_rules = date_rules
    time_rules = time_rules
    # Per-run shortcuts for the calls a strategy makes on every bar, set by the simulation
    # when the run starts (Simulation.bind): the book's live-order list of each asset, the
    # book, and for ``record`` the run's ``data``, first and last bar, the session of each
    # bar and the run's records (None while before_trading_start runs). These defaults
    # make every shortcut miss outside a run (the slow paths then raise the "needs a
    # running backtest" error).
    _working: dict[Any, list] = {}
    _book: Any = None
    _rec: tuple[Any, int, int, list[int], dict[int, dict[str, Any]]] | None = None

    def __init__(self, *, initialize: Any = None, handle_data: Any = None, before_trading_start: Any = None,
                 analyze: Any = None, on_order_event: Any = None, on_trade: Any = None, **params: Any) -> None:
        self._funcs = {"initialize": initialize, "handle_data": handle_data,
                       "before_trading_start": before_trading_start, "analyze": analyze,
                       "on_order_event": on_order_event, "on_trade": on_trade}
        self._set_params(params)
        self._sim: RunningBacktest | None = None
        self.log = _AlgoLog(self)

    def _set_params(self, params: dict[str, Any]) -> None:
        check_param_names(type(self), params)
        self.params = Params({**declared_params(self), **params})

    # --------------------------------------------------------- user hooks
    def initialize(self, context: Context) -> None:
        f = self._funcs.get("initialize")
        if f is not None:
            f(context)

    def handle_data(self, context: Context, data: Any) -> None:
        f = self._funcs.get("handle_data")
        if f is not None:
            f(context, data)

    def before_trading_start(self, context: Context, data: Any) -> None:
        f = self._funcs.get("before_trading_start")
        if f is not None:
            f(context, data)

    def analyze(self, context: Context, results: Any) -> None:
        f = self._funcs.get("analyze")
        if f is not None:
            f(context, results)

    def on_order_event(self, context: Context, event: Any) -> None:
        """Called with every order event (:class:`rustybt_nb.callbacks.OrderUpdate`), once
        each, in the order of ``result.order_events`` (see :mod:`rustybt_nb.callbacks` for
        when). Define it to react to fills as they happen."""
        f = self._funcs.get("on_order_event")
        if f is not None:
            f(context, event)

    def on_trade(self, context: Context, trade: Any) -> None:
        """Called when a round trip closes (:class:`rustybt_nb.callbacks.ClosedTrade`)."""
        f = self._funcs.get("on_trade")
        if f is not None:
            f(context, trade)

    def _callback(self, name: str) -> Any:
        """The bound callback ``name`` when the strategy defines it (a method or a function),
        else None: a strategy that defines none is not called, and pays nothing."""
        if getattr(type(self), name) is not getattr(TradingAlgorithm, name) or self._funcs.get(name) is not None:
            return getattr(self, name)
        return None

    # --------------------------------------------------------- internals
    def _sim_required(self) -> RunningBacktest:
        sim = getattr(self, "_sim", None)
        if sim is None:
            raise AlgorithmError(
                "this API call needs a running backtest; call it from initialize/handle_data/scheduled "
                "functions of a strategy run with run_algorithm(...) or %%backtest"
            )
        return sim

    def _asset(self, asset: Any) -> tuple[Asset, str | None]:
        """(asset, None), or (a placeholder asset with sid -1, rejection reason) for a
        symbol that is not in the data."""
        store = self._sim_required().store
        if type(asset) is Asset:  # the common case: an asset of this run's data
            known = store._by_symbol.get(asset)
            if known is not None:
                return known, None
        if isinstance(asset, OrderTicket):
            asset = asset.asset
        if isinstance(asset, (Asset, str)):
            if store.has(asset):
                return store.lookup(asset), None
            sym = asset.symbol if isinstance(asset, Asset) else asset
            return Asset(sym, -1), (f"unknown asset {sym!r}: not in the backtest data {store.symbols}."
                                    f"{did_you_mean(sym, store.symbols)}")
        raise TypeError(f"`asset` must be an asset from symbol('...') (or a symbol string), got {asset!r} "
                        f"({type(asset).__name__})")

    # ======================================================== lookup
    def symbol(self, symbol_str: str) -> Asset:
        """The asset for ``symbol_str``; an unknown symbol raises with near matches."""
        if not isinstance(symbol_str, str):
            raise TypeError(f"`symbol_str` must be a str such as 'AAPL', got {symbol_str!r}")
        return self._sim_required().store.lookup(symbol_str)

    def symbols(self, *symbol_strs: str) -> list[Asset]:
        return [self.symbol(s) for s in symbol_strs]

    def sid(self, sid: int) -> Asset:
        assets = self._sim_required().store.assets
        if not 0 <= sid < len(assets):
            raise SymbolNotFound(f"no asset with sid {sid}; sids run from 0 to {len(assets) - 1}")
        return assets[sid]

    # ======================================================== orders
    def order(self, asset: Any, amount: float, limit_price: float | None = None, stop_price: float | None = None,
              style: ExecutionStyle | None = None, *, time_in_force: str | None = None, good_till: Any = None,
              tag: str | None = None) -> OrderTicket | None:
        """Place an order for ``amount`` shares (negative to sell); returns its ticket
        (the order id), or None when the amount rounds to 0.

        ``limit_price``/``stop_price`` are shortcuts for Limit/Stop/StopLimit styles.
        ``time_in_force`` ('GTC', 'DAY', 'GTD' + ``good_till``) overrides the style's.
        Malformed calls raise ValueError/TypeError; orders that cannot stand (unknown
        asset, invalid bracket, ...) come back ``rejected`` with a reason.
        """
        try:
            sim = self._sim
        except AttributeError:  # (an __init__ that skipped super().__init__(), outside a run)
            sim = None
        if sim is None:
            sim = self._sim_required()
        if type(amount) is not int or not -_EXACT < amount < _EXACT:  # (an int needs no conversion)
            amount = _check_amount(amount)
            if not -MAX_SHARES <= amount <= MAX_SHARES:  # well formed, but not a share count float64 books exactly
                return self._order_rejected(asset, amount, limit_price, stop_price, style, time_in_force, good_till,
                                            tag, too_many_shares(amount))
        if style is None and limit_price is None and stop_price is None:
            style = _MARKET
        else:
            style = _resolve_style(limit_price, stop_price, style)
        if time_in_force is not None or good_till is not None:
            import copy

            style = copy.copy(style)
            style.time_in_force, style.good_till = _check_tif(time_in_force or "GTD", good_till)
        if amount == 0:
            return None
        a = sim.store._by_symbol.get(asset) if type(asset) is Asset else None  # (_asset's common case, inline)
        if a is not None:
            order = sim.book.submit(a, amount, style, sim.data._i, tag=tag)
        else:
            a, unknown = self._asset(asset)
            order = sim.book.submit(a, amount, style, sim.data._i, tag=tag, unknown=unknown)
        return OrderTicket(order, self)

    def _order_rejected(self, asset: Any, amount: int, limit_price: Any, stop_price: Any, style: Any,
                        time_in_force: Any, good_till: Any, tag: Any, why: str) -> OrderTicket:
        """``order(...)`` of a well-formed order that cannot stand: placed as ``rejected``
        with ``why`` (the arguments are checked as order() checks them)."""
        sim = self._sim_required()
        style = _resolve_style(limit_price, stop_price, style)
        if time_in_force is not None or good_till is not None:
            import copy

            style = copy.copy(style)
            style.time_in_force, style.good_till = _check_tif(time_in_force or "GTD", good_till)
        a, unknown = self._asset(asset)
        return OrderTicket(sim.book.submit(a, amount, style, sim.data._i, tag=tag, unknown=unknown or why), self)

    def _price(self, asset: Asset) -> float:
        sim = self._sim_required()
        return sim.book.last_price(asset, sim.bar)

    def _value_to_amount(self, asset: Any, value: float) -> tuple[Any, float]:
        """(asset, shares worth ``value`` at the last price); the shares are NaN for an
        unknown asset or an asset without a price yet, and may be infinite (a value far
        beyond the price): :meth:`_order_computed` rejects those with the reason."""
        a, unknown = self._asset(asset)
        if unknown:
            return a, math.nan  # rejected with the unknown-asset reason by _order_computed
        px = self._price(a)
        if px != px:
            return a, math.nan
        return a, value / px

    def order_value(self, asset: Any, value: float, limit_price: float | None = None,
                    stop_price: float | None = None, style: ExecutionStyle | None = None,
                    **kw: Any) -> OrderTicket | None:
        """Order ``value`` dollars' worth (shares = value / last price, toward zero)."""
        _check_number("value", value)
        a, amount = self._value_to_amount(asset, value)
        return self._order_computed(a, amount, limit_price, stop_price, style, **kw)

    def order_percent(self, asset: Any, percent: float, limit_price: float | None = None,
                      stop_price: float | None = None, style: ExecutionStyle | None = None,
                      **kw: Any) -> OrderTicket | None:
        """Order ``percent`` (a fraction: 0.1 = 10 %) of the portfolio value."""
        _check_number("percent", percent)
        a, amount = self._value_to_amount(asset, self.portfolio.portfolio_value * percent)
        return self._order_computed(a, amount, limit_price, stop_price, style, **kw)

    def order_target(self, asset: Any, target: float, limit_price: float | None = None,
                     stop_price: float | None = None, style: ExecutionStyle | None = None,
                     **kw: Any) -> OrderTicket | None:
        """Order the difference between ``target`` shares and the current position
        (open orders are not counted, as in Zipline)."""
        if type(target) is not int and type(target) is not float:
            _check_number("target", target)
        elif target - target != 0:
            _check_number("target", target)  # (raises: NaN or infinite)
        a, unknown = self._asset(asset)
        held = self.portfolio.positions[a].amount if not unknown else 0
        if kw:
            return self._order_computed(a, target - held, limit_price, stop_price, style, **kw)
        return self._order_computed(a, target - held, limit_price, stop_price, style)

    def order_target_value(self, asset: Any, target: float, limit_price: float | None = None,
                           stop_price: float | None = None, style: ExecutionStyle | None = None,
                           **kw: Any) -> OrderTicket | None:
        """Order up or down to a position worth ``target`` dollars."""
        _check_number("target", target)
        return self._order_target_value(asset, target, limit_price, stop_price, style, **kw)

    def _order_target_value(self, asset: Any, target: float, limit_price: Any, stop_price: Any, style: Any,
                            **kw: Any) -> OrderTicket | None:
        a, shares = self._value_to_amount(asset, target)
        if not isinstance(a, Asset):
            return self._order_computed(a, shares, limit_price, stop_price, style, **kw)
        held = self.portfolio.positions[a].amount
        return self._order_computed(a, shares - held if shares == shares else shares, limit_price, stop_price,
                                    style, **kw)

    def order_target_percent(self, asset: Any, target: float, limit_price: float | None = None,
                             stop_price: float | None = None, style: ExecutionStyle | None = None,
                             **kw: Any) -> OrderTicket | None:
        """Order up or down to a position worth ``target`` (a fraction) of the portfolio."""
        _check_number("target", target)
        return self._order_target_value(asset, self.portfolio.portfolio_value * target, limit_price, stop_price,
                                        style, **kw)

    def _order_computed(self, asset: Any, amount: float, limit_price: Any, stop_price: Any, style: Any,
                        **kw: Any) -> OrderTicket | None:
        if amount - amount != 0:  # NaN or infinite: rejected with the reason
            sim = self._sim_required()
            a, unknown = self._asset(asset)
            style = _resolve_style(limit_price, stop_price, style)
            if unknown or (amount != amount and self._price(a) != self._price(a)):
                why = unknown or f"no price for {a.symbol} yet to size the order"
            else:
                why = (f"the order's size works out to {amount:g} shares, not a finite number (the value or "
                       f"percent is far too large for the price {self._price(a):g} and the portfolio value)")
            return OrderTicket(sim.book.submit(a, 1, style, sim.bar, tag=kw.get("tag"), unknown=why), self)
        if kw:
            return self.order(asset, int(amount), limit_price, stop_price, style, **kw)
        return self.order(asset, int(amount), limit_price, stop_price, style)

    def get_open_orders(self, asset: Any = None) -> dict:
        """``get_open_orders(asset)`` -> {order_id: Order};
        ``get_open_orders()`` -> {asset: {order_id: Order}} for assets with open orders."""
        if asset is None:
            book = self._book
            if book is not None and not book.n_live:
                return {}
            return self._open_orders_slow(None)
        try:  # an asset of this run (or its symbol): the book's list of its live orders
            working = self._working[asset]
        except (KeyError, TypeError):
            return self._open_orders_slow(asset)
        return {o.id: o for o in working} if working else {}

    def _open_orders_slow(self, asset: Any) -> dict:
        sim = self._sim_required()
        if asset is None:
            out: dict[Asset, dict[int, Order]] = {}
            for o in sim.book.open_orders():
                out.setdefault(o.asset, {})[o.id] = o
            return out
        a, unknown = self._asset(asset)
        if unknown:
            return {}
        return {o.id: o for o in sim.book.working[a.sid]}

    def get_order(self, order_id: Any) -> Order | None:
        """The order with this id (or ticket), open or closed; None if unknown."""
        sim = self._sim_required()
        if isinstance(order_id, Order):
            return order_id
        return sim.book.orders.get(_order_id(order_id, "get_order: `order_id`"))

    def cancel_order(self, order_param: Any) -> bool:
        """Cancel an order (object, ticket or id) now; it cannot fill afterwards, even on
        the next bar. Returns False if it was already closed."""
        sim = self._sim_required()
        order = self._resolve_order(order_param, "cancel_order")
        return sim.book.cancel(order, sim.bar)

    def modify_order(self, order_param: Any, amount: float | None = None, limit_price: float | None = None,
                     stop_price: float | None = None, trail_amount: float | None = None,
                     trail_percent: float | None = None) -> bool:
        """Change a live order's amount, limit, stop or trail from the next bar on (the
        id stays the same; an ``updated`` event records it). Refusals (closed order,
        amount below what has filled, a change that would invalidate a bracket) leave
        the order as it was, are logged as warnings and return False."""
        sim = self._sim_required()
        order = self._resolve_order(order_param, "modify_order")
        return sim.book.modify(order, sim.bar, amount=amount, limit_price=limit_price, stop_price=stop_price,
                               trail_amount=trail_amount, trail_percent=trail_percent)

    def link_oco(self, *orders: Any) -> bool:
        """Link placed orders one-cancels-other."""
        sim = self._sim_required()
        objs = [self._resolve_order(o, "link_oco") for o in orders]
        if len(objs) < 2:
            raise ValueError("link_oco needs at least two orders")
        ids = [o.id for o in objs]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"link_oco: order(s) {twice} given more than once (`orders`={ids}); an order cannot "
                             "be one-cancels-other with itself: link two or more different orders")
        return sim.book.contingency.link_oco(objs, sim.bar)

    def _resolve_order(self, param: Any, fn: str) -> Order:
        sim = self._sim_required()
        if isinstance(param, Order):
            return param
        oid = _order_id(param, f"{fn}: `{'orders' if fn == 'link_oco' else 'order_param'}`")
        order = sim.book.orders.get(oid)
        if order is None:
            raise ValueError(f"{fn}: no order with id {shown(param)}; pass the value order() returned or an Order")
        return order

    # ======================================================== state
    @property
    def portfolio(self) -> Any:
        return self._sim_required().portfolio

    @property
    def context(self) -> Context:
        return self._sim_required().context

    def get_datetime(self, tz: Any = None) -> Any:
        """The current simulation time (the bar's timestamp)."""
        dt = self._sim_required().current_dt()
        if tz is not None and dt is not None:
            dt = dt.tz_localize("UTC").tz_convert(tz) if dt.tzinfo is None else dt.tz_convert(tz)
        return dt

    def record(self, *args: Any, **kwargs: Any) -> None:
        """Record values per session (``record(x=1)`` or ``record('x', 1)``); real numbers
        are plotted, other values (text, timestamps, complex numbers, any object) are kept
        as they are or as their text in the results. A value carries forward until
        recorded again."""
        rec = self._rec
        if rec is not None and not args:  # (called on every bar by many strategies: no check it can skip)
            data, lo, hi, session_of_bar, records = rec
            i = data._i
            if lo <= i <= hi:
                session = session_of_bar[i]
                values = records.get(session)
                if values is None:
                    records[session] = kwargs  # (a dict of this call's own)
                else:
                    values.update(kwargs)
                return
        if len(args) % 2:
            raise TypeError("record() takes name/value pairs: record('x', 1) or record(x=1)")
        values = dict(zip(args[::2], args[1::2]))
        values.update(kwargs)
        for k in values:
            if not isinstance(k, str):
                raise TypeError(f"record() names must be str, got {k!r} ({type(k).__name__}): "
                                f"record('name', value) or record(name=value)")
        self._sim_required().record(values)

    def schedule_function(self, func: Any, date_rule: DateRule | None = None, time_rule: TimeRule | None = None,
                          half_days: bool = True, calendar: Any = None, *, date_rules: DateRule | None = None,
                          time_rules: TimeRule | None = None) -> None:
        """Run ``func(context, data)`` on the sessions chosen by ``date_rule`` at the bar
        chosen by ``time_rule`` (see :mod:`rustybt_nb.scheduling`). ``date_rules=`` /
        ``time_rules=`` are accepted as aliases."""
        from .errors import ScheduleError

        sim = self._sim_required()
        if not callable(func):
            raise ScheduleError(f"`func` must be callable (func(context, data)), got {func!r}")
        dr = date_rule if date_rule is not None else date_rules
        tr = time_rule if time_rule is not None else time_rules
        if (date_rule is not None and date_rules is not None) or (time_rule is not None and time_rules is not None):
            raise ScheduleError("pass each rule once: use date_rule=/time_rule= (or the plural aliases)")
        dr = dr if dr is not None else EveryDay()
        if not isinstance(dr, DateRule):
            raise ScheduleError(f"`date_rule` must come from date_rules (e.g. date_rules.every_day()), got {dr!r}")
        if tr is not None and not isinstance(tr, TimeRule):
            raise ScheduleError(f"`time_rule` must come from time_rules (e.g. time_rules.market_open()), got {tr!r}")
        bars = fire_bars(sim.clock, dr, tr, half_days)
        sim.add_scheduled(func, bars)

    def indicator(self, func: Any, *inputs: Any, name: str | Sequence[str] | None = None, asset: Any = None,
                  plot: str | None = None, **kwargs: Any) -> Any:
        """Declare an indicator (call it in ``initialize``): ``func(*arrays, **kwargs)``
        runs once over the whole bar history of each asset (``asset``: one, a list, or
        None for every asset of the data), with one float array per input (a field name
        such as ``'close'``, another indicator, or an array of one value per bar). Each
        output (several for a tuple, 2-D array or DataFrame) becomes a field of this run,
        read with ``data.current(asset, name)`` / ``data.history(asset, name, n, f)``, or
        from the returned handle: ``ind[-1]`` now, ``ind[-2]`` a bar before. ``name``
        defaults to the function's name (a prefix for several outputs, or one name per
        output); ``plot`` how ``result.plot()`` draws it ('overlay', 'panel', 'none'; None:
        on the price when its values are in the price's range). See
        :mod:`rustybt_nb.indicators` (and ``check_lookahead``)."""
        return self._sim_required().add_indicator(func, inputs, name, asset, kwargs, plot)

    def set_slippage(self, us_equities: SlippageModel | None = None, us_futures: Any = None, **kw: Any) -> None:
        """Set the slippage model (only in ``initialize``)."""
        model = us_equities if us_equities is not None else kw.pop("model", None)
        if not isinstance(model, SlippageModel):
            raise TypeError(f"set_slippage needs a slippage model such as VolumeShareSlippage(), got {model!r}")
        self._sim_required().set_model("slippage", model)

    def set_commission(self, us_equities: CommissionModel | None = None, us_futures: Any = None,
                       **kw: Any) -> None:
        """Set the commission model (only in ``initialize``)."""
        model = us_equities if us_equities is not None else kw.pop("model", None)
        if not isinstance(model, CommissionModel):
            raise TypeError(f"set_commission needs a commission model such as PerShare(), got {model!r}")
        self._sim_required().set_model("commission", model)


API_NAMES = frozenset({
    "order", "order_value", "order_percent", "order_target", "order_target_value", "order_target_percent",
    "get_open_orders", "get_order", "cancel_order", "modify_order", "link_oco", "symbol", "symbols", "sid",
    "record", "schedule_function", "get_datetime", "set_slippage", "set_commission", "date_rules",
    "time_rules", "log", "portfolio", "params",
})


for _name in API_NAMES:
    if _name == "portfolio":  # the hot one (see _ReadOnlyValue)
        setattr(Context, _name, _ReadOnlyValue(_name))
    else:
        setattr(Context, _name, property(_forward(_name), _refuse(_name)))
del _name


def check_param_names(strategy: type, params: Any) -> None:
    """Raise ``TypeError`` (with near matches) for a name in ``params`` that ``strategy``
    does not declare in its ``params``; a strategy that declares none takes any."""
    declared = dict(getattr(strategy, "params", None) or {})
    if not declared:
        return
    for key in params:
        if key not in declared:
            names = sorted(str(k) for k in declared)
            raise TypeError(f"{strategy.__name__} has no parameter {key!r}; its parameters are {', '.join(names)}."
                            f"{did_you_mean(str(key), names)}")


def make_algorithm(strategy: Any, params: dict[str, Any], functions: dict[str, Any] | None = None
                   ) -> TradingAlgorithm:
    """The algorithm a run uses: a new instance of a :class:`TradingAlgorithm` subclass, the
    given instance itself, or (``strategy=None``) a base instance wrapping Zipline-style
    ``functions`` (``{'initialize': f, 'handle_data': g, ...}``). ``params`` override the
    strategy's declared ones (an instance's current ones); an unknown name raises
    ``TypeError`` with near matches when the strategy declares its parameters."""
    funcs = {k: v for k, v in (functions or {}).items() if v is not None}
    if strategy is None:
        if not funcs.get("initialize") and not funcs.get("handle_data"):
            raise TypeError("a backtest needs a TradingAlgorithm subclass (or instance), or "
                            "initialize=/handle_data= functions")
        return TradingAlgorithm(**funcs, **params)
    if funcs:
        raise TypeError("pass either an algorithm class/instance or initialize=/handle_data= functions, not both")
    if isinstance(strategy, type) and issubclass(strategy, TradingAlgorithm):
        algo = strategy.__new__(strategy)
        TradingAlgorithm.__init__(algo, **params)  # a custom __init__ already sees the parameters
        if strategy.__init__ is not TradingAlgorithm.__init__:
            strategy.__init__(algo)
        _ensure_base(algo)
        algo._set_params(params)
        return algo
    if isinstance(strategy, TradingAlgorithm):
        _ensure_base(strategy)
        if params:
            strategy._set_params({**strategy.params, **params})
        return strategy
    raise TypeError(f"`algorithm` must be a TradingAlgorithm subclass or instance, got {strategy!r}")


def _ensure_base(algo: TradingAlgorithm) -> None:
    """Give an algorithm whose own ``__init__`` skipped ``super().__init__()`` the base state."""
    if not hasattr(algo, "_funcs"):
        algo._funcs = {}
    if not isinstance(algo.__dict__.get("params"), Params):
        algo._set_params({})
    if not isinstance(getattr(algo, "log", None), _AlgoLog):
        algo.log = _AlgoLog(algo)
    algo._sim = None


def _order_id(value: Any, what: str = "`order_id`") -> int:
    if isinstance(value, Order):
        return value.id
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{what} must be an order, a ticket or an order id (what order() returned), got "
                        f"{shown(value)} ({type(value).__name__})")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{what}: {shown(value)} is not an order id; pass what order() returned") from None


_EXACT = 2**53  # ints below this convert to float and back unchanged


def _check_number(name: str, value: Any) -> None:
    """A number argument given by the user: ``TypeError`` unless a number, ``ValueError``
    when NaN or infinite (or an int beyond the float range), naming ``name``."""
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise TypeError(f"`{name}` must be a number, got {shown(value)} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number, got {shown(value)} ({type(value).__name__})") from None
    if v != v:
        raise ValueError(f"`{name}` is NaN; check the calculation that produced it")
    if v == math.inf or v == -math.inf:
        raise ValueError(f"`{name}` must be a finite number, got {shown(value)}; check the calculation that "
                         "produced it")


def _check_amount(amount: Any) -> int:
    return check_amount("amount", amount)


def _resolve_style(limit_price: Any, stop_price: Any, style: Any) -> ExecutionStyle:
    if style is not None:
        if limit_price is not None or stop_price is not None:
            raise ValueError("pass either `style=` or `limit_price`/`stop_price`, not both")
        if isinstance(style, type) and issubclass(style, ExecutionStyle):
            raise TypeError(f"`style` must be an instance, e.g. style={style.__name__}(...), not the class")
        if not isinstance(style, ExecutionStyle):
            raise TypeError(f"`style` must be an execution style such as LimitOrder(10.0), got {style!r}")
        return style
    if limit_price is not None and stop_price is not None:
        return StopLimitOrder(limit_price, stop_price)
    if limit_price is not None:
        return LimitOrder(limit_price)
    if stop_price is not None:
        return StopOrder(stop_price)
    return _MARKET


_MARKET = MarketOrder()  # the default style; never mutated (order() copies a style before changing it)
