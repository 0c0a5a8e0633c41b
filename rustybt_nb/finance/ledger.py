"""Cash, positions, fills and round-trip trades.

Accounting assumptions: fills change cash by ``-qty x price - commission``; there is no
margin model (cash may go negative, i.e. leverage; a run is warned about it once, and
``max_leverage`` rejects orders beyond a limit) and no interest. A position's
``cost_basis`` is the average fill price per share of the open position, without
commissions (commissions are booked in cash, on the fills and on the trades). Adding
to a position averages the price; reducing it keeps the cost basis and realises
``(price - cost_basis) x closed quantity``; crossing zero closes the position and opens
the other side at the fill price.

A round-trip trade opens when a position leaves zero and closes when it returns to
zero (a flip closes one trade and opens the next).
"""

from __future__ import annotations

import math
from typing import Any

from ..assets import Asset


class Position:
    """A holding of one asset (Zipline's fields). ``last_sale_price`` is the asset's
    price at the bar the strategy is handling (the last fill price when there is none)."""

    __slots__ = ("asset", "amount", "cost_basis", "_fill_price", "_fill_date", "_source")

    def __init__(self, asset: Asset, amount: float = 0, cost_basis: float = 0.0,
                 last_sale_price: float = math.nan, last_sale_date: Any = None, source: Any = None) -> None:
        self.asset = asset
        self.amount = amount
        self.cost_basis = cost_basis
        self._fill_price = last_sale_price
        self._fill_date = last_sale_date
        self._source = source  # the run's BarData: reads the current bar's price

    @property
    def last_sale_price(self) -> float:
        src = self._source
        if src is not None and src._i >= 0 and self.asset.sid >= 0:
            px = src._mv[self.asset.sid]["price"][src._i]
            if px == px:
                return px
        return self._fill_price

    @property
    def last_sale_date(self) -> Any:
        src = self._source
        if src is not None and src._i >= 0 and self.asset.sid >= 0:
            px = src._mv[self.asset.sid]["price"][src._i]
            if px == px:
                return src._store.timestamp(src._i)
        return self._fill_date

    @property
    def market_value(self) -> float:
        return self.amount * self.last_sale_price if self.amount else 0.0

    @property
    def unrealized_pnl(self) -> float:
        return (self.last_sale_price - self.cost_basis) * self.amount if self.amount else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"asset": self.asset.symbol, "amount": self.amount, "cost_basis": self.cost_basis,
                "last_sale_price": self.last_sale_price, "last_sale_date": self.last_sale_date}

    def __repr__(self) -> str:
        return (f"Position({self.asset.symbol}, amount={self.amount:g}, cost_basis={self.cost_basis:.4f}, "
                f"last_sale_price={self.last_sale_price:.4f})")


class Positions(dict):
    """``dict[Asset, Position]`` of the assets held; an asset not held reads as an empty
    position (amount 0). Use :func:`new_positions` to get one."""

    mark_source: Any = None

    def __missing__(self, asset: Asset) -> Position:
        return Position(asset, source=self.mark_source)


