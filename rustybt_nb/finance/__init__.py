"""Orders, execution styles, matching, slippage, commission and the ledger."""
