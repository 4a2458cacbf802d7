"""The order state machine, pure: statuses, allowed transitions and what each one implies."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    CONFIRMED = "confirmed"
    ALLOCATED = "allocated"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    QUALITY_HOLD = "quality_hold"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"


class OrderKind(StrEnum):
    REGULAR = "regular"
    GROUP = "group"
    FLASH = "flash"


class Awaiting(StrEnum):
    """What a paid order waits for before it is confirmed (how it gets to a locker)."""

    GROUP = "group"  # its group to succeed
    MERCHANT = "merchant"  # its merchant to accept it, by `accept_deadline`
    RECEIVING = "receiving"  # a pre-sale: its batch to arrive at the station hub
    STATION = "station"  # a pickup station: without one it cannot go to a locker
    REVIEW = "review"  # risk control holds it: ops approve or reject it (`tuanbox.risk`)


class AcceptanceMode(StrEnum):
    """A merchant's setting: confirm paid orders at once, or after accepting each one."""

    AUTO = "auto"
    MANUAL = "manual"


class LapsePolicy(StrEnum):
    """What happens to an order its merchant did not accept or reject by the deadline."""

    CONFIRM = "confirm"
    REFUND = "refund"


S = OrderStatus

# Every legal move. Anything not listed is an IllegalTransitionError, never a silent change.
# paid -> cancelled covers a failed group or a shopper cancelling before confirmation; the
# money then goes back through a refund and the order moves on to refunded.
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED, S.EXPIRED}),
    S.PAID: frozenset({S.CONFIRMED, S.CANCELLED, S.REFUNDED}),
    S.CONFIRMED: frozenset({S.ALLOCATED, S.CANCELLED, S.QUALITY_HOLD, S.REFUNDED}),
    S.ALLOCATED: frozenset({S.READY_FOR_PICKUP, S.CONFIRMED, S.CANCELLED, S.QUALITY_HOLD}),
    S.READY_FOR_PICKUP: frozenset({S.PICKED_UP, S.QUALITY_HOLD, S.EXPIRED, S.CANCELLED}),
    S.PICKED_UP: frozenset({S.COMPLETED, S.RETURN_REQUESTED}),
    S.COMPLETED: frozenset({S.RETURN_REQUESTED}),
    # quality_hold -> picked_up records a physical fact: the shopper opened the door before
    # the locker received the revoke. The hold decision stays open for ops.
    S.QUALITY_HOLD: frozenset(
        {S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP, S.PICKED_UP, S.CANCELLED, S.REFUNDED}
    ),
    S.RETURN_REQUESTED: frozenset({S.RETURNED, S.COMPLETED}),  # withdrawn: completed
    S.RETURNED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset({S.REFUNDED}),
    S.EXPIRED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

# Statuses in which the SKU's stock is still reserved for the order (not yet handed over).
HOLDS_STOCK = frozenset(
    {S.PENDING_PAYMENT, S.PAID, S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP, S.QUALITY_HOLD}
)
# Entering one of these from a stock-holding status gives the reservation back.
RELEASES_STOCK = frozenset({S.CANCELLED, S.EXPIRED, S.REFUNDED})
# Entering this turns the reservation into a real decrement of stock on hand.
COMMITS_STOCK = frozenset({S.PICKED_UP})
TERMINAL = frozenset(s for s, nxt in ALLOWED.items() if not nxt)
# Statuses that a shopper may cancel from (before the goods are on their way).
SHOPPER_CANCELLABLE = frozenset({S.PENDING_PAYMENT, S.PAID})


def shopper_may_cancel(status: OrderStatus | str, awaiting: str | None) -> bool:
    """Before confirmation, except a pre-sale whose group succeeded: its batch is bought."""
    return OrderStatus(status) in SHOPPER_CANCELLABLE and awaiting != Awaiting.RECEIVING


def can_transition(current: OrderStatus | str, to: OrderStatus | str) -> bool:
    return OrderStatus(to) in ALLOWED[OrderStatus(current)]


def stock_effect(current: OrderStatus | str, to: OrderStatus | str, held: bool) -> str | None:
    """'release', 'commit' or None: what a move does to the order's stock reservation."""
    if not held:
        return None
    if OrderStatus(to) in RELEASES_STOCK:
        return "release"
    if OrderStatus(to) in COMMITS_STOCK:
        return "commit"
    return None
