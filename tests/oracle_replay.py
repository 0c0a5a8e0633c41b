"""Replays a backtrader oracle scenario (tests/data/*.json) through the public API.

Each scenario lists bars and the instructions a strategy issued at the end of given
bars. The replay strategy issues the same orders with this package's styles, in the
parity settings the oracle notes give: the "ohlc" fill model and trailing stops that
ratchet from the close.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frame
from rustybt_nb.finance.execution import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    StopLimitOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
)
from rustybt_nb.finance.slippage import NoSlippage

DATA = Path(__file__).parent / "data"
STATUS = {"Completed": "filled", "Partial": "partial", "Canceled": "canceled", "Rejected": "rejected",
          "Expired": "expired"}


def load_scenario(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def scenario_frame(sc: dict) -> pd.DataFrame:
    bars = pd.DataFrame(sc["data"]["bars"])
    df = bars.set_index(pd.to_datetime(bars["date"]))[["open", "high", "low", "close", "volume"]].astype(float)
    df.index.name = "date"
    # close-only feeds (TestBrackets) load the one price as open/high/close; a flat bar
    df["low"] = df["low"].fillna(df[["open", "close"]].min(axis=1))
    if df["volume"].isna().all():
        df = df.drop(columns="volume")
    return df


def _style(args: dict):
    kind = args.get("exectype", "Market")
    price = args.get("price")
    if kind == "Market":
        return MarketOrder()
    if kind == "Limit":
        return LimitOrder(price)
    if kind == "Stop":
        return StopOrder(price)
    if kind == "StopLimit":
        return StopLimitOrder(args["plimit"], price)
    if kind == "StopTrail":
        return TrailingStopOrder(trail_amount=args.get("trailamount"), trail_percent=args.get("trailpercent"))
    if kind == "StopTrailLimit":
        return TrailingStopLimitOrder(trail_amount=args.get("trailamount"), trail_percent=args.get("trailpercent"),
                                      limit_offset=args.get("limitoffset", 0.0))
    raise ValueError(kind)


class OracleReplay(TradingAlgorithm):
    """Issues a scenario's instructions at their bars; remembers label -> order id."""

    params = {"instructions": [], "first_date": None}

    def initialize(self, context):
        context.asset = self.symbol("X")
        context.todo = {}
        for ins in self.params.instructions:
            context.todo.setdefault(pd.Timestamp(ins["date"]), []).append(ins)
        context.ids = {}

    def handle_data(self, context, data):
        for ins in context.todo.get(self.get_datetime(), []):
            if ins.get("only_if_flat") and context.portfolio.positions[context.asset].amount != 0:
                continue
            args = ins.get("resolved_args", ins["args"])
            action = ins["action"]
            if args.get("transmit") is False and "parent" not in args:  # an entry sent with its child
                context.parent = (ins, args)
                continue
            if "parent" in args:  # the parent's one attached exit: an entry with one exit (one-triggers-other)
                parent_ins, parent_args = context.parent
                size = parent_args.get("size", 1)
                style = BracketOrder(entry_style=_style(parent_args), stop_loss_style=_style(args))
                ticket = self.order(context.asset, size if parent_ins["action"] == "buy" else -size, style=style)
                context.ids[parent_ins["label"]] = ticket
                context.ids[ins["label"]] = ticket.child_ids[0]
                continue
            if action == "close":
                ticket = self.order_target(context.asset, 0)
            elif action in ("buy", "sell"):
                size = args.get("size", 1)
                ticket = self.order(context.asset, size if action == "buy" else -size, style=_style(args))
                if "oco" in args:
                    ticket.add_oco_sibling(context.ids[args["oco"]])
            elif action in ("buy_bracket", "sell_bracket"):
                size = args.get("size", 1)
                entry = _style(args)
                if args.get("stopexec") == "StopTrail":  # a bracket whose stop-loss trails
                    stop = TrailingStopOrder(trail_amount=args["stopargs"].get("trailamount"),
                                             trail_percent=args["stopargs"].get("trailpercent"))
                    style = BracketOrder(entry_style=entry, stop_loss_style=stop,
                                         take_profit_price=args["limitprice"])
                else:
                    style = BracketOrder(entry_style=entry, stop_loss_price=args["stopprice"],
                                         take_profit_price=args["limitprice"])
                ticket = self.order(context.asset, size if action == "buy_bracket" else -size, style=style)
            else:
                raise ValueError(action)
            context.ids[ins["label"]] = ticket


def replay(name: str, **overrides):
    sc = load_scenario(name)
    df = scenario_frame(sc)
    store = from_frame(df, symbol="X", calendar="24/7" if sc["data"]["kind"] == "testbrackets_csv" else "XNYS")
    broker = sc["broker"]
    filler = broker.get("filler")
    slippage = NoSlippage(volume_limit=filler["perc"] / 100.0) if filler else None
    kwargs = {"data": store, "capital_base": broker["cash"], "fill_model": "ohlc", "trail_reference": "close",
              "slippage": slippage, "instructions": sc["instructions"]}
    kwargs.update(overrides)
    result = run_algorithm(OracleReplay, **kwargs)
    return sc, result


def bar_dates(sc: dict) -> dict[int, pd.Timestamp]:
    return {b["i"]: pd.Timestamp(b["date"]) for b in sc["data"]["bars"]}
