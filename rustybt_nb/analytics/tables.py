"""Tables of orders and of partial fills: plain DataFrames, and pandas Stylers for the notebook.

Every user-controlled string (asset names, tags, reasons) is HTML-escaped in the styled
output; the DataFrames keep the raw values.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..formatting import describe_order, escape, is_daily, is_missing, number, role_text, short_number, time_labels
from ._deps import require_plotly, require_styler
from .style import (
    BUY_COLOR,
    SELL_COLOR,
    STATUS_BACKGROUNDS,
    STATUS_COLORS,
    apply_layout,
    check_status,
    fills_with_events,
    naive_times,
    resolve_asset,
)

PARTIAL_FILL_COLUMNS = ["order_id", "asset", "slice", "dt", "qty", "price", "bar_volume", "volume_cap",
                        "cum_filled", "remaining", "vwap", "arrival_price", "slippage_bps"]
ORDER_TABLE_COLUMNS = ["id", "asset", "side", "type", "amount", "filled", "limit", "stop", "status", "reason",
                       "created", "closed_at", "avg_price", "tag", "links"]
BAND_COLOR = "#f6f8fa"
GROUP_BORDER = "2px solid #b0b7bf"
TABLE_STYLES = [
    {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: 600; padding: 4px 0;"},
    {"selector": "th", "props": "text-align: right; padding: 3px 8px; font-size: 12px; white-space: nowrap;"},
    {"selector": "td", "props": "padding: 3px 8px; font-size: 12px; font-variant-numeric: tabular-nums;"},
    {"selector": "th.index_name", "props": "text-align: left;"},
]


#: Cell formats: a signed quantity, and a price with cents always and up to 4 decimals (a
#: price column reads evenly). Missing values stay blank.
_SIGNED = partial(short_number, signed=True, na="")
_PRICE = partial(number, decimals=4, min_decimals=2, na="")

_TEXT_STYLER: type | None = None


def _styled(frame: pd.DataFrame) -> Any:
    """``frame.style`` whose plain-text form (``repr``, what a terminal or a text-only notebook
    output shows) is the caption and the table as text, instead of the object's address."""
    global _TEXT_STYLER
    if _TEXT_STYLER is None:
        from pandas.io.formats.style import Styler

        class TextStyler(Styler):
            def __repr__(self) -> str:
                caption = html.unescape(self.caption) if isinstance(self.caption, str) else ""
                hidden = self.hide_index_[0] if isinstance(self.hide_index_, list) else self.hide_index_
                body = _formatted(self).to_string(index=not hidden)
                return f"{caption}\n{body}" if caption else body

        _TEXT_STYLER = TextStyler
    return _TEXT_STYLER(frame)


def _formatted(styler: Any) -> pd.DataFrame:
    """The styler's cells as the text its formatters show (HTML entities decoded)."""
    data = styler.data
    funcs = getattr(styler, "_display_funcs", None)
    if funcs is None:  # a pandas without per-cell formatters: the raw values
        return data
    cells = [[html.unescape(str(funcs[(r, c)](data.iat[r, c]))) for c in range(data.shape[1])]
             for r in range(data.shape[0])]
    return pd.DataFrame(cells, index=data.index, columns=data.columns)