class _EmptyPositions(dict):
    """Cache of the empty position of each asset (created on first use, never changed)."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source

    def __missing__(self, asset: Asset) -> Position:
        pos = self[asset] = Position(asset, source=self.source)
        return pos


def new_positions(source: Any = None) -> Positions:
    """An empty :class:`Positions` whose misses (``positions[asset]`` of an asset not
    held, read on nearly every bar by most strategies) are answered by a C-level lookup
    in a cache of empty positions instead of a Python ``__missing__`` call."""
    empties = _EmptyPositions(source)
    cls = type("Positions", (Positions,), {"__missing__": empties.__getitem__, "__slots__": ()})
    positions = cls()
    positions.mark_source = source
    return positions


class _OpenTrade:
    __slots__ = (
        "asset",
        "commission",
        "direction",
        "entry_bar",
        "entry_dt",
        "max_size",
        "order_ids",
        "pnl",
        "qty_in",
        "qty_out",
        "value_in",
        "value_out",
    )

    def __init__(self, asset: Asset, direction: int, dt: Any, bar: int) -> None:
        self.asset = asset
        self.direction = direction
        self.entry_dt = dt
        self.entry_bar = bar
        self.qty_in = 0.0
        self.value_in = 0.0
        self.qty_out = 0.0
        self.value_out = 0.0
        self.pnl = 0.0
        self.commission = 0.0
        self.max_size = 0.0
        self.order_ids: dict[int, None] = {}  # (a dict: ordered, and a membership test that does not grow)


TRADE_COLUMNS = ("asset", "direction", "entry_dt", "exit_dt", "entry_bar", "exit_bar", "size", "entry_price",
                 "exit_price", "pnl", "commission", "net_pnl", "return_pct", "bars_held", "is_open", "order_ids")
FILL_COLUMNS = ("dt", "bar", "order_id", "asset", "qty", "price", "commission", "realized_pnl",
                "position_after", "cash_after", "bar_volume")


class Ledger:
    """Books fills into cash, positions and trades; keeps the change history the
    results are built from."""

    def __init__(self, capital_base: float, mark_source: Any = None) -> None:
        self.starting_cash = float(capital_base)
        self.cash = float(capital_base)
        self.positions = new_positions(mark_source)
        self.fills: list[tuple] = []  # rows of FILL_COLUMNS
        self.trades: list[tuple] = []  # rows of TRADE_COLUMNS, closed round trips
        self._open_trades: dict[Asset, _OpenTrade] = {}
        self.realized_pnl = 0.0
        self.total_commission = 0.0
        self.cost_basis_after: list[float] = []  # position cost basis after each fill (parallel to fills)

    def apply_fill(self, order_id: int, asset: Asset, qty: float, price: float, commission: float,
                   dt: Any, bar: int, bar_volume: float = math.nan) -> float:
        """Book one fill; return the realised pnl (before commission)."""
        fill_commission = commission
        self.cash -= qty * price + commission
        self.total_commission += commission
        pos = self.positions.get(asset)
        if pos is None:
            pos = self.positions[asset] = Position(asset, source=self.positions.mark_source)
        old = pos.amount
        new = old + qty
        realized = 0.0
        trade = self._open_trades.get(asset)
        if old == 0 or (old > 0) == (qty > 0):  # open or add
            pos.cost_basis = (pos.cost_basis * abs(old) + price * abs(qty)) / abs(new)
            trade = self._trade_in(asset, trade, qty, price, dt, bar, order_id)
        else:  # reduce, close or flip
            closing = -old if abs(qty) >= abs(old) else qty  # signed, opposite to old
            realized = (price - pos.cost_basis) * (-closing)
            trade.qty_out += abs(closing)
            trade.value_out += abs(closing) * price
            trade.pnl += realized
            trade.order_ids[order_id] = None
            if new == 0 or (new > 0) != (old > 0):
                share = abs(closing) / abs(qty)
                trade.commission += commission * share
                commission -= commission * share
                self._close_trade(trade, dt, bar)
                trade = None
                pos.cost_basis = 0.0
                if new != 0:  # flipped: the rest opens the other side (and carries the rest of the fee)
                    pos.cost_basis = price
                    trade = self._trade_in(asset, None, new, price, dt, bar, order_id)
        if trade is not None:
            trade.commission += commission
            trade.max_size = max(trade.max_size, abs(new))
        pos.amount = new
        self.cost_basis_after.append(pos.cost_basis if new != 0 else 0.0)
        pos._fill_price = price
        pos._fill_date = dt
        if new == 0:
            del self.positions[asset]
        self.realized_pnl += realized
        self.fills.append((dt, bar, order_id, asset.symbol, qty, price, fill_commission,
                           realized, new, self.cash, bar_volume))
        return realized

    def _trade_in(self, asset, trade, qty, price, dt, bar, order_id):
        if trade is None:
            trade = self._open_trades[asset] = _OpenTrade(asset, 1 if qty > 0 else -1, dt, bar)
        trade.qty_in += abs(qty)
        trade.value_in += abs(qty) * price
        trade.max_size = max(trade.max_size, trade.qty_in - trade.qty_out)
        trade.order_ids[order_id] = None
        return trade

    def _close_trade(self, t: _OpenTrade, dt: Any, bar: int) -> None:
        del self._open_trades[t.asset]
        self.trades.append(self._trade_row(t, dt, bar, False, t.value_out / t.qty_out))

    def _trade_row(self, t: _OpenTrade, dt: Any, bar: int, is_open: bool, exit_price: float,
                   unrealized: float = 0.0) -> tuple:
        """A row of :data:`TRADE_COLUMNS`."""
        entry_price = t.value_in / t.qty_in
        pnl = t.pnl + unrealized
        basis = entry_price * t.max_size
        commission = t.commission
        return (t.asset.symbol, "long" if t.direction > 0 else "short", t.entry_dt, None if is_open else dt,
                t.entry_bar, None if is_open else bar, t.max_size, entry_price, exit_price, pnl, commission,
                pnl - commission, (pnl - commission) / basis if basis else math.nan, bar - t.entry_bar, is_open,
                list(t.order_ids))

    def open_trade_rows(self, dt: Any, bar: int, price_of) -> list[tuple]:
        """Rows for trades still open at the end, marked at ``price_of(asset)``."""
        rows = []
        for t in self._open_trades.values():
            px = price_of(t.asset)
            pos = self.positions.get(t.asset)
            unreal = (px - pos.cost_basis) * pos.amount if pos is not None else 0.0
            rows.append(self._trade_row(t, dt, bar, True, px, unreal))
        return rows
