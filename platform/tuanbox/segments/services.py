"""Named segments: rules checked on the way in, members and live counts as one query each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.segments.models import RfmScore, Segment, UserTag

RULE_KINDS = ("rfm", "dormant", "tag")


def check_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule in its stored form, or InvalidInputError naming what is wrong."""
    kind = rule.get("kind")
    if kind == "rfm":
        out: dict[str, Any] = {"kind": "rfm"}
        for name in ("r_min", "f_min", "m_min"):
            value = rule.get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
                raise InvalidInputError(f"{name} must be a whole number from 1 to 5", field=name)
            out[name] = value
        return out
    if kind == "dormant":
        days = rule.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise InvalidInputError("days must be a whole number from 1 to 3650", field="days")
        return {"kind": "dormant", "days": days}
    if kind == "tag":
        tag = rule.get("tag")
        if not isinstance(tag, str) or not 1 <= len(tag) <= 40:
            raise InvalidInputError("tag must be 1 to 40 characters", field="tag")
        return {"kind": "tag", "tag": tag}
    raise InvalidInputError("kind must be rfm, dormant or tag", field="kind")


def create(session: Session, merchant_id: str, name: str, rule: dict[str, Any]) -> Segment:
    if not 1 <= len(name.strip()) <= 80:
        raise InvalidInputError("name must be 1 to 80 characters", field="name")
    taken = session.scalar(
        select(Segment.id).where(Segment.merchant_id == merchant_id, Segment.name == name.strip())
    )
    if taken is not None:
        raise InvalidInputError("a segment of that name exists", field="name")
    row = Segment(merchant_id=merchant_id, name=name.strip(), rule=check_rule(rule))
    session.add(row)
    session.flush()
    return row


def get(session: Session, merchant_id: str, segment_id: str) -> Segment:
    row = session.get(Segment, segment_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFoundError("no such segment")
    return row


def members_query(segment: Segment, now: datetime | None = None) -> Select[str]:
    """The user ids of the segment's members, as one SELECT."""
    rule = segment.rule
    if rule["kind"] == "tag":
        return select(UserTag.user_id).where(
            UserTag.merchant_id == segment.merchant_id, UserTag.tag == rule["tag"]
        )
    query = select(RfmScore.user_id).where(RfmScore.scope == segment.merchant_id)
    if rule["kind"] == "dormant":
        since = (now or utcnow()) - timedelta(days=rule["days"])
        return query.where(RfmScore.last_paid_at < since)
    return query.where(
        RfmScore.r >= rule["r_min"], RfmScore.f >= rule["f_min"], RfmScore.m >= rule["m_min"]
    )


def members(session: Session, segment: Segment, now: datetime | None = None) -> list[str]:
    query = members_query(segment, now).subquery()
    return list(session.scalars(select(query.c.user_id).order_by(query.c.user_id)))


def count(session: Session, segment: Segment, now: datetime | None = None) -> int:
    return (
        session.scalar(select(func.count()).select_from(members_query(segment, now).subquery()))
        or 0
    )


def listing(session: Session, merchant_id: str) -> list[tuple[Segment, int]]:
    rows = session.scalars(
        select(Segment).where(Segment.merchant_id == merchant_id).order_by(Segment.name)
    )
    return [(row, count(session, row)) for row in rows]


def tag(session: Session, merchant_id: str, user_id: str, name: str) -> None:
    """Tag a shopper by hand (again: nothing changes)."""
    if not 1 <= len(name) <= 40:
        raise InvalidInputError("tag must be 1 to 40 characters", field="tag")
    if session.get(UserTag, (merchant_id, user_id, name)) is None:
        session.add(UserTag(merchant_id=merchant_id, user_id=user_id, tag=name, source="manual"))
        session.flush()
