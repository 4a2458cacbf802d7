"""The risk rules, pure: their defaults, overrides from config, scoring and linked accounts.

Each rule looks at facts the adapter gathered (counts of signals in a window, an account's
age, how a group's members are linked) and scores when it fires (`tuanbox.risk.scoring`);
the scores add up, and the total against two thresholds gives the action: allow, hold for
review, or block. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal


class Event(StrEnum):
    """What a signal was recorded for."""

    SIGNIN = "signin"
    SIGNUP = "signup"  # the first sign-in of an account made by it
    ADDRESS = "address"  # a delivery address saved
    ORDER = "order"  # a regular order created, or a flash-sale order's first checkout
    JOIN = "join"  # a group opened or joined (the seat's order created)
    CHECKOUT = "checkout"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_SUCCEEDED = "payment_succeeded"


class Key(StrEnum):
    """What a signal is about; every value but `user` is a keyed blind index, never clear."""

    IP = "ip"
    DEVICE = "device"
    ADDRESS = "address"
    PAYER = "payer"  # the payment account at the provider (WeChat openid, …)
    USER = "user"  # the account id itself


class Action(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


# Keys that link accounts to each other (a shared IP does not: carrier NAT).
LINKING_KEYS = (Key.DEVICE, Key.ADDRESS, Key.PAYER)
ORDERING = frozenset({Event.ORDER, Event.JOIN})
MAX_WINDOW_S = 90 * 86400
MAX_SCORE = 1000


@dataclass(frozen=True)
class CountRule:
    """Fires when `threshold` or more events (or distinct accounts) share one key in the window."""

    name: str
    key: Key
    measure: Literal["events", "accounts"]
    events: frozenset[Event]  # the events counted; empty: all of them
    window_s: int
    threshold: int
    score: int
    about: str
    enabled: bool = True
    # The events it scores; empty: all. A sign-up burst says something about the new
    # accounts, not about every shopper who later orders from that (perhaps NAT) address.
    on: frozenset[Event] = frozenset()

    def applies_to(self, event: Event) -> bool:
        return not self.on or event in self.on


@dataclass(frozen=True)
class NewAccountFlashOnly:
    """Fires on a flash-sale order of an account younger than `max_age_days` that has bought
    nothing but flash-sale items (the scalper's throwaway account)."""

    score: int = 30
    max_age_days: int = 3
    enabled: bool = True
    name: str = "new_account_flash_only"


@dataclass(frozen=True)
class AccountRule:
    """Fires on every event of an account with a review open (`account_under_review`) or one
    that ops rejected before (`rejected_before`)."""

    name: str
    score: int
    about: str
    enabled: bool = True


@dataclass(frozen=True)
class LinkedGroup:
    """Fires when a group closes with at least `min_linked` members, and at least `min_share`
    of them, linked to each other by a shared device, address or payment account."""

    score: int = 70
    min_linked: int = 3
    min_share: float = 0.5
    enabled: bool = True
    name: str = "linked_group"


H, D = 3600, 86400
NONE: frozenset[Event] = frozenset()
SIGNUP = frozenset({Event.SIGNUP})
FAILED = frozenset({Event.PAYMENT_FAILED})
# name, key, measure, events counted (none: all), window, threshold, score, what it counts.
# IP rules score low on purpose: a carrier NAT puts a neighbourhood behind one address.
_COUNTS: tuple[tuple[Any, ...], ...] = (
    ("orders_per_device", Key.DEVICE, "events", ORDERING, H, 5, 30, "orders per device"),
    ("accounts_per_device", Key.DEVICE, "accounts", NONE, D, 4, 60, "accounts per device"),
    ("orders_per_address", Key.ADDRESS, "events", ORDERING, D, 10, 20, "orders per address"),
    ("accounts_per_address", Key.ADDRESS, "accounts", NONE, 7 * D, 4, 40, "accounts per address"),
    ("accounts_per_payer", Key.PAYER, "accounts", NONE, 30 * D, 3, 60, "accounts per payer"),
    ("orders_per_ip", Key.IP, "events", ORDERING, H, 100, 10, "orders per IP"),
    ("accounts_per_ip", Key.IP, "accounts", NONE, H, 50, 10, "accounts per IP"),
    ("signups_per_ip", Key.IP, "events", SIGNUP, H, 20, 50, "sign-ups per IP"),
    ("payment_failures_per_user", Key.USER, "events", FAILED, 900, 5, 50, "declines per account"),
    (
        "payment_failures_per_device",
        Key.DEVICE,
        "events",
        FAILED,
        900,
        8,
        50,
        "declines per device",
    ),
)
DEFAULT_COUNT_RULES: tuple[CountRule, ...] = tuple(
    # A sign-up burst scores the sign-ups only (`on`), never later orders from that address.
    CountRule(name, key, measure, events, window, limit, score, about, on=on)
    for name, key, measure, events, window, limit, score, about in _COUNTS
    for on in [SIGNUP if name == "signups_per_ip" else NONE]
)
DEFAULT_ACCOUNT_RULES: tuple[AccountRule, ...] = (
    AccountRule("account_under_review", 50, "the account has a risk review open"),
    AccountRule("rejected_before", 80, "ops rejected a risk review of the account before"),
)


@dataclass(frozen=True)
class RuleSet:
    """The rules in force and the two thresholds their total score is held against."""

    review_score: int = 50
    block_score: int = 80
    counts: tuple[CountRule, ...] = DEFAULT_COUNT_RULES
    accounts: tuple[AccountRule, ...] = DEFAULT_ACCOUNT_RULES
    new_account_flash_only: NewAccountFlashOnly = field(default_factory=NewAccountFlashOnly)
    linked_group: LinkedGroup = field(default_factory=LinkedGroup)

    def action(self, score: int) -> Action:
        if score >= self.block_score:
            return Action.BLOCK
        if score >= self.review_score:
            return Action.REVIEW
        return Action.ALLOW

    def names(self) -> list[str]:
        return (
            [r.name for r in self.counts]
            + [r.name for r in self.accounts]
            + [
                self.new_account_flash_only.name,
                self.linked_group.name,
            ]
        )

    def describe(self) -> dict[str, Any]:
        """The rules in force as JSON (for ops and the README's table)."""
        out: dict[str, Any] = {"review_score": self.review_score, "block_score": self.block_score}
        rules: dict[str, Any] = {}
        for c in self.counts:
            rules[c.name] = {
                "key": c.key.value,
                "measure": c.measure,
                "threshold": c.threshold,
                "window_s": c.window_s,
                "score": c.score,
                "enabled": c.enabled,
                "events": sorted(e.value for e in c.events),
                "on": sorted(e.value for e in c.on),
                "about": c.about,
            }
        for a in self.accounts:
            rules[a.name] = {"score": a.score, "enabled": a.enabled, "about": a.about}
        n, g = self.new_account_flash_only, self.linked_group
        rules[n.name] = {"score": n.score, "max_age_days": n.max_age_days, "enabled": n.enabled}
        rules[g.name] = {
            "score": g.score,
            "min_linked": g.min_linked,
            "min_share": g.min_share,
            "enabled": g.enabled,
        }
        out["rules"] = rules
        return out


# What each kind of rule lets a config change, with its bounds.
_INT_FIELDS: dict[str, tuple[int, int]] = {
    "score": (0, MAX_SCORE),
    "threshold": (1, 1_000_000),
    "window_s": (60, MAX_WINDOW_S),
    "max_age_days": (1, 365),
    "min_linked": (2, 1000),
}
_EDITABLE = {
    CountRule: ("score", "threshold", "window_s", "enabled"),
    AccountRule: ("score", "enabled"),
    NewAccountFlashOnly: ("score", "max_age_days", "enabled"),
    LinkedGroup: ("score", "min_linked", "min_share", "enabled"),
}


def _apply(rule: Any, name: str, changes: Any) -> Any:
    if not isinstance(changes, Mapping):
        raise ValueError(f"risk rule {name}: expected an object of settings")
    allowed = _EDITABLE[type(rule)]
    values: dict[str, Any] = {}
    for fieldname, value in changes.items():
        if fieldname not in allowed:
            raise ValueError(f"risk rule {name}: {fieldname!r} is not one of {', '.join(allowed)}")
        if fieldname == "enabled":
            if not isinstance(value, bool):
                raise ValueError(f"risk rule {name}: enabled must be true or false")
        elif fieldname == "min_share":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValueError(f"risk rule {name}: min_share must be a number in (0, 1]")
            value = float(value)
        else:
            low, high = _INT_FIELDS[fieldname]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"risk rule {name}: {fieldname} must be an integer {low}-{high}")
        values[fieldname] = value
    return replace(rule, **values)


def build_ruleset(
    overrides: Mapping[str, Any], *, review_score: int = 50, block_score: int = 80
) -> RuleSet:
    """The default rules with `overrides` ({rule: {field: value}}) applied; ValueError names
    the first unknown rule, field or out-of-range value."""
    if not 0 < review_score <= block_score:
        raise ValueError("the review score must be positive and not above the block score")
    base = RuleSet(review_score=review_score, block_score=block_score)
    unknown = sorted(set(overrides) - set(base.names()))
    if unknown:
        raise ValueError(f"unknown risk rules: {', '.join(unknown)} (known: {base.names()})")
    counts = tuple(
        _apply(r, r.name, overrides[r.name]) if r.name in overrides else r for r in base.counts
    )
    accounts = tuple(
        _apply(r, r.name, overrides[r.name]) if r.name in overrides else r for r in base.accounts
    )
    n, g = base.new_account_flash_only, base.linked_group
    return replace(
        base,
        counts=counts,
        accounts=accounts,
        new_account_flash_only=_apply(n, n.name, overrides[n.name]) if n.name in overrides else n,
        linked_group=_apply(g, g.name, overrides[g.name]) if g.name in overrides else g,
    )
