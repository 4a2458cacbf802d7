"""Scoring, pure: the facts around one event (or a closing group) in, the fired rules out.

The adapter (`tuanbox.risk.signals`) gathers the facts; these functions decide which rules
fire, with what evidence, and what the total score means (`RuleSet.action`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuanbox.risk.rules import LINKING_KEYS, Action, Event, RuleSet


@dataclass(frozen=True)
class Count:
    """How many events (or accounts) shared one key in a count rule's window, and who."""

    value: int
    key_hash: str = ""  # a prefix of the key's blind index: enough to match, no PII
    accounts: tuple[str, ...] = ()  # the accounts behind the count (bounded)
    orders: tuple[str, ...] = ()  # and the orders, for counts of events


@dataclass(frozen=True)
class Facts:
    """What the adapter found around one event."""

    event: Event | None = None  # what is screened (None: every rule applies)
    counts: Mapping[str, Count] = field(default_factory=dict)
    account_age_days: float | None = None
    flash_order: bool = False  # the event is about a flash-sale order
    flash_orders: int = 0  # the account's orders by kind, this one included
    other_orders: int = 0
    open_reviews: int = 0
    rejected_reviews: int = 0


@dataclass(frozen=True)
class Hit:
    """One rule that fired: its name, its score and the evidence behind it."""

    rule: str
    score: int
    evidence: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "score": self.score, **self.evidence}


@dataclass(frozen=True)
class Verdict:
    hits: tuple[Hit, ...]
    score: int
    action: Action

    def as_json(self) -> list[dict[str, Any]]:
        return [h.as_json() for h in self.hits]


def verdict(ruleset: RuleSet, hits: Iterable[Hit]) -> Verdict:
    fired = tuple(hits)
    score = sum(h.score for h in fired)
    return Verdict(fired, score, ruleset.action(score))


def evaluate(ruleset: RuleSet, facts: Facts) -> Verdict:
    """Score one event: every enabled rule that fires adds its score."""
    hits: list[Hit] = []
    for rule in ruleset.counts:
        count = facts.counts.get(rule.name)
        applies = facts.event is None or rule.applies_to(facts.event)
        if rule.enabled and applies and count is not None and count.value >= rule.threshold:
            evidence: dict[str, Any] = {
                "key": rule.key.value,
                "key_hash": count.key_hash,
                "measure": rule.measure,
                "count": count.value,
                "threshold": rule.threshold,
                "window_s": rule.window_s,
            }
            if count.accounts:
                evidence["accounts"] = list(count.accounts)
            if count.orders:
                evidence["orders"] = list(count.orders)
            hits.append(Hit(rule.name, rule.score, evidence))
    by_name = {rule.name: rule for rule in ruleset.accounts}
    under, rejected = by_name["account_under_review"], by_name["rejected_before"]
    if under.enabled and facts.open_reviews:
        hits.append(Hit(under.name, under.score, {"open_reviews": facts.open_reviews}))
    if rejected.enabled and facts.rejected_reviews:
        hits.append(Hit(rejected.name, rejected.score, {"rejected": facts.rejected_reviews}))
    flash = ruleset.new_account_flash_only
    if (
        flash.enabled
        and facts.flash_order
        and facts.account_age_days is not None
        and facts.account_age_days < flash.max_age_days
        and facts.other_orders == 0
    ):
        hits.append(
            Hit(
                flash.name,
                flash.score,
                {
                    "account_age_days": round(facts.account_age_days, 2),
                    "max_age_days": flash.max_age_days,
                    "flash_orders": facts.flash_orders,
                    "other_orders": 0,
                },
            )
        )
    return verdict(ruleset, hits)


def linked_clusters(member_keys: Mapping[str, Iterable[tuple[str, str]]]) -> list[list[str]]:
    """Accounts that share a linking key, transitively (union-find), largest first; an
    account linked to no other member is left out. Keys are (kind, blind index) pairs."""
    parent = {user: user for user in member_keys}

    def root(user: str) -> str:
        while parent[user] != user:
            parent[user] = parent[parent[user]]
            user = parent[user]
        return user

    owner: dict[tuple[str, str], str] = {}
    for user in sorted(member_keys):
        for key in member_keys[user]:
            if key[0] not in LINKING_KEYS:
                continue
            first = owner.setdefault(key, user)
            parent[root(user)] = root(first)
    groups: dict[str, list[str]] = {}
    for user in sorted(member_keys):
        groups.setdefault(root(user), []).append(user)
    clusters = [members for members in groups.values() if len(members) > 1]
    return sorted(clusters, key=lambda c: (-len(c), c))


def evaluate_group(
    ruleset: RuleSet, member_keys: Mapping[str, Iterable[tuple[str, str]]]
) -> tuple[Verdict, list[str]]:
    """Score a group as it closes; with the accounts of its largest linked cluster."""
    rule = ruleset.linked_group
    keys = {user: set(k) for user, k in member_keys.items()}
    clusters = linked_clusters(keys)
    if not rule.enabled or not clusters or not keys:
        return verdict(ruleset, ()), []
    largest = clusters[0]
    share = len(largest) / len(keys)
    if len(largest) < rule.min_linked or share < rule.min_share:
        return verdict(ruleset, ()), []
    shared: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for user in largest:
        for key in keys[user]:
            seen[key] = seen.get(key, 0) + 1
    for (kind, _), n in seen.items():
        if n > 1 and kind in LINKING_KEYS:
            shared[kind] = shared.get(kind, 0) + 1
    evidence = {
        "members": len(keys),
        "linked": len(largest),
        "share": round(share, 2),
        "accounts": largest,
        "shared_keys": shared,
        "clusters": [len(c) for c in clusters],
        "min_linked": rule.min_linked,
        "min_share": rule.min_share,
    }
    return verdict(ruleset, [Hit(rule.name, rule.score, evidence)]), largest
