"""``python -m rustybt_nb [demo] [--symbol AAPL] [--start 2010-01-01] [--end 2013-03-01]``:
run the example bracket strategy on the embedded sample data and print its summary."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rustybt_nb", description=__doc__)
    parser.add_argument("command", nargs="?", default="demo", choices=["demo"])
    parser.add_argument("--symbol", default="AAPL", help="sample symbol: AAPL, GOOG, IBM, MSFT or FB")
    parser.add_argument("--start", default="2008-01-01")
    parser.add_argument("--end", default="2013-03-01")
    parser.add_argument("--exit", default="bracket", choices=["bracket", "trailing"])
    args = parser.parse_args(argv)

    from . import run_algorithm
    from .examples import SmaCrossBracket

    result = run_algorithm(SmaCrossBracket, data=args.symbol, start=args.start, end=args.end,
                           capital_base=100_000, exit=args.exit, symbol=args.symbol.upper())
    print(result.summary())
    print()
    print("Last orders and what happened to them:")
    cols = ["id", "style", "role", "amount", "filled", "avg_fill_price", "status", "reason"]
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 70,
                           "display.float_format", "{:,.2f}".format):
        print(result.orders[cols].tail(9).to_string(index=False))
        print()
        print("Round trips:")
        print(result.trades[["entry_dt", "exit_dt", "direction", "size", "entry_price", "exit_price",
                             "net_pnl"]].tail(6).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
