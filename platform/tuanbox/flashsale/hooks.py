"""Registers flash-sale reactions to order status changes (imported by `tuanbox.orders.hooks`)."""

from __future__ import annotations

from tuanbox.flashsale.services import on_order_lapsed
from tuanbox.orders.hooks import on_status

on_status("cancelled", on_order_lapsed)
on_status("expired", on_order_lapsed)
