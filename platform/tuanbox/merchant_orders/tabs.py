"""Order status tabs as merchants know them, mapped exactly onto the order state machine.

Every (status, awaiting, picked up) combination lands in exactly one tab, so the tab
counts add up to the merchant's orders:

- 待付款 pending_payment: `pending_payment`.
- 拼团中 grouping: `paid`, waiting for its group to succeed (nothing to ship yet).
- 待发货 to_ship: `paid` waiting for the merchant, the hub, a station or a risk review;
  `confirmed`; `allocated`; `quality_hold` (held goods are replaced or cleared before
  they go to the shopper).
- 待自提 awaiting_pickup: `ready_for_pickup` (in a locker).
- 已完成 completed: `picked_up`, `completed`.
- 售后 after_sales: `return_requested`, `returned`, and `refunded` after pickup.
- 已关闭 closed: `cancelled`, `expired`, and `refunded` before pickup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tuanbox.orders.domain import Awaiting, OrderStatus

S = OrderStatus


class Tab(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    GROUPING = "grouping"
    TO_SHIP = "to_ship"
    AWAITING_PICKUP = "awaiting_pickup"
    COMPLETED = "completed"
    AFTER_SALES = "after_sales"
    CLOSED = "closed"


@dataclass(frozen=True)
class TabRule:
    """Which orders a tab holds: statuses, narrowed for `paid` and `refunded`."""

    statuses: frozenset[OrderStatus]
    # For `paid`: True = only those awaiting their group, False = only the others.
    paid_awaiting_group: bool | None = None
    # For `refunded`: True = only those picked up before, False = only the others.
    refunded_after_pickup: bool | None = None


RULES: dict[Tab, TabRule] = {
    Tab.PENDING_PAYMENT: TabRule(frozenset({S.PENDING_PAYMENT})),
    Tab.GROUPING: TabRule(frozenset({S.PAID}), paid_awaiting_group=True),
    Tab.TO_SHIP: TabRule(
        frozenset({S.PAID, S.CONFIRMED, S.ALLOCATED, S.QUALITY_HOLD}), paid_awaiting_group=False
    ),
    Tab.AWAITING_PICKUP: TabRule(frozenset({S.READY_FOR_PICKUP})),
    Tab.COMPLETED: TabRule(frozenset({S.PICKED_UP, S.COMPLETED})),
    Tab.AFTER_SALES: TabRule(
        frozenset({S.RETURN_REQUESTED, S.RETURNED, S.REFUNDED}), refunded_after_pickup=True
    ),
    Tab.CLOSED: TabRule(
        frozenset({S.CANCELLED, S.EXPIRED, S.REFUNDED}), refunded_after_pickup=False
    ),
}

# The merchant-facing order of the tabs, with their labels (zh, en).
LABELS: dict[Tab, tuple[str, str]] = {
    Tab.PENDING_PAYMENT: ("待付款", "Pending payment"),
    Tab.GROUPING: ("拼团中", "Grouping"),
    Tab.TO_SHIP: ("待发货", "To ship"),
    Tab.AWAITING_PICKUP: ("待自提", "Awaiting pickup"),
    Tab.COMPLETED: ("已完成", "Completed"),
    Tab.AFTER_SALES: ("售后", "After-sales"),
    Tab.CLOSED: ("已关闭", "Closed"),
}


def tab_of(status: OrderStatus | str, awaiting: str | None, picked_up: bool) -> Tab:
    """The one tab an order belongs to."""
    status = OrderStatus(status)
    for tab, rule in RULES.items():
        if status not in rule.statuses:
            continue
        in_group = awaiting == Awaiting.GROUP
        if status == S.PAID and rule.paid_awaiting_group not in (None, in_group):
            continue
        if status == S.REFUNDED and rule.refunded_after_pickup not in (None, picked_up):
            continue
        return tab
    raise AssertionError(f"no tab for {status}")  # RULES cover every status (tested)