# ================================================================ partial fills
def partial_fill_table(result: Any, asset: Any = None) -> pd.DataFrame:
    """Every order that filled in more than one slice, one row per slice.

    Columns: ``order_id``, ``asset``, ``slice`` (1, 2, ...), ``dt``, ``qty`` (signed, as in
    ``result.fills``), ``price``, ``bar_volume``, ``volume_cap`` (``floor(volume_limit x
    bar_volume)``, the most that could fill on that bar for the asset; NaN without a volume
    limit or without volume data), ``cum_filled`` (signed, after the slice), ``remaining``
    (what the order still wanted after the slice, signed), and per order (repeated on each
    of its rows): ``vwap`` (volume-weighted average fill price), ``arrival_price`` (the open
    of the first bar the order could fill on) and ``slippage_bps`` (``vwap`` against
    ``arrival_price`` in basis points, positive when worse for the order's side: paid more
    on a buy, received less on a sell).
    """
    symbol = resolve_asset(result, asset)
    fills = result.fills
    if symbol is not None:
        fills = fills[fills["asset"] == symbol]
    counts = fills.groupby("order_id", sort=False)["qty"].transform("size") if len(fills) else fills["qty"]
    fills = fills[counts.to_numpy() > 1] if len(fills) else fills
    if not len(fills):
        out = pd.DataFrame({c: pd.Series(dtype=float) for c in PARTIAL_FILL_COLUMNS})
        out["order_id"] = out["order_id"].astype(np.int64)
        out["slice"] = out["slice"].astype(np.int64)
        out["asset"] = out["asset"].astype(object)
        out["dt"] = pd.Series(dtype=result.fills["dt"].dtype)
        return out
    fills = fills_with_events(result, fills)
    # slices in time order within each order, orders in the order they first filled
    first_seen = fills.groupby("order_id", sort=False).ngroup()
    fills = fills.assign(_g=first_seen.to_numpy(), _pos=np.arange(len(fills)))
    fills = fills.sort_values(["_g", "_pos"], kind="stable")
    g = fills.groupby("order_id", sort=False)
    qty = fills["qty"].to_numpy(dtype=float)
    price = fills["price"].to_numpy(dtype=float)
    cum = g["qty"].cumsum().to_numpy(dtype=float)
    orders = result.orders.set_index("id")
    amount_now = fills["order_id"].map(orders["amount"]).to_numpy(dtype=float)
    amount_then = fills["order_amount"].to_numpy(dtype=float)
    amount = np.where(np.isnan(amount_then), amount_now, amount_then)
    volume = fills["bar_volume"].to_numpy(dtype=float)
    limit = result.settings.get("volume_limit")
    if limit is None or limit != limit:
        cap = np.full(len(fills), np.nan)
    else:
        with np.errstate(invalid="ignore"):
            cap = np.where((volume == volume) & (volume > 0), np.floor(float(limit) * volume), np.nan)
    notional = pd.Series(qty * price, index=fills.index).groupby(fills["order_id"], sort=False).transform("sum")
    total = g["qty"].transform("sum")
    vwap = (notional / total).to_numpy(dtype=float)
    arrival = _arrival_prices(result, fills["order_id"].to_numpy(), orders)
    side = np.sign(amount)
    with np.errstate(invalid="ignore", divide="ignore"):
        slip = side * (vwap - arrival) / arrival * 1e4
    out = pd.DataFrame({
        "order_id": fills["order_id"].to_numpy(dtype=np.int64),
        "asset": fills["asset"].to_numpy(dtype=object),
        "slice": g.cumcount().to_numpy(dtype=np.int64) + 1,
        "dt": fills["dt"].to_numpy(),
        "qty": qty,
        "price": price,
        "bar_volume": volume,
        "volume_cap": cap,
        "cum_filled": cum,
        "remaining": amount - cum,
        "vwap": vwap,
        "arrival_price": arrival,
        "slippage_bps": slip,
    })
    out["dt"] = out["dt"].astype(result.fills["dt"].dtype)
    return out


def _arrival_prices(result: Any, order_ids: np.ndarray, orders: pd.DataFrame) -> np.ndarray:
    """The open of each order's first fillable bar (NaN when that bar was not simulated)."""
    prices = result.prices
    if not len(prices):
        return np.full(len(order_ids), np.nan)
    opens = prices.set_index(["asset", "bar"])["open"]
    opens = opens[~opens.index.duplicated()]
    keys = pd.MultiIndex.from_arrays([orders.loc[order_ids, "asset"].to_numpy(),
                                      orders.loc[order_ids, "first_bar"].to_numpy()])
    return opens.reindex(keys).to_numpy(dtype=float)


