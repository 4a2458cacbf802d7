"""Reactions to order status changes, run inside the transition's own transaction.

Features register with `on_status(status, handler)` from their own `hooks` module, listed in
`HOOK_MODULES`; the registry imports those modules the first time a transition runs, so
orders never imports group-buy, payments or fulfilment (no cycles) yet they always react.
A handler that raises aborts the whole transition: the change and its consequences commit
together or not at all. Celery work a handler wants must go through `tuanbox.db.hooks.after_commit`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from tuanbox.orders.models import Order

Handler = Callable[[Session, "Order", str], None]

# Modules whose import registers handlers; each feature adds its own.
HOOK_MODULES: list[str] = [
    "tuanbox.payments.hooks",
    "tuanbox.returns.hooks",
    "tuanbox.notifications.hooks",
    "tuanbox.fulfilment.hooks",
    "tuanbox.groupbuy.hooks",
    "tuanbox.flashsale.hooks",
    "tuanbox.coupons.hooks",
    "tuanbox.growth.hooks",
    "tuanbox.experiments.hooks",
    "tuanbox.recommend.hooks",
    # Last: confirming on payment moves the order on, after every other "paid" reaction.
    "tuanbox.orders.acceptance",
]

_handlers: dict[str, list[Handler]] = {}
_loaded: set[str] = set()


def on_status(status: str, handler: Handler) -> None:
    """Call `handler(session, order, from_status)` whenever an order enters `status`."""
    bucket = _handlers.setdefault(str(status), [])
    if handler not in bucket:
        bucket.append(handler)


def load() -> None:
    for name in HOOK_MODULES:
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)


def run(session: Session, order: Order, from_status: str) -> None:
    load()
    for handler in list(_handlers.get(str(order.status), ())):
        handler(session, order, from_status)
