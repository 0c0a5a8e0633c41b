"""Equity, drawdown and the traded price with the fills, as one figure with a shared time axis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..formatting import (
    TEXT,
    describe_order,
    escape,
    is_daily,
    is_missing,
    number,
    percent,
    short_number,
    time_labels,
)
from ._deps import require_plotly, require_subplots
from .style import (
    BUY_COLOR,
    DRAWDOWN_COLOR,
    EQUITY_COLOR,
    HOVER_WIDTH,
    INDICATOR_COLORS,
    PRICE_COLOR,
    SELL_COLOR,
    apply_layout,
    envelope,
    fills_with_events,
    marker_sizes,
    most_traded,
    naive_times,
    resolve_asset,
    scatter_class,
)


def plot_result(result: Any, asset: Any = None, height: int | None = None, title: str | None = None) -> Any:
    """Return a three-row plotly figure of a backtest, rows sharing the time axis:

    1. ``portfolio value`` -- the equity curve (one point per session, at the session's last
       bar for intraday runs);
    2. ``drawdown`` -- the fall from the running peak of the portfolio value, in percent, as
       a filled area;
    3. the price of ``asset`` (default: the most traded asset) as a close line, with its
       fills as markers: ``buys`` (green triangles up) and ``sells`` (red triangles down),
       sized by the absolute quantity; hovering a fill shows the order id, its style and
       role, ``qty @ price`` and the fill's reason.

    When the run traded nothing and has no prices, the third row is left out. The run's
    indicators of ``asset`` are drawn on its price (``plot='overlay'``, or by default when
    their values lie in the price's range) or in a fourth row (``'panel'``, or by default
    otherwise); ``plot='none'`` leaves one out.
    """
    go = require_plotly()
    make_subplots = require_subplots()
    symbol = resolve_asset(result, asset) if asset is not None else most_traded(result)
    prices = result.prices
    if symbol is not None and len(prices):
        prices = prices[prices["asset"] == symbol]
    else:
        prices = prices.iloc[:0]
    with_price = symbol is not None and (len(prices) > 0 or len(result.fills) > 0)
    overlays, panels = _indicator_lines(result, symbol, prices) if with_price else ([], [])
    rows = (4 if panels else 3) if with_price else 2
    heights = ([0.36, 0.16, 0.32, 0.16] if panels else [0.42, 0.2, 0.38]) if with_price else [0.65, 0.35]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                        subplot_titles=None)

    perf = result.perf
    x_perf = _session_times(result)
    pv = perf["portfolio_value"].to_numpy(dtype=float) if len(perf) else np.zeros(0)
    peak = np.fmax.accumulate(pv) if len(pv) else pv
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.where(peak > 0, pv / peak - 1.0, 0.0) * 100.0
    cls = scatter_class(go, len(pv))
    fig.add_trace(cls(x=x_perf, y=pv, mode="lines", name="portfolio value", line={"color": EQUITY_COLOR, "width": 1.8},
                      hovertemplate="%{y:,.2f}<extra>portfolio value</extra>"), row=1, col=1)
    fig.add_trace(cls(x=x_perf, y=dd, mode="lines", name="drawdown", fill="tozeroy",
                      line={"color": DRAWDOWN_COLOR, "width": 1}, fillcolor="rgba(214,39,40,0.25)",
                      hovertemplate="%{y:.2f}%<extra>drawdown</extra>"), row=2, col=1)
    fig.update_yaxes(title_text="portfolio value", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", ticksuffix="%", row=2, col=1)

    if with_price:
        px, close = envelope(naive_times(prices["dt"]), prices["close"].to_numpy(dtype=float))
        cls = scatter_class(go, len(close))
        fig.add_trace(cls(x=px, y=close, mode="lines", name=f"{escape(symbol)} close",
                          line={"color": PRICE_COLOR, "width": 1.2},
                          hovertemplate="%{y:,.4~f}<extra>" + escape(symbol) + " close</extra>"), row=3, col=1)
        for row, lines in ((3, overlays), (4, panels)):
            for name, x, y, color in lines:
                fig.add_trace(scatter_class(go, len(y))(
                    x=x, y=y, mode="lines", name=escape(name), line={"color": color, "width": 1.1},
                    hovertemplate="%{y:,.4~f}<extra>" + escape(name) + "</extra>"), row=row, col=1)
        for trace in _fill_traces(go, result, symbol):
            fig.add_trace(trace, row=3, col=1)
        fig.update_yaxes(title_text=f"{escape(symbol)} price", row=3, col=1)
        if panels:
            fig.update_yaxes(title_text="indicators", row=4, col=1)

    fig.update_xaxes(showspikes=True, spikemode="across", spikethickness=1, spikecolor="#999999",
                     spikedash="dot")
    fig.update_xaxes(title_text=_axis_title(x_perf, result), row=rows, col=1)
    return apply_layout(fig, title=title if title is not None else _title(result, symbol),
                        height=height or (720 if with_price else 520), hovermode="x")


def _indicator_lines(result: Any, symbol: str, prices: pd.DataFrame
                     ) -> tuple[list[tuple[str, Any, Any, str]], list[tuple[str, Any, Any, str]]]:
    """The indicators of ``symbol`` to draw: (on the price, in a row below), each as
    (name, x, y, color), placed by their ``plot=`` setting (see :mod:`rustybt_nb.indicators`)."""
    from ..indicators import overlays_price

    declared = (result.settings or {}).get("indicators") or {}
    if not declared:
        return [], []
    frame = result.indicators
    frame = frame[frame["asset"] == symbol] if len(frame) else frame
    if not len(frame):
        return [], []
    low = float(np.nanmin(prices["low"].to_numpy(dtype=float))) if len(prices) else float("nan")
    high = float(np.nanmax(prices["high"].to_numpy(dtype=float))) if len(prices) else float("nan")
    times = naive_times(frame["dt"])
    overlays, panels = [], []
    for k, (name, info) in enumerate(declared.items()):
        if name not in frame or info.get("plot") == "none":
            continue
        values = frame[name].to_numpy(dtype=float)
        if not np.isfinite(values).any():
            continue
        mode = info.get("plot", "auto")
        on_price = mode == "overlay" or (mode == "auto" and overlays_price(values, low, high))
        x, y = envelope(times, values)
        (overlays if on_price else panels).append((name, x, y, INDICATOR_COLORS[k % len(INDICATOR_COLORS)]))
    return overlays, panels


def _fill_traces(go: Any, result: Any, symbol: str) -> list[Any]:
    """``buys`` and ``sells`` marker traces of the fills of ``symbol``."""
    fills = result.fills
    fills = fills[fills["asset"] == symbol]
    if not len(fills):
        return []
    fills = fills_with_events(result, fills)
    orders = result.orders
    orders = orders[orders["id"].isin(fills["order_id"].unique())]
    kinds = {int(o.id): describe_order(o)
             for o in orders.itertuples(index=False)}
    tags = {int(o.id): o.tag for o in orders.itertuples(index=False) if not is_missing(o.tag)}
    sizes = marker_sizes(fills["qty"].to_numpy(dtype=float))
    x = naive_times(fills["dt"])
    t_text = time_labels(x)
    hover = []
    for oid, qty, price, reason, t in zip(fills["order_id"].to_numpy(), fills["qty"].to_numpy(dtype=float),
                                          fills["price"].to_numpy(dtype=float), fills["reason"].to_numpy(), t_text):
        oid = int(oid)
        lines = [f"<b>#{oid} {escape(kinds.get(oid, ''))}</b>",
                 f"{t} {short_number(qty, signed=True)} @ {short_number(price)}"]
        if not is_missing(reason) and reason:
            lines.append(escape(reason, wrap=HOVER_WIDTH))
        if oid in tags:
            lines.append(f"tag: {escape(tags[oid], wrap=HOVER_WIDTH)}")
        hover.append("<br>".join(lines))
    hover_arr = np.array(hover, dtype=object)
    qty = fills["qty"].to_numpy(dtype=float)
    price = fills["price"].to_numpy(dtype=float)
    out = []
    for name, mask, symbol_name, color in (("buys", qty > 0, "triangle-up", BUY_COLOR),
                                           ("sells", qty < 0, "triangle-down", SELL_COLOR)):
        if not mask.any():
            continue
        cls = scatter_class(go, int(mask.sum()))
        out.append(cls(x=x[mask], y=price[mask], mode="markers", name=name,
                       marker={"symbol": symbol_name, "color": color, "size": sizes[mask],
                               "line": {"width": 0.6, "color": "#333333"}},
                       hovertext=hover_arr[mask].tolist(), hoverinfo="text"))
    return out


def _session_times(result: Any) -> np.ndarray:
    """The x position of each ``perf`` row: the session label for daily runs; for intraday
    runs the time of the session's last simulated bar (so equity lines up with the bars)."""
    perf = result.perf
    x = naive_times(perf.index)
    prices = result.prices
    if not len(x) or not len(prices):
        return x
    bar_times = naive_times(prices["dt"])
    if is_daily(bar_times):
        return x
    days = bar_times.astype("M8[D]")
    last = pd.Series(bar_times).groupby(days).max()
    mapped = pd.Series(x.astype("M8[D]")).map(last).to_numpy(dtype="M8[ns]")
    return np.where(np.isnat(mapped), x, mapped)


def _axis_title(x: np.ndarray, result: Any) -> str:
    prices = result.prices
    times = naive_times(prices["dt"]) if len(prices) else x
    return "date" if is_daily(times) else "time (UTC)"


def _title(result: Any, symbol: str | None) -> str:
    m = result.metrics

    def metric(key: str) -> float:
        return m.get(key, np.nan) if hasattr(m, "get") else np.nan

    algo = result.settings.get("algorithm")
    head = f"{escape(algo)}: " if algo else ""
    on = f" — fills on {escape(symbol)}" if symbol else ""
    return (f"{head}total return {percent(metric('total_return'), **TEXT)}, "
            f"max drawdown {percent(metric('max_drawdown'), **TEXT)}, Sharpe {number(metric('sharpe'), **TEXT)}{on}")
