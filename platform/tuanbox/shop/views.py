"""The shop's router: every shopper page module's router, mounted once by api.app."""

from __future__ import annotations

from fastapi import APIRouter

from tuanbox.shop import (
    assets,
    campaign,
    coupons,
    flashbuy,
    growth,
    home,
    orders,
    pickup,
    remind,
    seats,
    share,
    signin,
)

router = APIRouter(tags=["shop"], include_in_schema=False)
# A new page module adds its router here (see README.md in this package).
# pickup before orders: its worker's path (/orders/pickup-sw.js) is no order id.
for _module in (
    assets,
    signin,
    home,
    campaign,
    seats,
    pickup,
    coupons,
    orders,
    share,
    flashbuy,
    remind,
    growth,
):
    router.include_router(_module.router)