def _partial_fill_display(result: Any, asset: Any, caption: str | None
                          ) -> tuple[pd.DataFrame, str, np.ndarray, np.ndarray]:
    """The rows both partial-fill views show: (display frame indexed by (order label,
    slice), caption, the order id of each row, whether each row is its order's first)."""
    table = partial_fill_table(result, asset)
    limit = result.settings.get("volume_limit")
    limit_text = ("no volume limit (orders fill whole when their price is reached)" if limit is None
                  else f"volume limit {float(limit):.4g} of bar volume per bar and asset")
    where = f" on {resolve_asset(result, asset)}" if asset is not None else ""
    if not len(table):
        display = pd.DataFrame(columns=["dt", "qty", "price", "bar volume", "volume cap", "cum filled", "remaining",
                                        "vwap", "arrival", "slippage (bps)"],
                               index=pd.MultiIndex.from_arrays([[], []], names=["order", "slice"]))
        text = caption or f"No order filled in several slices{where} ({limit_text})."
        return display, text, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    orders = result.orders.set_index("id")
    ids = table["order_id"].to_numpy()
    labels = {}
    for oid in pd.unique(ids):
        o = orders.loc[oid]
        kind = describe_order(o)
        labels[oid] = (f"#{oid} {'buy' if o['amount'] > 0 else 'sell'} {abs(o['amount']):g} {o['asset']} {kind} "
                       f"({o['status']})")
    first = table["slice"].to_numpy() == 1
    daily = is_daily(naive_times(table["dt"]))
    display = pd.DataFrame({
        "dt": time_labels(naive_times(table["dt"]), daily),
        "qty": table["qty"].to_numpy(),
        "price": table["price"].to_numpy(),
        "bar volume": table["bar_volume"].to_numpy(),
        "volume cap": table["volume_cap"].to_numpy(),
        "cum filled": table["cum_filled"].to_numpy(),
        "remaining": table["remaining"].to_numpy(),
        "vwap": np.where(first, table["vwap"].to_numpy(), np.nan),
        "arrival": np.where(first, table["arrival_price"].to_numpy(), np.nan),
        "slippage (bps)": np.where(first, table["slippage_bps"].to_numpy(), np.nan),
    }, index=pd.MultiIndex.from_arrays([[labels[i] for i in ids], table["slice"].to_numpy()],
                                       names=["order", "slice"]))
    n_orders = len(labels)
    text = caption or (f"Partial fills{where}: {n_orders} order{'s' if n_orders != 1 else ''} filled in "
                       f"{len(table)} slices ({limit_text}). Slippage is the VWAP against the open of the first "
                       f"bar the order could fill on; positive = worse for the order.")
    return display, text, ids, first


def _slippage_text(v: Any) -> str:
    return "" if v != v else f"{v:+.1f}"


def plot_partial_fills(result: Any, asset: Any = None, height: int | None = None) -> Any:
    """The partial-fill table as a plotly figure (a ``go.Table``): the rows and caption of
    :func:`partial_fills`, for live figure panels. Empty, with a caption that says so, when
    no order filled in several slices."""
    go = require_plotly()
    display, text, ids, first = _partial_fill_display(result, asset, None)
    labels = [label if is_first else "" for label, is_first in zip(display.index.get_level_values(0), first)]
    formats = {"qty": _SIGNED, "cum filled": _SIGNED, "remaining": _SIGNED, "price": _PRICE, "vwap": _PRICE,
               "arrival": _PRICE, "bar volume": partial(number, decimals=0, na=""),
               "volume cap": partial(number, decimals=0, na=""), "slippage (bps)": _slippage_text}
    columns = [labels, [str(k) for k in display.index.get_level_values(1)]]
    for name in display.columns:
        fmt = formats.get(name, str)
        columns.append([fmt(v) for v in display[name].tolist()])
    band = ["white" if k % 2 == 0 else BAND_COLOR for k in pd.factorize(ids)[0]] if len(ids) else []
    fig = go.Figure(go.Table(
        header={"values": ["order", "slice", *display.columns], "align": "left", "font": {"size": 11}},
        cells={"values": columns, "align": ["left", "right", "left"] + ["right"] * (len(display.columns) - 1),
               "fill": {"color": [band]}, "font": {"size": 11}},
        columnwidth=[4, 1, 2] + [1.3] * (len(display.columns) - 1)))
    rows = len(display)
    apply_layout(fig, title=escape(text, wrap=140), height=height or min(900, 140 + 24 * max(rows, 1)), legend="top")
    return fig


