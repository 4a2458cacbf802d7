"""Group-buy engine: campaigns (fixed and tiered), groups, atomic seats, durable deadlines."""
