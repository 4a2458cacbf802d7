"""Orders: the order state machine, transitions with who/when/why, pay timeouts, hooks."""
