"""Shared look of the notebook views: colours per order status and event kind, marker
symbols, a layout helper, and the time, asset and frame helpers the figures and tables
share. How numbers, times, user strings and orders read is :mod:`rustybt_nb.formatting`.

Nothing here imports plotly; :func:`apply_layout` works on a figure it is given.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..finance.order import ORDER_STATUS, STATUS_NAMES
from ..formatting import is_daily

#: One colour per order status, used by every figure and table.
STATUS_COLORS: dict[str, str] = {
    "held": "#9e9e9e",  # waiting for its parent: grey
    "open": "#1f77b4",  # working: blue
    "triggered": "#ff7f0e",  # stop reached, now working as market/limit: orange
    "partial": "#9467bd",  # partly filled, still working: purple
    "filled": "#2ca02c",  # green
    "canceled": "#7f7f7f",  # dark grey
    "rejected": "#d62728",  # red
    "expired": "#8c564b",  # brown
}

#: Light backgrounds of the status cells in the styled tables.
STATUS_BACKGROUNDS: dict[str, str] = {
    "held": "#eeeeee",
    "open": "#dbe9f6",
    "triggered": "#ffe8cc",
    "partial": "#e9e0f3",
    "filled": "#dcf2dc",
    "canceled": "#e4e4e4",
    "rejected": "#f9d6d6",
    "expired": "#eadbd4",
}

#: Marker symbol of each final status on the timeline.
TERMINAL_SYMBOLS: dict[str, str] = {
    "filled": "circle-open",  # a ring around the (last) fill's triangle
    "canceled": "x",
    "rejected": "diamond",
    "expired": "square",
}

#: Colour per event kind (hover swatches, event markers).
EVENT_COLORS: dict[str, str] = {
    "submitted": STATUS_COLORS["open"],
    "held": STATUS_COLORS["held"],
    "rejected": STATUS_COLORS["rejected"],
    "activated": STATUS_COLORS["open"],
    "triggered": STATUS_COLORS["triggered"],
    "partial_fill": STATUS_COLORS["partial"],
    "fill": STATUS_COLORS["filled"],
    "canceled": STATUS_COLORS["canceled"],
    "expired": STATUS_COLORS["expired"],
    "updated": "#17becf",
    "trailed": "#bcbd22",
}

BUY_COLOR = "#2ca02c"
SELL_COLOR = "#d62728"
EQUITY_COLOR = "#1f77b4"
DRAWDOWN_COLOR = "#d62728"
PRICE_COLOR = "#444444"
TRAIL_COLOR = "#e377c2"
LINK_COLOR = "#8c8c8c"
OCO_COLOR = "#b8860b"
INDICATOR_COLORS = ("#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#bcbd22", "#7f7f7f")  # one per indicator, in order

#: Colour of a working order's price level by its role.
LEVEL_COLORS: dict[str, str] = {
    "entry": "#1f77b4",
    "stop_loss": "#d62728",
    "take_profit": "#2ca02c",
    "other": "#7f7f7f",
}

#: Above this many points a trace is drawn with WebGL (``go.Scattergl``). Below it SVG is
#: faster overall: every WebGL trace needs a GL context, and starting those costs more
#: than drawing a few thousand SVG points.
WEBGL_THRESHOLD = 20_000

#: Hover text longer than this many characters is wrapped onto several lines.
HOVER_WIDTH = 90

TEMPLATE = "plotly_white"
FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 12}


def scatter_class(go: Any, n_points: int) -> Any:
    """``go.Scattergl`` for more than :data:`WEBGL_THRESHOLD` points, else ``go.Scatter``."""
    return go.Scattergl if n_points > WEBGL_THRESHOLD else go.Scatter


# Whether apply_layout sets the template: a live figure that is updated in place already has
# it, and building it again costs more than anything else in a figure's layout.
_TEMPLATE: contextvars.ContextVar[bool] = contextvars.ContextVar("rustybt_nb_template", default=True)


@contextlib.contextmanager
def without_template() -> Iterator[None]:
    """Views built inside this block skip the template (for in-place updates of live
    figures that already carry it); everything else about them is the same."""
    token = _TEMPLATE.set(False)
    try:
        yield
    finally:
        _TEMPLATE.reset(token)


def apply_layout(fig: Any, *, title: str | None = None, height: int | None = None, hovermode: str = "closest",
                 legend: str = "top", **extra: Any) -> Any:
    """Give ``fig`` the common look: white template, compact margins, the given hover mode
    and the legend either in one row above the plot (``legend='top'``) or in a column to
    its right (``legend='right'``, for figures with many traces). Returns ``fig``."""
    if legend == "right":
        legend_layout = {"orientation": "v", "yanchor": "top", "y": 1.0, "xanchor": "left", "x": 1.01}
        margin = {"l": 60, "r": 10, "t": 60 if title else 30, "b": 40}
    else:
        legend_layout = {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0}
        margin = {"l": 60, "r": 20, "t": 80 if title else 40, "b": 40}
    if _TEMPLATE.get():
        fig.update_layout(template=TEMPLATE)
    fig.update_layout(
        font=FONT,
        title={"text": title, "x": 0.01, "xanchor": "left", "y": 0.99, "yanchor": "top", "yref": "container",
               "font": {"size": 15}} if title else None,
        height=height,
        margin=margin,
        hovermode=hovermode,
        hoverlabel={"align": "left", "font": {"size": 11}},
        legend={**legend_layout, "font": {"size": 11}, "groupclick": "toggleitem"},
        **extra,
    )
    return fig


# ---------------------------------------------------------------- orders
def side_of(amount: float) -> str:
    """``'buy'`` for a positive amount, ``'sell'`` otherwise."""
    return "buy" if amount > 0 else "sell"


# ---------------------------------------------------------------- time
def naive_times(values: Any) -> np.ndarray:
    """Timestamps as a tz-naive ``datetime64[ns]`` array (tz-aware values are converted to
    UTC wall time first), which plotly draws on a date axis without shifting them."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(values) if not isinstance(values, pd.Index) else values))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def run_end(result: Any) -> np.datetime64:
    """The last simulated time of a run (tz-naive): the last bar of ``result.prices``, else the
    last event or session."""
    candidates = []
    prices = result.prices
    if len(prices):
        candidates.append(naive_times(prices["dt"]).max())
    if len(result.order_events):
        candidates.append(naive_times(result.order_events["dt"]).max())
    if len(result.perf):
        candidates.append(naive_times(result.perf.index).max())
    candidates = [c for c in candidates if not np.isnat(c)]
    return max(candidates) if candidates else np.datetime64("NaT", "ns")


