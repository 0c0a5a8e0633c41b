"""Trailing stops over price: each trailing order's stop level as it moved, where it
triggered and filled, and the levels of the other working orders on the same asset.

The levels come from the event log only: every event carries the order's ``stop`` and
``limit`` after it, and every move of a trailing stop is a ``trailed`` event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..finance.order import LIVE_NAMES, TERMINAL_NAMES
from ..formatting import describe_order, escape, is_daily, is_missing, short_number, time_labels
from ._deps import require_plotly
from .style import (
    BUY_COLOR,
    HOVER_WIDTH,
    LEVEL_COLORS,
    PRICE_COLOR,
    SELL_COLOR,
    STATUS_COLORS,
    TRAIL_COLOR,
    apply_layout,
    envelope,
    fills_with_events,
    marker_sizes,
    most_traded,
    naive_times,
    resolve_asset,
    run_end,
    scatter_class,
    side_of,
    time_axis_title,
)

TRAILING_STYLES = ("trailing_stop", "trailing_stop_limit")
#: Final statuses other than filled: a trailing stop that ended this way gets an end marker.
CLOSED_UNFILLED = tuple(s for s in TERMINAL_NAMES if s != "filled")
NAT = np.datetime64("NaT", "ns")
#: Up to this many trailing orders get a trace (and legend entry) each; more share one trace.
MAX_SEPARATE_TRAILS = 12
TRAIL_PALETTE = ("#e377c2", "#9467bd", "#17becf", "#ff7f0e", "#8c564b", "#bcbd22")
ROLE_NAMES = {"entry": "entry levels", "stop_loss": "stop-loss levels", "take_profit": "take-profit levels",
              "other": "other order levels"}


def plot_trailing_stops(result: Any, asset: Any = None, candles: bool = True, max_candles: int = 3_000,
                        show_orders: bool = True, height: int | None = None, title: str | None = None) -> Any:
    """Return a plotly figure of the price of ``asset`` with its trailing stops drawn over it.

    ``asset`` defaults to the asset with the most trailing-stop orders (else the most traded
    one). Traces:

    * the price: a candlestick (``candles=True`` and at most ``max_candles`` bars) or a
      ``close`` line;
    * each trailing-stop order's level as a step line (``line_shape='hv'``) through the
      ``stop`` of every one of its events, from placement to trigger, fill or cancel (a
      still-working order runs to the end of the run); named ``#5 trailing stop`` when
      there are few such orders, else all share one ``trailing stops`` trace. Trailing
      stop-limit orders also get their limit as a dotted step line (``trailing limits``);
    * ``trigger`` markers where a trailing order's stop was reached (its ``triggered``
      event, or the fill of an order that filled straight from its stop), ``trailing
      fills`` at the fill prices, and ``ended`` markers where one was canceled or expired;
    * with ``show_orders=True``, the other working orders' stop and limit levels as
      horizontal segments over the periods they were live (held, open, triggered or
      partial), split by role: ``entry levels``, ``stop-loss levels``, ``take-profit
      levels``, ``other order levels``; and their fills (``other fills``).

    Hover text gives each event's time, the level and its reason. A run without trailing
    stops still gets the price, the other orders and a title saying there were none.
    """
    go = require_plotly()
    orders = result.orders
    if asset is not None:
        symbol = resolve_asset(result, asset)
    else:
        trailing_all = orders[orders["style"].isin(TRAILING_STYLES)]
        symbol = (str(trailing_all["asset"].value_counts().index[0]) if len(trailing_all)
                  else most_traded(result))
    fig = go.Figure()
    if symbol is None:
        fig.add_annotation(text="no prices in this run", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return apply_layout(fig, title=title or "No trailing-stop orders in this run", height=height or 300)

    prices = result.prices
    prices = prices[prices["asset"] == symbol] if len(prices) else prices
    end_time = run_end(result)
    own = orders[orders["asset"] == symbol]
    trailing = own[own["style"].isin(TRAILING_STYLES)]
    others = own[~own["style"].isin(TRAILING_STYLES)]
    ev = result.order_events
    ev = ev[ev["order_id"].isin(own["id"])]
    ev = ev.sort_values("seq", kind="stable")
    t_all = naive_times(ev["dt"])
    daily = is_daily(naive_times(prices["dt"])) if len(prices) else is_daily(t_all)

    fig.add_traces(_price_traces(go, prices, symbol, candles, max_candles))
    fig.add_traces(_trailing_traces(go, result, trailing, ev, t_all, end_time, daily))
    if show_orders:
        fig.add_traces(_level_traces(go, others, ev, t_all, end_time, daily))
        fig.add_traces(_fill_markers(go, result, others["id"], "other fills", daily, small=True))

    n = len(trailing)
    if title is None:
        title = (f"Trailing stops on {escape(symbol)} — {n} order{'s' if n != 1 else ''}" if n
                 else f"No trailing-stop orders in this run on {escape(symbol)} — price"
                      + (" and the other orders' levels" if show_orders and len(others) else ""))
    apply_layout(fig, title=title, height=height or 560, hovermode="closest", legend="right")
    x_title = time_axis_title(naive_times(prices["dt"])) if len(prices) else "time"
    fig.update_xaxes(type="date", title_text=x_title, rangeslider_visible=False, showgrid=True, gridcolor="#f0f0f0")
    fig.update_yaxes(title_text=f"{escape(symbol)} price", showgrid=True, gridcolor="#f0f0f0")
    return fig


# ---------------------------------------------------------------- traces
def _price_traces(go: Any, prices: pd.DataFrame, symbol: str, candles: bool, max_candles: int) -> list[Any]:
    if not len(prices):
        return []
    x = naive_times(prices["dt"])
    o, h, lo, c = (prices[f].to_numpy(dtype=float) for f in ("open", "high", "low", "close"))
    has_ohlc = bool(np.nanmax(np.abs(h - lo)) > 0) if len(h) else False
    if candles and len(prices) <= max_candles and has_ohlc:
        return [go.Candlestick(x=x, open=o, high=h, low=lo, close=c, name=escape(symbol),
                               increasing={"line": {"color": "#26a69a", "width": 1}},
                               decreasing={"line": {"color": "#ef5350", "width": 1}}, opacity=0.85)]
    x, c = envelope(x, c)  # many bars: each bucket's low and high point, in order
    cls = scatter_class(go, len(x))
    return [cls(x=x, y=c, mode="lines", name=f"{escape(symbol)} close", line={"color": PRICE_COLOR, "width": 1.2},
                hovertemplate="%{x}<br>close %{y:,.4~f}<extra></extra>")]


def _trailing_traces(go: Any, result: Any, trailing: pd.DataFrame, ev: pd.DataFrame, t_all: np.ndarray,
                     end_time: np.datetime64, daily: bool) -> list[Any]:
    if not len(trailing):
        return []
    separate = len(trailing) <= MAX_SEPARATE_TRAILS
    kinds = ev["kind"].to_numpy()
    oids = ev["order_id"].to_numpy()
    stops = ev["stop"].to_numpy(dtype=float)
    limits = ev["limit"].to_numpy(dtype=float)
    after = ev["status_after"].to_numpy()
    reasons = ev["reason"].to_numpy()
    t_text = time_labels(t_all, daily)
    positions = pd.Series(np.arange(len(oids))).groupby(oids).indices if len(oids) else {}
    empty = np.zeros(0, dtype=np.int64)
    out: list[Any] = []
    stop_acc: tuple[list, list, list] = ([], [], [])
    limit_acc: tuple[list, list, list] = ([], [], [])
    trig: tuple[list, list, list] = ([], [], [])
    ended: tuple[list, list, list, list] = ([], [], [], [])
    for k, o in enumerate(trailing.itertuples(index=False)):
        idx = np.asarray(positions.get(o.id, empty), dtype=np.int64)
        kind = describe_order(o)
        head = f"<b>#{o.id} {side_of(o.amount)} {short_number(abs(o.amount))} {escape(kind)}</b>"
        if not is_missing(o.tag):
            head += f"<br>tag: {escape(o.tag, wrap=HOVER_WIDTH)}"
        has_stop = idx[~np.isnan(stops[idx])]
        xs = list(t_all[has_stop])
        ys = list(stops[has_stop])
        # a 'trailed' event's reason repeats the level: keep only what it moved from (lighter figures)
        hs = [f"{head}<br>{t_text[i]} {kinds[i].replace('_', ' ')}: stop {short_number(stops[i])}"
              + (_level_note(kinds[i], reasons[i]) if not is_missing(reasons[i]) and reasons[i] else "")
              for i in has_stop]
        live = len(idx) and after[idx[-1]] in LIVE_NAMES
        if live and len(xs) and not np.isnat(end_time) and end_time > xs[-1]:
            xs.append(end_time)
            ys.append(ys[-1])
            hs.append(f"{head}<br>still working at the end of the run: stop {short_number(ys[-1])}")
        lim_idx = idx[~np.isnan(limits[idx])] if o.style == "trailing_stop_limit" else idx[:0]
        lx, ly = list(t_all[lim_idx]), list(limits[lim_idx])
        lh = [f"{head}<br>{t_text[i]} {kinds[i].replace('_', ' ')}: limit {short_number(limits[i])}" for i in lim_idx]
        if live and len(lx) and not np.isnat(end_time) and end_time > lx[-1]:
            lx.append(end_time)
            ly.append(ly[-1])
            lh.append(f"{head}<br>still working at the end of the run: limit {short_number(ly[-1])}")
        color = TRAIL_PALETTE[k % len(TRAIL_PALETTE)] if separate else TRAIL_COLOR
        if separate:
            if xs:
                cls = scatter_class(go, len(xs))
                out.append(cls(x=np.array(xs, dtype="M8[ns]"), y=np.array(ys, dtype=float), mode="lines+markers",
                               line={"shape": "hv", "color": color, "width": 2}, marker={"size": 4, "color": color},
                               name=f"#{o.id} {o.style.replace('_', ' ')}", legendgroup=f"trail{o.id}",
                               hovertext=hs, hoverinfo="text"))
            if lx:
                out.append(go.Scatter(x=np.array(lx, dtype="M8[ns]"), y=np.array(ly, dtype=float), mode="lines",
                                      line={"shape": "hv", "color": color, "width": 1.2, "dash": "dot"},
                                      name=f"#{o.id} limit", legendgroup=f"trail{o.id}", hovertext=lh,
                                      hoverinfo="text"))
        else:
            _extend(stop_acc, xs, ys, hs)
            _extend(limit_acc, lx, ly, lh)
        # the trigger: a 'triggered' event, else the event that filled the order from its stop
        trig_idx = idx[kinds[idx] == "triggered"]
        if not len(trig_idx):
            fills_here = idx[np.isin(kinds[idx], ("fill", "partial_fill"))]
            trig_idx = fills_here[:1]
        for i in trig_idx:
            if stops[i] == stops[i]:
                trig[0].append(t_all[i])
                trig[1].append(stops[i])
                trig[2].append(f"{head}<br>{t_text[i]} stop {short_number(stops[i])} reached"
                               + (f"<br>{escape(reasons[i], wrap=HOVER_WIDTH)}" if not is_missing(reasons[i]) else ""))
        if len(idx) and after[idx[-1]] in CLOSED_UNFILLED and len(has_stop):
            i = idx[-1]
            ended[0].append(t_all[i])
            ended[1].append(stops[has_stop[-1]])
            ended[2].append(f"{head}<br>{t_text[i]} {after[i]}"
                            + (f": {escape(reasons[i], wrap=HOVER_WIDTH)}" if not is_missing(reasons[i]) else ""))
            ended[3].append(STATUS_COLORS.get(after[i], "#7f7f7f"))
    if stop_acc[0]:
        cls = scatter_class(go, len(stop_acc[0]))
        out.append(cls(x=np.array(stop_acc[0], dtype="M8[ns]"), y=np.array(stop_acc[1], dtype=float), mode="lines",
                       line={"shape": "hv", "color": TRAIL_COLOR, "width": 1.8}, name="trailing stops",
                       hovertext=stop_acc[2], hoverinfo="text", connectgaps=False))
    if limit_acc[0]:
        cls = scatter_class(go, len(limit_acc[0]))
        out.append(cls(x=np.array(limit_acc[0], dtype="M8[ns]"), y=np.array(limit_acc[1], dtype=float),
                       mode="lines", line={"shape": "hv", "color": TRAIL_COLOR, "width": 1, "dash": "dot"},
                       name="trailing limits", hovertext=limit_acc[2], hoverinfo="text", connectgaps=False))
    if trig[0]:
        cls = scatter_class(go, len(trig[0]))
        out.append(cls(x=np.array(trig[0], dtype="M8[ns]"), y=np.array(trig[1], dtype=float), mode="markers",
                       name="trigger", marker={"symbol": "star", "size": 19 if separate else 10,
                                               "color": STATUS_COLORS["triggered"],
                                               "line": {"width": 1, "color": "#333333"}},
                       hovertext=trig[2], hoverinfo="text"))
    out.extend(_fill_markers(go, result, trailing["id"], "trailing fills", daily, small=False))
    if ended[0]:
        out.append(go.Scatter(x=np.array(ended[0], dtype="M8[ns]"), y=np.array(ended[1], dtype=float),
                              mode="markers", name="ended (canceled/expired)",
                              marker={"symbol": "x", "size": 10, "color": ended[3]}, hovertext=ended[2],
                              hoverinfo="text"))
    return out


def _level_traces(go: Any, others: pd.DataFrame, ev: pd.DataFrame, t_all: np.ndarray, end_time: np.datetime64,
                  daily: bool) -> list[Any]:
    """Horizontal segments of the stop and limit levels of non-trailing orders while live."""
    if not len(others):
        return []
    ids = others["id"].to_numpy()
    mask = np.isin(ev["order_id"].to_numpy(), ids)
    sub = ev[mask]
    t = t_all[mask]
    t_text = time_labels(t, daily)
    oids = sub["order_id"].to_numpy()
    after = sub["status_after"].to_numpy()
    stops = sub["stop"].to_numpy(dtype=float)
    limits = sub["limit"].to_numpy(dtype=float)
    kinds = sub["kind"].to_numpy()
    reasons = sub["reason"].to_numpy()
    order_pos = np.argsort(oids, kind="stable")
    accs: dict[str, tuple[list, list, list]] = {r: ([], [], []) for r in ROLE_NAMES}
    info = {int(o.id): o for o in others.itertuples(index=False)}
    bounds = np.flatnonzero(np.diff(oids[order_pos])) + 1
    for group in np.split(order_pos, bounds):
        if not len(group):
            continue
        o = info[int(oids[group[0]])]
        role = o.role if not is_missing(o.role) and o.role in ROLE_NAMES else ("entry" if o.child_ids else "other")
        kind = describe_order(o)
        head = f"<b>#{o.id} {side_of(o.amount)} {short_number(abs(o.amount))} {escape(kind)}</b>"
        for levels, label in ((stops, "stop"), (limits, "limit")):
            start_i = -1
            for j, i in enumerate(group):
                live = after[i] in LIVE_NAMES and levels[i] == levels[i]
                same = start_i >= 0 and levels[i] == levels[start_i]
                if start_i >= 0 and not (live and same):
                    _segment(accs[role], t[start_i], t[i], levels[start_i], head, label, t_text[start_i],
                             after[start_i], kinds[start_i], reasons[start_i])
                    start_i = -1
                if live and start_i < 0:
                    start_i = i
                if j == len(group) - 1 and start_i >= 0:
                    stop_t = end_time if not np.isnat(end_time) and end_time > t[start_i] else t[start_i]
                    _segment(accs[role], t[start_i], stop_t, levels[start_i], head, label, t_text[start_i],
                             after[start_i], kinds[start_i], reasons[start_i])
    out = []
    for role, (xs, ys, hs) in accs.items():
        if not xs:
            continue
        cls = scatter_class(go, len(xs))
        out.append(cls(x=np.array(xs, dtype="M8[ns]"), y=np.array(ys, dtype=float), mode="lines",
                       name=ROLE_NAMES[role], line={"color": LEVEL_COLORS[role], "width": 1.5, "dash": "dash"},
                       hovertext=hs, hoverinfo="text", connectgaps=False, opacity=0.85))
    return out


def _fill_markers(go: Any, result: Any, order_ids: Any, name: str, daily: bool, small: bool) -> list[Any]:
    fills = result.fills
    fills = fills[fills["order_id"].isin(list(order_ids))]
    if not len(fills):
        return []
    fills = fills_with_events(result, fills)
    x = naive_times(fills["dt"])
    q = fills["qty"].to_numpy(dtype=float)
    p = fills["price"].to_numpy(dtype=float)
    t_text = time_labels(x, daily)
    hover = [f"<b>#{int(o)} {'partial fill' if k == 'partial_fill' else 'fill'} {short_number(qq, signed=True)} @ "
             f"{short_number(pp)}</b>"
             f"<br>{t}" + (f": {escape(r, wrap=HOVER_WIDTH)}" if not is_missing(r) else "")
             for o, k, qq, pp, t, r in zip(fills["order_id"].to_numpy(), fills["event_kind"].to_numpy(), q, p, t_text,
                                           fills["reason"].to_numpy())]
    sizes = marker_sizes(q, 6.0, 11.0) if small else marker_sizes(q, 7.0, 13.0)
    cls = scatter_class(go, len(x))
    return [cls(x=x, y=p, mode="markers", name=name,
                marker={"symbol": np.where(q > 0, "triangle-up", "triangle-down"),
                        "color": np.where(q > 0, BUY_COLOR, SELL_COLOR), "size": sizes,
                        "opacity": 0.6 if small else 1.0, "line": {"width": 0.6, "color": "#333333"}},
                hovertext=hover, hoverinfo="text")]


def _segment(acc: tuple[list, list, list], x0: Any, x1: Any, level: float, head: str, label: str, t0: str,
             status: str, kind: str, reason: Any) -> None:
    text = (f"{head}<br>{label} {short_number(level)} ({status} from {t0})<br>{kind.replace('_', ' ')}"
            + (f": {escape(reason, wrap=HOVER_WIDTH)}" if not is_missing(reason) and reason else ""))
    acc[0].extend((x0, x1, NAT))
    acc[1].extend((level, level, np.nan))
    acc[2].extend((text, text, ""))


def _extend(acc: tuple[list, list, list], xs: list, ys: list, hs: list) -> None:
    if not xs:
        return
    acc[0].extend([*xs, NAT])
    acc[1].extend([*ys, np.nan])
    acc[2].extend([*hs, ""])


def _level_note(kind: str, reason: str) -> str:
    """The hover line for an event's reason; for a trailing move only its reference
    ("from high 104.0000"), since the level itself is already shown."""
    if kind == "trailed" and " from " in reason:
        return f" ({escape(reason.split(' from ', 1)[1])})"
    return f"<br>{escape(reason, wrap=HOVER_WIDTH)}"