def partial_fills(result: Any, asset: Any = None, caption: str | None = None) -> Any:
    """A styled table (pandas ``Styler``) of :func:`partial_fill_table`: one block of rows per
    order (the order's label spans its slices; blocks are banded and separated by a rule),
    quantities and prices formatted, the per-order VWAP, arrival price and slippage on the
    order's first row, slippage coloured (red = worse than arrival). The caption counts
    orders and slices and states the volume limit; with no partial fills the table is
    empty and the caption says that no order filled in several slices. Asset names are
    HTML-escaped."""
    require_styler()
    display, text, ids, first = _partial_fill_display(result, asset, caption)
    if not len(display):
        return _styled(display).set_caption(escape(text)).set_table_styles(TABLE_STYLES)
    group = pd.factorize(ids)[0]

    def row_css(df: pd.DataFrame) -> pd.DataFrame:
        css = np.full(df.shape, "", dtype=object)
        for r in range(len(df)):
            parts = []
            if group[r] % 2:
                parts.append(f"background-color: {BAND_COLOR}")
            if first[r] and r:
                parts.append(f"border-top: {GROUP_BORDER}")
            css[r, :] = "; ".join(parts)
        return pd.DataFrame(css, index=df.index, columns=df.columns)

    def slip_css(v: Any) -> str:
        if v is None or v != v or v == 0:
            return ""
        return f"color: {SELL_COLOR if v > 0 else BUY_COLOR}; font-weight: 600"

    styler = _styled(display)
    styler = styler.format(escape="html", subset=["dt"])
    styler = styler.format(_SIGNED, subset=["qty", "cum filled", "remaining"])
    styler = styler.format(_PRICE, subset=["price", "vwap", "arrival"])
    styler = styler.format(partial(number, decimals=0, na=""), subset=["bar volume", "volume cap"])
    styler = styler.format(_slippage_text, subset=["slippage (bps)"])
    styler = styler.format_index(escape="html", axis=0)
    styler = styler.apply(row_css, axis=None)
    styler = styler.map(slip_css, subset=["slippage (bps)"])
    styler = styler.apply_index(lambda s: ["text-align: left; vertical-align: top; font-weight: 500"] * len(s),
                                axis=0, level=0)
    return styler.set_caption(escape(text)).set_table_styles(TABLE_STYLES)


