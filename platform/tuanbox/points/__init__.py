"""Points: earned on completed orders, reversed on refund, spent at checkout; a ledger."""
