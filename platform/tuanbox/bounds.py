"""Bounds on numbers and strings from outside: business limits the BIGINT columns hold with room.

API schemas use the annotated types; domain rules and services check the same constants, so a
value refused over HTTP is refused from the CLI or a task too. The largest money value any
row can reach is one order's total, `MAX_PRICE_CENTS * MAX_QTY` (10^11 cents), far inside
BIGINT (9.2 * 10^18): sums of bounded values cannot overflow either.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

MAX_PRICE_CENTS = 100_000_000  # ¥1,000,000 for one unit: more is a typo, not a product
MAX_QTY = 1_000  # units in one order, seat, reservation or per-shopper limit
MAX_ORDER_CENTS = MAX_PRICE_CENTS * MAX_QTY  # one order's total: the largest single amount
MAX_STOCK = 1_000_000_000  # units of one SKU on hand, after any number of restocks
MAX_RESTOCK = 10_000_000  # units added by one restock
MAX_GROUP_SIZE = 1_000  # members of one group-buy group
MAX_ID_CHARS = 36  # ids are UUIDs, and orders keep station ids in a String(36)
MAX_ADDRESS_CHARS = 500  # a real Chinese address is under 200 characters
MAX_STATIONS_PER_CAMPAIGN = 100
MAX_INT32 = 2**31 - 1  # INTEGER columns, serial ids among them
MAX_INT64 = 2**63 - 1  # BIGINT columns

PriceCents = Annotated[
    int, Field(ge=0, le=MAX_PRICE_CENTS, description="Cents per unit", examples=[2990])
]
AmountCents = Annotated[int, Field(gt=0, le=MAX_ORDER_CENTS, description="Cents")]
Qty = Annotated[int, Field(ge=1, le=MAX_QTY, description="Units")]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK, description="Units")]
RestockUnits = Annotated[int, Field(gt=0, le=MAX_RESTOCK, description="Units to add")]
GroupSize = Annotated[int, Field(ge=1, le=MAX_GROUP_SIZE, description="Members")]
# Integer row ids in paths and queries: larger numbers fail PostgreSQL's cast, not just miss.
SerialId = Annotated[int, Field(ge=1, le=MAX_INT32)]
BigSerialId = Annotated[int, Field(ge=1, le=MAX_INT64)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
AddressText = Annotated[str, StringConstraints(min_length=3, max_length=MAX_ADDRESS_CHARS)]
