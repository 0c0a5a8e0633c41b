"""The order-lifecycle timeline: one row per order, what state it was in and when.

Built from ``result.orders`` and the event log ``result.order_events`` only. All orders of
one status share one trace (segments separated by gaps), so the figure has a fixed, small
number of traces however many orders the run placed; above a few thousand points the
traces switch to WebGL.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..finance.order import LIVE_NAMES, TERMINAL_NAMES
from ..formatting import describe_order, escape, is_daily, is_missing, short_number, time_labels
from ._deps import require_plotly
from .style import (
    BUY_COLOR,
    HOVER_WIDTH,
    LINK_COLOR,
    OCO_COLOR,
    SELL_COLOR,
    STATUS_COLORS,
    TERMINAL_SYMBOLS,
    apply_layout,
    check_status,
    check_time,
    fills_with_events,
    marker_sizes,
    naive_times,
    resolve_asset,
    run_end,
    scatter_class,
    side_of,
    time_axis_title,
)

NAT = np.datetime64("NaT", "ns")
NAT_I8 = int(np.datetime64("NaT", "ns").view(np.int64))
#: Rows shown at once before the y axis starts to scroll (pan) instead of the figure growing.
VISIBLE_ROWS = 40
ROW_PIXELS = 22
#: Hover text limits: trailing moves listed one by one up to this many, events per order overall.
MAX_TRAIL_LINES = 6
MAX_HOVER_LINES = 30
#: Above this many rows the hover text leaves out the link lines and shortens reasons (smaller figures).
COMPACT_ROWS = 150  # above this, segments get one-line hovers; the full history stays on the end marker
COMPACT_REASON = 70


def plot_order_timeline(result: Any, asset: Any = None, status: str | Iterable[str] | None = None,
                        start: Any = None, end: Any = None, max_orders: int | None = None,
                        height: int | None = None, title: str | None = None) -> Any:
    """Draw every order of ``result`` as one row of a timeline and return the plotly figure.

    Rows (y axis, labelled like ``#12 sell 100 stop-loss stop 95``) are in order of
    placement, except that a bracket's exits follow their entry and OCO legs sit together.
    Each row shows:

    * one horizontal segment per status interval, from the event that set the status to
      the next status change (a still-live status runs to the end of the run), coloured by
      status -- traces ``held``, ``open``, ``triggered``, ``partial``;
    * a marker where the order ended -- traces ``filled`` (circle), ``canceled`` (x),
      ``rejected`` (diamond), ``expired`` (square);
    * its fills -- trace ``fills``, triangles sized by quantity (green buy, red sell);
    * links -- trace ``bracket link`` (a dotted line from the parent row to the child row
      at the child's creation time) and ``OCO link`` (a dashed line joining the legs of a
      one-cancels-other group when it was formed).

    Hovering any of them lists every event of the order with its time and reason
    (``2018-01-16 canceled: OCO sibling #3 filled``).

    Filters: ``asset`` (a symbol), ``status`` (final status or a list of them), ``start``/
    ``end`` (keep orders alive at some time in the window, and zoom the x axis to it),
    ``max_orders`` (keep the first N rows). The figure grows with the number of rows up to
    a cap; beyond it the y axis shows the first rows and pans to the others.
    """
    go = require_plotly()
    orders = result.orders
    symbol = resolve_asset(result, asset)
    statuses = check_status(status)
    t0, t1 = check_time("start", start), check_time("end", end)
    if not np.isnat(t0) and not np.isnat(t1) and t0 > t1:
        raise ValueError(f"`start` ({start!r}) is after `end` ({end!r}); pass start <= end")
    if max_orders is not None and (isinstance(max_orders, bool) or not isinstance(max_orders, (int, np.integer))
                                   or max_orders < 1):
        raise ValueError(f"`max_orders` must be a positive integer, got {max_orders!r}")

    sel = orders
    if symbol is not None:
        sel = sel[sel["asset"] == symbol]
    if statuses is not None:
        sel = sel[sel["status"].isin(statuses)]
    if not np.isnat(t0) or not np.isnat(t1):
        created = naive_times(sel["created"])
        closed = naive_times(sel["closed_at"])
        keep = np.ones(len(sel), dtype=bool)
        if not np.isnat(t1):
            keep &= created <= t1
        if not np.isnat(t0):
            keep &= np.isnat(closed) | (closed >= t0)
        sel = sel[keep]
    row_ids = order_rows(sel)
    total = len(row_ids)
    if max_orders is not None:
        row_ids = row_ids[:max_orders]

    end_time = run_end(result)
    fig = go.Figure()
    if not row_ids:
        fig.add_annotation(text="no orders match the filters" if len(orders) else "this run placed no orders",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 14})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return apply_layout(fig, title=title or _title(0, 0, symbol, statuses), height=height or 300)

    parts = _TimelineData(result, sel.set_index("id", drop=False).loc[row_ids], end_time,
                          multi_asset=sel["asset"].nunique() > 1)
    fig.add_traces(parts.traces(go))
    n = len(row_ids)
    visible = min(n, VISIBLE_ROWS)
    fig_height = height or int(min(max(260, 130 + ROW_PIXELS * visible), 130 + ROW_PIXELS * VISIBLE_ROWS))
    apply_layout(fig, title=title or _title(n, total, symbol, statuses), height=fig_height,
                 dragmode="pan" if n > VISIBLE_ROWS else "zoom")
    fig.update_yaxes(tickmode="array", tickvals=np.arange(n), ticktext=np.array(parts.labels, dtype=object),
                     range=[visible - 0.5, -0.5], showgrid=True, gridcolor="#f0f0f0", zeroline=False,
                     automargin=True, tickfont={"size": 10, "family": "monospace"}, fixedrange=False)
    times = parts.all_times
    x_range = None
    if not np.isnat(t0) or not np.isnat(t1):
        lo = t0 if not np.isnat(t0) else times[~np.isnat(times)].min()
        hi = t1 if not np.isnat(t1) else end_time
        x_range = [pd.Timestamp(lo), pd.Timestamp(hi)]
    elif n > VISIBLE_ROWS:
        # start zoomed on the time span of the rows in view (double-click shows everything)
        lo, hi = parts.span_of_rows(visible)
        if not np.isnat(lo) and not np.isnat(hi):
            pad = max((hi - lo) * 0.03, np.timedelta64(1, "h"))
            x_range = [pd.Timestamp(lo - pad), pd.Timestamp(hi + pad)]
    fig.update_xaxes(type="date", title_text=time_axis_title(times), showgrid=True, gridcolor="#f0f0f0",
                     range=x_range)
    return fig


# ---------------------------------------------------------------- rows
def order_rows(orders: pd.DataFrame) -> list[int]:
    """Order ids in timeline row order: by id, with each order's children (bracket exits)
    right after it and the legs of an OCO group next to each other. Links to orders not in
    ``orders`` are ignored."""
    if not len(orders):
        return []
    ids = orders["id"].tolist()
    present = set(ids)
    parent = {i: int(p) for i, p in zip(ids, orders["parent_id"].tolist()) if p == p and int(p) in present}
    children = {i: [c for c in map(int, cs) if c in present]
                for i, cs in zip(ids, orders["child_ids"].tolist()) if _has_ids(cs)}
    oco = {i: sorted(c for c in map(int, cs) if c in present)
           for i, cs in zip(ids, orders["oco_ids"].tolist()) if _has_ids(cs)}
    rows: list[int] = []
    placed: set[int] = set()

    def place(oid: int) -> None:
        stack = [oid]
        while stack:
            cur = stack.pop()
            if cur in placed:
                continue
            placed.add(cur)
            rows.append(cur)
            # children first (in id order), then OCO siblings that have no parent of their own here
            nxt = [c for c in children.get(cur, ()) if c not in placed]
            nxt += [s for s in oco.get(cur, ()) if s not in placed and s not in parent]
            stack.extend(reversed(nxt))

    for oid in sorted(present):
        if oid not in placed and oid not in parent:
            place(oid)
    for oid in sorted(present):  # anything left (a cycle in the links) keeps its id order
        if oid not in placed:
            place(oid)
    return rows


class _TimelineData:
    """Flat arrays for the timeline traces, built in one pass over the selected orders' events.

    Times are handled as int64 nanoseconds (``NAT_I8`` separates segments) and turned into
    ``datetime64[ns]`` arrays for the traces."""

    def __init__(self, result: Any, orders: pd.DataFrame, end_time: np.datetime64, multi_asset: bool) -> None:
        ids = orders["id"].to_numpy().astype(np.int64)
        self.row_of = {oid: k for k, oid in enumerate(ids.tolist())}
        row_series = pd.Series(np.arange(len(ids)), index=ids)
        ev = result.order_events
        ev = ev[ev["order_id"].isin(ids)]
        order_key = row_series.reindex(ev["order_id"].to_numpy()).to_numpy(dtype=np.int64)
        pos = np.lexsort((ev["seq"].to_numpy(), order_key))
        ev = ev.iloc[pos]
        self.ev_times = naive_times(ev["dt"])
        self.daily = is_daily(self.ev_times)
        t_text = time_labels(self.ev_times, self.daily)
        compact = len(ids) > COMPACT_ROWS
        self.labels, headers = self._headers(orders, multi_asset, compact)

        n_rows = len(ids)
        bounds = np.searchsorted(order_key[pos], np.arange(n_rows + 1)).tolist()
        kinds = ev["kind"].tolist()
        after = ev["status_after"].tolist()
        qty = ev["qty"].to_numpy(dtype=float)
        price = ev["price"].to_numpy(dtype=float)
        stop = ev["stop"].to_numpy(dtype=float)
        limit = ev["limit"].to_numpy(dtype=float)
        reasons = ev["reason"].tolist()
        times = self.ev_times.view(np.int64).tolist()
        end_i8 = int(end_time.astype("M8[ns]").view(np.int64)) if not np.isnat(end_time) else None

        self.seg: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in LIVE_NAMES}
        self.term: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in TERMINAL_NAMES}
        seg, term = self.seg, self.term
        for row in range(n_rows):
            a, b = bounds[row], bounds[row + 1]
            lines = _event_lines(kinds, qty, price, stop, limit, reasons, t_text, a, b, compact)
            text = headers[row] + ("<br>" + "<br>".join(lines) if lines else "")
            cur, since, since_i = None, 0, a
            for i in range(a, b):
                st = after[i]
                if st != cur:
                    if cur in seg:
                        seg_text = text if not compact else (f"{headers[row]}<br>{cur} {t_text[since_i]} → "
                                                             f"{t_text[i]} (all events: hover the end marker)")
                        _add_segment(seg[cur], since, times[i], row, seg_text, mid=not compact)
                    cur, since, since_i = st, times[i], i
            if cur in seg:
                _add_segment(seg[cur], since, max(end_i8, since) if end_i8 is not None else since, row, text,
                             mid=not compact)
            elif cur in term:
                xs, ys, hs = term[cur]
                xs.append(times[b - 1])
                ys.append(row)
                hs.append(text)
        self.all_times = np.concatenate([self.ev_times, np.array([end_time], dtype="M8[ns]")])
        self._fills(result, ids, row_series)
        self._links(orders)

    def _headers(self, orders: pd.DataFrame, multi_asset: bool, compact: bool) -> tuple[list[str], list[str]]:
        """Row labels and the first hover lines of every order."""
        labels, headers = [], []
        row_of = self.row_of
        cols = ("id", "asset", "style", "role", "amount", "limit", "stop", "trail_amount", "trail_percent", "parent_id",
                "tag", "tif", "child_ids", "oco_ids")
        Row = namedtuple("Row", cols)
        for o in map(Row._make, zip(*(orders[c].tolist() for c in cols))):
            kind = escape(describe_order(o))
            side = f"{side_of(o.amount)} {short_number(abs(o.amount))}"
            has_parent = o.parent_id == o.parent_id and int(o.parent_id) in row_of
            asset = f"{escape(_short(o.asset))} " if multi_asset else ""
            labels.append(f"{'↳ ' if has_parent else ''}#{o.id} {asset}{side} {kind}")
            lines = [f"<b>#{o.id} {side} {escape(o.asset)} {kind}</b>"]
            if not is_missing(o.tag):
                lines.append(f"tag: {escape(o.tag, wrap=HOVER_WIDTH)}")
            if not compact:
                if o.tif and o.tif != "GTC":
                    lines.append(f"time in force: {escape(o.tif)}")
                if o.parent_id == o.parent_id:
                    lines.append(f"parent: #{int(o.parent_id)}")
                if _has_ids(o.child_ids):
                    lines.append("children: " + ", ".join(f"#{int(c)}" for c in o.child_ids))
                if _has_ids(o.oco_ids):
                    lines.append("one-cancels-other with " + ", ".join(f"#{int(c)}" for c in o.oco_ids))
            headers.append("<br>".join(lines))
        return labels, headers

    def _fills(self, result: Any, ids: np.ndarray, row_series: pd.Series) -> None:
        fills = result.fills
        fills = fills_with_events(result, fills[fills["order_id"].isin(ids)])
        self.fill_x = naive_times(fills["dt"])
        self.fill_y = row_series.reindex(fills["order_id"].to_numpy()).to_numpy(dtype=float)
        q = fills["qty"].to_numpy(dtype=float)
        self.fill_qty = q
        self.fill_size = marker_sizes(q, 6.0, 16.0)
        t_text = time_labels(self.fill_x, self.daily)
        slices = (fills.groupby("order_id", sort=False).cumcount().to_numpy() + 1).tolist()
        counts = fills.groupby("order_id", sort=False)["qty"].transform("size").to_numpy().tolist()
        self.fill_hover = np.array([
            f"<b>#{o} {'partial fill' if k == 'partial_fill' else 'fill'} {short_number(qq, signed=True)} @ "
            f"{short_number(p)}</b>"
            f"{f' (slice {s} of {c})' if c > 1 else ''}<br>{t}: {escape(r, wrap=HOVER_WIDTH)}"
            for o, k, qq, p, s, c, t, r in zip(fills["order_id"].tolist(), fills["event_kind"].tolist(), q.tolist(),
                                               fills["price"].tolist(), slices, counts, t_text,
                                               fills["reason"].tolist())
        ], dtype=object)

    def _links(self, orders: pd.DataFrame) -> None:
        created = naive_times(orders["created"]).view(np.int64).tolist()
        order_ids = orders["id"].tolist()
        created_of = dict(zip(order_ids, created))
        row_of = self.row_of
        self.link: tuple[list, list, list] = ([], [], [])
        self.oco: tuple[list, list, list] = ([], [], [])
        for oid, parent in zip(order_ids, orders["parent_id"].tolist()):
            if parent == parent and int(parent) in row_of:
                x = created_of[oid]
                _add_line(self.link, x, row_of[int(parent)], row_of[oid], f"bracket: #{int(parent)} → #{oid}")
        seen: set[int] = set()
        for oid, legs in zip(order_ids, orders["oco_ids"].tolist()):
            if oid in seen or not _has_ids(legs):
                continue
            group = sorted(g for g in {oid, *(int(x) for x in legs)} if g in row_of)
            seen.update(group)
            if len(group) < 2:
                continue
            rows = [row_of[g] for g in group]
            x = max(created_of[g] for g in group)
            _add_line(self.oco, x, min(rows), max(rows), "one-cancels-other: " + " ↔ ".join(f"#{g}" for g in group))

    def span_of_rows(self, n: int) -> tuple[np.datetime64, np.datetime64]:
        """Earliest and latest time drawn on the first ``n`` rows."""
        lo, hi = None, None
        for acc in (*self.seg.values(), *self.term.values()):
            xs, ys = acc[0], acc[1]
            for x, y in zip(xs, ys):
                if y is not None and y < n and x != NAT_I8:
                    lo = x if lo is None or x < lo else lo
                    hi = x if hi is None or x > hi else hi
        if lo is None:
            return NAT, NAT
        return np.int64(lo).view("M8[ns]"), np.int64(hi).view("M8[ns]")

    def traces(self, go: Any) -> list[Any]:
        """The figure's traces (only those with data)."""
        out = []
        rows = max(len(self.labels), 1)
        width = 9 if rows <= 25 else (6 if rows <= VISIBLE_ROWS * 2 else 4)
        # one trace type for the whole figure, so that layers stack the same way in SVG and WebGL
        total = sum(len(acc[0]) for acc in (*self.seg.values(), *self.term.values(), self.link, self.oco))
        cls = scatter_class(go, total + len(self.fill_x))
        for status, acc in self.seg.items():
            if not acc[0]:
                continue
            x, y, h = _arrays(acc)
            out.append(cls(
                x=x, y=y, mode="lines", name=status, legendgroup=status, hovertext=h, hoverinfo="text",
                line={"color": STATUS_COLORS[status], "width": width}, connectgaps=False))
        if len(self.fill_x):
            for name, mask, symbol, color in (("buy fills", self.fill_qty > 0, "triangle-up", BUY_COLOR),
                                              ("sell fills", self.fill_qty < 0, "triangle-down", SELL_COLOR)):
                if not mask.any():
                    continue
                out.append(cls(
                    x=self.fill_x[mask], y=self.fill_y[mask], mode="markers", name=name, legendgroup="fills",
                    marker={"color": color, "size": self.fill_size[mask], "symbol": symbol,
                            "line": {"width": 0.5, "color": "#333333"}, "opacity": 0.9},
                    hovertext=self.fill_hover[mask], hoverinfo="text"))
        for status, acc in self.term.items():
            if not acc[0]:
                continue
            x, y, h = _arrays(acc)
            symbol = TERMINAL_SYMBOLS[status]
            ring = symbol.endswith("-open")
            out.append(cls(
                x=x, y=y, mode="markers", name=status, legendgroup=status, hovertext=h, hoverinfo="text",
                marker={"color": STATUS_COLORS[status], "symbol": symbol, "size": 16 if ring else 10,
                        "line": {"width": 2 if ring else 0, "color": STATUS_COLORS[status]}}))
        for name, acc, color, dash in (("bracket link", self.link, LINK_COLOR, "dot"),
                                       ("OCO link", self.oco, OCO_COLOR, "dash")):
            if not acc[0]:
                continue
            x, y, h = _arrays(acc)
            out.append(cls(
                x=x, y=y, mode="lines", name=name, line={"color": color, "width": 1.2, "dash": dash},
                hovertext=h, hoverinfo="text", opacity=0.8))
        return out


# ---------------------------------------------------------------- helpers
def _add_segment(acc: tuple[list, list, list], x0: int, x1: int, row: int, text: str, mid: bool = True) -> None:
    """A status segment from ``x0`` to ``x1`` (int64 ns) on ``row``; with ``mid`` also a middle
    point, so that hovering the middle of a long segment finds it."""
    xs, ys, hs = acc
    if mid:
        xs.extend((x0, (x0 + x1) // 2, x1, NAT_I8))
        ys.extend((row, row, row, None))
        hs.extend((text, text, text, ""))
    else:
        xs.extend((x0, x1, NAT_I8))
        ys.extend((row, row, None))
        hs.extend((text, text, ""))


def _add_line(acc: tuple[list, list, list], x: int, y0: int, y1: int, text: str) -> None:
    xs, ys, hs = acc
    xs.extend((x, x, NAT_I8))
    ys.extend((y0, y1, None))
    hs.extend((text, text, ""))


def _arrays(acc: tuple[list, list, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, rows, hover texts) lists -> arrays for a trace (NaT/NaN separators)."""
    xs, ys, hs = acc
    x = np.array(xs, dtype=np.int64).view("M8[ns]")
    y = np.array(ys, dtype=float)
    return x, y, np.array(hs, dtype=object)


def _has_ids(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0


def _event_lines(kinds: Sequence[str], qty: np.ndarray, price: np.ndarray, stop: np.ndarray, limit: np.ndarray,
                 reasons: Sequence[Any], t_text: Sequence[str], a: int, b: int, compact: bool = False) -> list[str]:
    """Hover lines of one order's events ``a:b`` (``time kind: reason``); long runs of
    trailing moves are summarised and very long histories keep their first and last lines.
    ``compact`` shortens long reasons."""
    trailed = kinds[a:b].count("trailed")
    lines = []
    summarised = False
    for i in range(a, b):
        k = kinds[i]
        if k == "trailed" and trailed > MAX_TRAIL_LINES:
            if not summarised:
                idx = [j for j in range(a, b) if kinds[j] == "trailed"]
                lines.append(f"{t_text[idx[0]]} .. {t_text[idx[-1]]} trailed {trailed} times: stop "
                             f"{short_number(stop[idx[0]])} → {short_number(stop[idx[-1]])}")
                summarised = True
            continue
        what = k.replace("_", " ")
        if k == "fill" or k == "partial_fill":
            what += f" {short_number(qty[i], signed=True)} @ {short_number(price[i])}"
        elif k == "trailed":
            what += f" → {short_number(stop[i])}"
        elif k == "updated":
            levels = [f"stop {short_number(stop[i])}" if stop[i] == stop[i] else "",
                      f"limit {short_number(limit[i])}" if limit[i] == limit[i] else ""]
            what += " (" + ", ".join(x for x in levels if x) + ")" if any(levels) else ""
        reason = reasons[i]
        if is_missing(reason) or not reason:
            lines.append(f"{t_text[i]} {what}")
            continue
        if compact and len(reason) > COMPACT_REASON:
            reason = reason[: COMPACT_REASON - 1] + "…"
        lines.append(f"{t_text[i]} {what}: {escape(reason, wrap=HOVER_WIDTH)}")
    if len(lines) > MAX_HOVER_LINES:
        keep = MAX_HOVER_LINES // 2
        lines = [*lines[:keep], f"… {len(lines) - 2 * keep} more events …", *lines[-keep:]]
    return lines


def _short(text: Any, width: int = 14) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def _title(shown: int, total: int, symbol: str | None, statuses: list[str] | None) -> str:
    what = f"{shown} orders" if shown == total else f"{shown} of {total} orders"
    bits = [f"Order timeline — {what}"]
    if symbol is not None:
        bits.append(f"on {escape(symbol)}")
    if statuses:
        bits.append(f"(final status {', '.join(statuses)})")
    if shown > VISIBLE_ROWS:
        bits.append(f"<br><sup>first {VISIBLE_ROWS} rows in view: drag to pan, double-click to show all</sup>")
    return " ".join(bits)
