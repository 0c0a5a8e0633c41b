"""Tradable assets.

An :class:`Asset` is a small immutable value: a symbol plus a numeric id (``sid``)
that is its column position in the bar store it came from. Assets compare and hash
by symbol, so an asset looked up twice (or rebuilt from a saved result) is the same
dictionary key.
"""

from __future__ import annotations


class Asset:
    """A tradable instrument identified by its ``symbol``."""

    __slots__ = ("exchange", "sid", "symbol")

    def __init__(self, symbol: str, sid: int = -1, exchange: str = "") -> None:
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"`symbol` must be a non-empty str, got {symbol!r}")
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "sid", int(sid))
        object.__setattr__(self, "exchange", exchange)

    def __setattr__(self, name: str, value: object) -> None:  # immutable value object
        raise AttributeError("Asset is immutable")

    def __hash__(self) -> int:
        return hash(self.symbol)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Asset):
            return self.symbol == other.symbol
        return NotImplemented

    def __lt__(self, other: Asset) -> bool:
        return self.symbol < other.symbol

    def __repr__(self) -> str:
        return f"Equity({self.sid} [{self.symbol}])"

    def __str__(self) -> str:
        return self.symbol

    def __reduce__(self):
        return (Asset, (self.symbol, self.sid, self.exchange))