def time_axis_title(times: np.ndarray) -> str:
    """'date' for daily bars, 'time (UTC)' for intraday bars."""
    return "date" if is_daily(times) else "time (UTC)"


def check_status(status: Any) -> list[str] | None:
    """``status`` (one status or several) as a list of status strings; None stays None.
    Unknown names raise ``ValueError`` naming the argument."""
    if status is None:
        return None
    values = [status] if isinstance(status, str) else list(status)
    out = []
    for v in values:
        s = str(getattr(v, "value", v)).lower()
        s = _STATUS_BY_NAME.get(s, s)
        if s not in STATUS_NAMES:
            raise ValueError(f"`status`={v!r} is not an order status; use one or a list of {', '.join(STATUS_NAMES)}")
        out.append(s)
    return out


#: ORDER_STATUS member names (``partially_filled``, ``cancelled``) -> the status string.
_STATUS_BY_NAME = {name.lower(): member._value_ for name, member in ORDER_STATUS.__members__.items()}


def check_time(name: str, value: Any) -> np.datetime64:
    """A time argument as tz-naive ``datetime64[ns]`` (UTC wall time for tz-aware input);
    None becomes NaT."""
    if value is None:
        return np.datetime64("NaT", "ns")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}`={value!r} is not a time; pass a timestamp or a string like '2018-01-15'") from exc
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.as_unit("ns").asm8, "ns")


# ---------------------------------------------------------------- assets
def symbols_of(result: Any) -> list[str]:
    """The run's symbols, in the order the settings list them (else as they appear)."""
    syms = list(result.settings.get("symbols") or [])
    for frame in (result.orders, result.prices):
        if len(frame) and "asset" in frame:
            for s in pd.unique(frame["asset"]):
                if s not in syms:
                    syms.append(s)
    return [str(s) for s in syms]


def resolve_asset(result: Any, asset: Any, name: str = "asset") -> str | None:
    """The symbol ``asset`` refers to (a symbol string, in any case, or an object with a
    ``.symbol``); None stays None. Unknown symbols raise ``ValueError`` naming the argument."""
    if asset is None:
        return None
    symbol = getattr(asset, "symbol", asset)
    if not isinstance(symbol, str):
        raise TypeError(f"`{name}` must be a symbol string such as 'AAPL', got {asset!r}")
    known = symbols_of(result)
    if symbol in known:
        return symbol
    folded = {s.casefold(): s for s in known}
    if symbol.casefold() in folded:
        return folded[symbol.casefold()]
    raise ValueError(f"`{name}`={asset!r} is not a symbol of this backtest; available: {', '.join(known) or 'none'}")


def most_traded(result: Any) -> str | None:
    """The symbol with the most fills (ties: most shares traded); else the one with most
    orders; else the first symbol of the run."""
    fills = result.fills
    if len(fills):
        traded = pd.unique(fills["asset"])
        if len(traded) == 1:  # (most runs: one asset; no ranking needed)
            return str(traded[0])
        agg = fills.assign(abs_qty=fills["qty"].abs()).groupby("asset", sort=False).agg(
            n=("qty", "size"), shares=("abs_qty", "sum"))
        return str(agg.sort_values(["n", "shares"], ascending=False, kind="stable").index[0])
    if len(result.orders):
        return str(result.orders["asset"].value_counts(sort=True).index[0])
    syms = symbols_of(result)
    return syms[0] if syms else None


def marker_sizes(qty: Iterable[float], smallest: float = 7.0, largest: float = 20.0) -> np.ndarray:
    """Marker diameters growing with ``|qty|`` (area proportional to size)."""
    q = np.abs(np.asarray(list(qty) if not isinstance(qty, np.ndarray) else qty, dtype=float))
    if not len(q):
        return q
    top = np.nanmax(q) if np.isfinite(q).any() else 0.0
    if not top:
        return np.full(len(q), smallest)
    return smallest + (largest - smallest) * np.sqrt(np.nan_to_num(q) / top)


# ---------------------------------------------------------------- frames
FILL_KINDS = ("partial_fill", "fill")


def fills_with_events(result: Any, fills: pd.DataFrame | None = None) -> pd.DataFrame:
    """``result.fills`` (or a subset of its rows that holds every fill of its orders) with
    the matching fill event's ``kind``, ``reason``, and the order's ``amount``/``filled``
    after it (columns ``event_kind``, ``reason``, ``order_amount``, ``order_filled``). Fills
    and fill events pair up by order, bar and their position within that bar. The pairing
    of a result is made once and kept (several views read it)."""
    everything = result.fills
    key = (id(everything), id(result.order_events))
    cached = _PAIRED.get(result)
    if cached is None or cached[0] != key:
        cached = (key, _pair_fills(everything, result.order_events))
        _PAIRED[result] = cached
    paired = cached[1]
    # (a shallow copy under pandas' copy-on-write: the caller may change it, the kept one stays)
    return paired.copy(deep=False) if fills is None or fills is everything else paired.loc[fills.index]


_PAIRED: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int], pd.DataFrame]] = weakref.WeakKeyDictionary()


def _pair_fills(fills: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
    fe = ev[ev["kind"].isin(FILL_KINDS)]
    left = fills.assign(_k=fills.groupby(["order_id", "bar"], sort=False).cumcount().to_numpy())
    right = fe[["order_id", "bar", "kind", "reason", "amount", "filled"]].assign(
        _k=fe.groupby(["order_id", "bar"], sort=False).cumcount().to_numpy())
    right = right.rename(columns={"kind": "event_kind", "amount": "order_amount", "filled": "order_filled"})
    out = left.merge(right, on=["order_id", "bar", "_k"], how="left", sort=False).drop(columns="_k")
    out.index = fills.index
    return out


MAX_LINE_POINTS = 4000


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_LINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Thin a long price line for drawing: keep each bucket's lowest and highest point,
    in time order, so the drawn line keeps every swing a full-resolution line would show
    at screen width (a year of minute bars becomes ~4,000 points instead of ~100,000)."""
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = []
    for lo, hi in itertools.pairwise(edges):
        seg = y[lo:hi]
        if not len(seg) or np.isnan(seg).all():
            continue
        a, b = lo + int(np.nanargmin(seg)), lo + int(np.nanargmax(seg))
        keep.extend((a, b) if a <= b else (b, a))
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    return x[idx], y[idx]
