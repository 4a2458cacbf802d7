"""Risk decisions: record and score an event, file the decision in the review queue, hold.

A decision at the review threshold lands in the queue (one open review per subject, later
decisions about it update that review) and holds its orders (`orders.risk_hold`): they may
be paid but are not confirmed (`awaiting: review`) until ops approve the review. The entry
points that call these for each kind of event are in `tuanbox.risk.services`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.risk import signals
from tuanbox.risk.models import RiskHold, RiskReview
from tuanbox.risk.rules import Action, Event, RuleSet, build_ruleset
from tuanbox.risk.scoring import Facts, Verdict, evaluate, verdict
from tuanbox.risk.signals import Hasher, Keys
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.risk")


def ruleset_of(settings: Settings) -> RuleSet:
    """The rules these settings configure (validated when the settings were read)."""
    return build_ruleset(
        settings.risk_rules,
        review_score=settings.risk_review_score,
        block_score=settings.risk_block_score,
    )


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def user_key(user_id: str, event: Event) -> str:
    return f"user:{user_id}:{event.value}"


@dataclass
class Screening:
    """One screened event: its verdict and the ids of the signal rows it recorded."""

    event: Event
    user_id: str
    verdict: Verdict
    signal_ids: list[int] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return self.verdict.action


def keys_for(
    session: Session,
    settings: Settings,
    user_id: str,
    *,
    ip: str | None = None,
    device_id: str | None = None,
    payer: str | None = None,
) -> Keys:
    """The event's keys as blind indexes, with the account's addresses and payment accounts."""
    hasher = Hasher(settings)
    addresses, payers = signals.sticky_keys(session, user_id)
    return Keys(
        user_id,
        ip=hasher.ip(ip) if ip else None,
        device=hasher.device(device_id) if device_id else None,
        addresses=addresses,
        payers=payers + ((payer,) if payer else ()),
    )


def screen(
    session: Session,
    settings: Settings,
    event: Event,
    keys: Keys,
    *,
    subject_key: str,
    order_id: str | None = None,
    flash_order: bool = False,
    ref: str | None = None,
    now: datetime | None = None,
) -> Screening | None:
    """Record the event's signals and score it; None when `ref` was recorded before."""
    ruleset = ruleset_of(settings)
    if not settings.risk_enabled:
        return Screening(event, keys.user_id, verdict(ruleset, ()))
    moment = now or utcnow()
    ids = signals.record(session, event, keys, now=moment, order_id=order_id, ref=ref)
    if ids is None:
        return None
    account = signals.account_facts(
        session, keys.user_id, now=moment, flash_order=flash_order, exclude_subject=subject_key
    )
    counts = signals.count_facts(session, ruleset, keys, moment, event, evidence=False)
    decided = evaluate(ruleset, Facts(event=event, counts=counts, **account))
    if decided.action is not Action.ALLOW:
        # Only a decision that is filed cites the accounts and orders behind its counts: a
        # shared carrier-NAT address past its (low-scoring) IP rules is most joins' case, and
        # the evidence queries would run on each of them for nothing.
        counts = signals.count_facts(session, ruleset, keys, moment, event)
        decided = evaluate(ruleset, Facts(event=event, counts=counts, **account))
    return Screening(event, keys.user_id, decided, ids)


def file_review(
    session: Session,
    *,
    subject_type: str,
    subject_id: str,
    event: Event,
    user_id: str | None,
    decided: Verdict,
    orders: Sequence[Order] = (),
    money_taken: bool = False,
) -> RiskReview:
    """Put a decision in the review queue (or update the subject's open review) and hold
    its orders. With `money_taken`, a block is held for review: a person decides on refunds."""
    key = user_key(subject_id, event) if subject_type == "user" else f"{subject_type}:{subject_id}"
    action = Action.REVIEW if money_taken else decided.action
    evidence: dict[str, Any] = {"attempt_scores": [decided.score]}
    if money_taken and decided.action is Action.BLOCK:
        evidence["block_held_for_review"] = "the money was already taken"
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_id = session.scalar(
        insert(RiskReview)
        .values(
            subject_type=subject_type,
            subject_id=subject_id,
            subject_key=key,
            user_id=user_id,
            event=event.value,
            score=decided.score,
            action=action.value,
            status="open",
            hits=decided.as_json(),
            evidence=evidence,
            attempts=1,
        )
        .on_conflict_do_nothing(index_elements=["subject_key"], index_where=text("status = 'open'"))
        .returning(RiskReview.id)
    )
    if new_id is not None:
        review = session.get(RiskReview, new_id)
        assert review is not None
    else:
        review = session.scalars(
            select(RiskReview)
            .where(RiskReview.subject_key == key, RiskReview.status == "open")
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        review.attempts += 1
        review.evidence = {
            **review.evidence,
            "attempt_scores": [*review.evidence.get("attempt_scores", []), decided.score][-20:],
        }
        if decided.score >= review.score:
            review.score, review.hits = decided.score, decided.as_json()
        if action is Action.BLOCK:
            review.action = Action.BLOCK.value
    for order in orders:
        hold(session, review, order)
    session.flush()
    log.warning(
        "risk %s: %s %s (score %d, rules %s), review %d",
        action.value,
        subject_type,
        subject_id,
        decided.score,
        ",".join(h.rule for h in decided.hits),
        review.id,
    )
    return review


def hold(session: Session, review: RiskReview, order: Order) -> None:
    """The order waits for this review: it is not confirmed until the review is approved."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RiskHold)
        .values(review_id=review.id, order_id=order.id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["review_id", "order_id"])
    )
    order.risk_hold = True
