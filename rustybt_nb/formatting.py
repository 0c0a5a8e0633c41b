"""How numbers, times, user strings and orders read in text: the one vocabulary of the
text reports (``result.summary()``, ``result.order_log_text()``) and the notebook views
(HTML summaries, styled tables, figure labels and hover text).

Engine level: pandas, numpy and the standard library only, so the engine's own text and
the notebook layer use the same functions. Where outputs deliberately differ (the plain
text reports are ASCII and write ``n/a``; the HTML writes an en dash and ``∞``; a table
cell stays blank) that is a parameter, not a second function.
"""

from __future__ import annotations

import html
import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_scalar

#: Shown for a missing value (None, NaN, NaT) in the HTML views.
NA = "\N{EN DASH}"
#: Shown for an infinite value (with a leading ``-`` when negative) in the HTML views.
INF = "\N{INFINITY}"
#: ``na`` and ``inf`` of the plain-text reports, which stay ASCII: ``number(x, **TEXT)``.
TEXT: dict[str, str] = {"na": "n/a", "inf": "inf"}

NAN = math.nan


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and ``pd.NA``; False for anything else (lists included)."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return is_scalar(value) and bool(pd.isna(value))  # an array-like is not one missing value


# ---------------------------------------------------------------- numbers
def _fixed(x: Any, decimals: int, kind: str, min_decimals: int | None, signed: bool, na: str, inf: str) -> str:
    if is_missing(x):
        return na
    x = float(x)
    if math.isinf(x):
        return inf if x > 0 else "-" + inf
    # "z": a value that rounds to zero reads "0", never "-0"
    text = format(x, f"z,.{decimals}{kind}")
    suffix = "%" if kind == "%" else ""
    if suffix:
        text = text[:-1]
    if min_decimals is not None and "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(min_decimals, "0")
        text = f"{whole}.{frac}" if frac else whole
    if signed and not text.startswith("-") and text.strip("0.,"):
        text = "+" + text
    return text + suffix


def number(x: Any, decimals: int = 2, *, min_decimals: int | None = None, signed: bool = False, na: str = NA,
           inf: str = INF) -> str:
    """``x`` with ``decimals`` decimals and thousands separators: ``1,234.50``.

    ``min_decimals`` drops trailing zeros down to that many decimals (0: ``210.5``, ``12``);
    ``signed`` writes ``+`` before a positive value (zero stays ``0``). ``na`` is the text of
    a missing value, ``inf`` that of infinity. A value that rounds to zero is never ``-0``.
    """
    return _fixed(x, decimals, "f", min_decimals, signed, na, inf)


def percent(x: Any, decimals: int = 2, *, min_decimals: int | None = None, na: str = NA, inf: str = INF) -> str:
    """A fraction as a percentage: ``0.0125`` -> ``1.25%`` (the options of :func:`number`)."""
    return _fixed(x, decimals, "%", min_decimals, False, na, inf)


def short_number(x: Any, *, signed: bool = False, na: str = NA) -> str:
    """A price level or a quantity as short as it is exact to 4 decimals: ``65.6065``,
    ``210.5``, ``1,500``; with ``signed``, a fill's quantity: ``+100`` / ``-50``."""
    return _fixed(x, 4, "f", 0, signed, na, INF)


# ---------------------------------------------------------------- times
def is_daily(times: np.ndarray) -> bool:
    """True when every (non-NaT) timestamp of a ``datetime64`` array is at midnight (daily bars)."""
    t = times[~np.isnat(times)]
    return bool(len(t) == 0 or (t.astype("M8[D]") == t).all())


def time_text(ts: Any, tz: Any = None, *, na: str = NA) -> str:
    """One timestamp as text: ``2018-01-16`` at midnight, else ``2012-01-04 16:35``, with the
    zone's abbreviation when the time is tz-aware (``2012-10-01 09:31 EDT``). ``tz`` converts
    a tz-aware time to that zone first. Text that is not a time is returned as it is."""
    if is_missing(ts):
        return na
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError):
        return str(ts)
    if t.tzinfo is not None and tz is not None:
        t = t.tz_convert(tz)
    if t == t.normalize():
        return t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m-%d %H:%M %Z" if t.tzinfo is not None else "%Y-%m-%d %H:%M")


