"""Paid membership: bought and renewed through the payment port, refunded pro rata, ledgered."""
