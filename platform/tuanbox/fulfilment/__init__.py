"""From confirmed order to empty compartment: allocation, courier runs, pickup, returns, alerts."""
