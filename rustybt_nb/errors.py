"""Exceptions and helpers for error messages that name the argument, show the value
and say the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RustyBTError(Exception):
    """Base class of this package's own exceptions."""


class SymbolNotFound(RustyBTError, KeyError):
    """A symbol that is not in the backtest's data."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class DataValidationError(RustyBTError, ValueError):
    """Input bars that cannot be simulated (missing columns, NaN, high < low, ...)."""


class HistoryWindowError(RustyBTError, ValueError):
    """A ``data.history`` request that the data cannot serve."""


class ScheduleError(RustyBTError, ValueError):
    """A bad ``schedule_function`` call."""


class AlgorithmError(RustyBTError):
    """Wraps nothing: raised for misuse of the algorithm API (e.g. outside a run)."""


class IndicatorError(RustyBTError, ValueError):
    """An indicator that cannot be computed or read as declared (its function's output,
    its name, its inputs)."""


class LookAheadError(RustyBTError):
    """An indicator whose value at a bar depends on later bars (``check_lookahead=True``)."""


def near_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``word`` (case-insensitive)."""
    cands = list(candidates)
    upper = {c.upper(): c for c in cands}
    hits = difflib.get_close_matches(str(word).upper(), list(upper), n=n, cutoff=0.5)
    return [upper[h] for h in hits]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix, or '' when nothing is close."""
    hits = near_matches(word, candidates)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(repr(h) for h in hits) + "?"


def fmt_list(items: Iterable[object], limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return "[" + shown + "]"
