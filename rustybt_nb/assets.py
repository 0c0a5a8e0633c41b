"""Tradable assets.

An :class:`Asset` is a symbol with a numeric id (``sid``, its column in the bar store it
came from). It is a ``str`` subclass: it hashes and compares as its symbol, so an asset
looked up twice, rebuilt from a saved result, or written as ``'AAPL'`` finds the same
dictionary entry — and dictionary lookups keyed by assets (positions, open orders) run
at the speed of string keys.
"""

from __future__ import annotations


class Asset(str):
    """A tradable instrument identified by its ``symbol``."""

    def __new__(cls, symbol: str, sid: int = -1, exchange: str = "") -> Asset:
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"`symbol` must be a non-empty str, got {symbol!r}")
        obj = str.__new__(cls, symbol)
        d = obj.__dict__
        d["symbol"] = str(symbol)
        d["sid"] = int(sid)
        d["exchange"] = exchange
        return obj

    def __setattr__(self, name: str, value: object) -> None:  # immutable value object
        raise AttributeError("Asset is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Asset is immutable")

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"Equity({self.sid} [{self.symbol}])"

    def __str__(self) -> str:
        return self.symbol

    def __reduce__(self):
        return (Asset, (self.symbol, self.sid, self.exchange))

    def __copy__(self) -> Asset:
        return self

    def __deepcopy__(self, memo: dict) -> Asset:
        return self
