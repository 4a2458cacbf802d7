"""Idempotency-Key support for POSTs that create things: replay, reuse detection, in-progress."""
