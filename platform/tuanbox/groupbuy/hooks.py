"""Registers group-buy's reactions to order status changes (imported by `tuanbox.orders.hooks`)."""

from __future__ import annotations

from tuanbox.groupbuy.closing import on_order_lapsed, on_order_paid
from tuanbox.orders.hooks import on_status

on_status("paid", on_order_paid)
on_status("cancelled", on_order_lapsed)
on_status("expired", on_order_lapsed)
on_status("refunded", on_order_lapsed)