# ================================================================ orders
def orders_table(result: Any, status: str | Iterable[str] | None = None, asset: Any = None,
                 max_rows: int | None = 500) -> Any:
    """A styled table (pandas ``Styler``) of the orders, one row each: id, asset, side,
    type (role and style with its prices, e.g. ``stop-loss stop 95``), amount, filled,
    limit, stop, status (cell coloured like the timeline), reason, created, closed_at,
    average fill price, tag and links (parent, children, OCO siblings).

    ``status`` keeps orders whose final status is one of the given ones, ``asset`` those of
    one symbol. Only the first ``max_rows`` rows are rendered (None = all); the caption
    says how many were left out. Asset names, tags and reasons are HTML-escaped.
    """
    require_styler()
    frame = orders_frame(result, status=status, asset=asset)
    total = len(frame)
    if max_rows is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
            raise ValueError(f"`max_rows` must be a positive integer or None, got {max_rows!r}")
        frame = frame.iloc[:max_rows]
    if not frame["tag"].map(lambda v: not is_missing(v) and v != "").any():
        frame = frame.drop(columns="tag")
    daily = is_daily(naive_times(result.orders["created"])) if len(result.orders) else True
    display = frame.copy()
    display["created"] = time_labels(naive_times(frame["created"]), daily)
    display["closed_at"] = time_labels(naive_times(frame["closed_at"]), daily)
    display = display.rename(columns={"avg_price": "avg price"})

    counts = frame["status"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUS_COLORS if s in counts)
    filters = []
    if asset is not None:
        filters.append(f"asset {resolve_asset(result, asset)}")
    if status is not None:
        filters.append(f"status {', '.join(check_status(status) or [])}")
    head = f"Orders ({', '.join(filters)})" if filters else "Orders"
    text = f"{head}: {total}" + (f" — {summary}" if summary else "")
    if len(frame) < total:
        text += f"; showing the first {len(frame)} (pass max_rows=None for all, or filter by status/asset)"

    def status_css(v: Any) -> str:
        if v not in STATUS_COLORS:
            return ""
        return (f"background-color: {STATUS_BACKGROUNDS[v]}; color: {STATUS_COLORS[v]}; font-weight: 600; "
                f"text-align: center")

    def side_css(v: Any) -> str:
        return f"color: {BUY_COLOR if v == 'buy' else SELL_COLOR}"

    text_cols = [c for c in ("asset", "type", "reason", "created", "closed_at", "tag", "links", "side", "status")
                 if c in display]
    styler = _styled(display).hide(axis="index")
    styler = styler.format(escape="html", subset=text_cols, na_rep="")
    styler = styler.format(lambda v: f"#{v}", subset=["id"])
    styler = styler.format(_SIGNED, subset=["amount", "filled"])
    styler = styler.format(_PRICE, subset=["limit", "stop", "avg price"])
    styler = styler.map(status_css, subset=["status"])
    styler = styler.map(side_css, subset=["side"])
    styler = styler.set_properties(subset=["reason"], **{"text-align": "left", "white-space": "normal",
                                                         "min-width": "16em", "max-width": "40em"})
    styler = styler.set_properties(subset=[c for c in ("asset", "type", "tag", "links") if c in display],
                                   **{"text-align": "left"})
    styler = styler.set_properties(subset=["type", "created", "closed_at"], **{"white-space": "nowrap"})
    return styler.set_caption(escape(text)).set_table_styles(TABLE_STYLES)


def orders_frame(result: Any, status: str | Iterable[str] | None = None, asset: Any = None) -> pd.DataFrame:
    """The unstyled data of :func:`orders_table`: one row per order with the columns
    ``id, asset, side, type, amount, filled, limit, stop, status, reason, created,
    closed_at, avg_price, tag, links``."""
    orders = result.orders
    symbol = resolve_asset(result, asset)
    statuses = check_status(status)
    if symbol is not None:
        orders = orders[orders["asset"] == symbol]
    if statuses is not None:
        orders = orders[orders["status"].isin(statuses)]
    types, links = [], []
    for o in orders.itertuples(index=False):
        types.append(describe_order(o))
        bits = []
        if o.parent_id == o.parent_id:
            bits.append(f"{role_text(o.role) or 'child'} of #{int(o.parent_id)}")
        if isinstance(o.child_ids, (list, tuple, np.ndarray)) and len(o.child_ids):
            bits.append("children " + ", ".join(f"#{int(c)}" for c in o.child_ids))
        if isinstance(o.oco_ids, (list, tuple, np.ndarray)) and len(o.oco_ids):
            bits.append("OCO with " + ", ".join(f"#{int(c)}" for c in o.oco_ids))
        links.append("; ".join(bits))
    amount = orders["amount"].to_numpy(dtype=float)
    return pd.DataFrame({
        "id": orders["id"].to_numpy(dtype=np.int64),
        "asset": orders["asset"].to_numpy(dtype=object),
        "side": np.where(amount > 0, "buy", "sell").astype(object),
        "type": np.array(types, dtype=object),
        "amount": amount,
        "filled": orders["filled"].to_numpy(dtype=float),
        "limit": orders["limit"].to_numpy(dtype=float),
        "stop": orders["stop"].to_numpy(dtype=float),
        "status": orders["status"].to_numpy(dtype=object),
        "reason": orders["reason"].to_numpy(dtype=object),
        "created": orders["created"].to_numpy(),
        "closed_at": orders["closed_at"].to_numpy(),
        "avg_price": orders["avg_fill_price"].to_numpy(dtype=float),
        "tag": orders["tag"].to_numpy(dtype=object),
        "links": np.array(links, dtype=object),
    }).astype({"created": orders["created"].dtype, "closed_at": orders["closed_at"].dtype})