def time_labels(times: np.ndarray, daily: bool | None = None, *, na: str = "") -> list[str]:
    """The text of each time of a tz-naive ``datetime64`` array, all in one form so a column
    or a hover reads evenly: dates alone when ``daily`` (default: when every time is at
    midnight), else date and minute. NaT gives ``na`` (a blank cell by default)."""
    if not len(times):
        return []
    if daily is None:
        daily = is_daily(times)
    unit = "D" if daily else "m"
    uniq, inv = np.unique(times, return_inverse=True)  # each distinct time formatted once
    text = np.datetime_as_string(uniq.astype(f"M8[{unit}]"), unit=unit).tolist()
    text = [na if s == "NaT" else s.replace("T", " ") for s in text]
    return [text[j] for j in inv.ravel()]


# ---------------------------------------------------------------- user strings
def escape(value: Any, *, wrap: int | None = None) -> str:
    """``value`` as text safe in HTML, attributes included, and in plotly labels and hover
    text: ``&``, ``<``, ``>``, ``"`` and ``'`` become entities (the quotes as numeric ones,
    the only kind plotly decodes). None and NaN give ''. With ``wrap``, text longer than
    that many characters is broken into indented ``<br>`` lines (hover text)."""
    text = "" if is_missing(value) else str(value)
    if wrap is not None and len(text) > wrap:
        return "<br>  ".join(escape(line) for line in textwrap.wrap(text, wrap))
    return html.escape(text, quote=False).replace('"', "&#x22;").replace("'", "&#x27;")


# ---------------------------------------------------------------- orders
def role_text(role: Any) -> str:
    """A bracket leg's role as words: ``'stop_loss'`` -> ``'stop-loss'``; '' for none."""
    return "" if is_missing(role) or not role else str(role).replace("_", "-")


def order_description(style: str, role: Any = None, limit: Any = NAN, stop: Any = NAN, trail_amount: Any = NAN,
                      trail_percent: Any = NAN, trail_atr: Any = NAN, atr_window: Any = NAN) -> str:
    """Role and style of an order with the prices that define it: ``'stop-loss stop 150'``,
    ``'entry limit 290'``, ``'trailing stop trail 2.5%'``, ``'trailing stop trail 3 ATR(14)'``.
    A limit or stop is shown only for the styles it defines (a trailing order's current
    stop is not: its trail is)."""
    parts = [role_text(role), str(style).replace("_", " ")]
    if style in ("limit", "stop_limit") and not is_missing(limit):
        parts.append(short_number(limit))
    if style in ("stop", "stop_limit") and not is_missing(stop):
        parts.append(short_number(stop))
    if not is_missing(trail_amount):
        parts.append(f"trail {short_number(trail_amount)}")
    elif not is_missing(trail_percent):
        parts.append(f"trail {percent(trail_percent, min_decimals=0)}")
    elif not is_missing(trail_atr):
        window = "" if is_missing(atr_window) else f"({int(atr_window)})"
        parts.append(f"trail {short_number(trail_atr)} ATR{window}")
    return " ".join(p for p in parts if p)


def describe_order(row: Any, limit: Any = None, stop: Any = None) -> str:
    """:func:`order_description` of an order row (a row of ``result.orders``, as a Series,
    a namedtuple or anything with those fields); ``limit``/``stop`` replace the row's own."""
    def get(name: str) -> Any:
        value = row.get(name, NAN) if hasattr(row, "get") else getattr(row, name, NAN)
        return NAN if value is None else value

    return order_description(get("style"), get("role"), get("limit") if limit is None else limit,
                             get("stop") if stop is None else stop, get("trail_amount"), get("trail_percent"),
                             get("trail_atr"), get("atr_window"))
