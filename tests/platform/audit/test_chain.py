"""The chain's pure parts: canonical bytes and hash (a fixed vector), and the walk's verdicts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tuanbox.audit.chain import GENESIS, ChainWalk, Link, canonical, entry_hash, jsonable

AT = datetime(2026, 12, 6, 8, 30, 0, 123456, tzinfo=UTC)


def link(seq: int, prev: str, **changes: object) -> Link:
    base = Link(
        seq=seq,
        prev_hash=prev,
        at=AT,
        actor_id="u-1",
        actor_role="ops",
        ip="203.0.113.7",
        action="order.refund",
        subject_type="order",
        subject_id="o-1",
        reason="damaged box",
        details={"amount_cents": 500, "note": "桃子"},
        before={"refundable_cents": 2700},
        after={"refundable_cents": 2200},
        request_id="r-1",
    )
    return replace(base, **changes)


def chain(n: int) -> list[tuple[Link, str]]:
    out, head = [], GENESIS
    for seq in range(1, n + 1):
        item = link(seq, head, subject_id=f"o-{seq}")
        head = entry_hash(item)
        out.append((item, head))
    return out


def test_canonical_form_is_the_documented_one() -> None:
    expected = (
        '{"action":"order.refund","actor_id":"u-1","actor_role":"ops",'
        '"after":{"refundable_cents":2200},"at":"2026-12-06T08:30:00.123456Z",'
        '"before":{"refundable_cents":2700},"details":{"amount_cents":500,'
        '"note":"\\u6843\\u5b50"},"ip":"203.0.113.7","prev_hash":"' + GENESIS + '",'
        '"reason":"damaged box","request_id":"r-1","seq":1,"subject_id":"o-1",'
        '"subject_type":"order","v":"tuanbox-audit-v1"}'
    )
    assert canonical(link(1, GENESIS)).decode() == expected
    assert entry_hash(link(1, GENESIS)) == hashlib.sha256(expected.encode()).hexdigest()


def test_time_is_hashed_in_utc_whatever_its_zone() -> None:
    shanghai = AT.astimezone(timezone(timedelta(hours=8)))
    naive = AT.replace(tzinfo=None)  # how SQLite reads it back
    assert entry_hash(link(1, GENESIS, at=shanghai)) == entry_hash(link(1, GENESIS))
    assert entry_hash(link(1, GENESIS, at=naive)) == entry_hash(link(1, GENESIS))


@pytest.mark.parametrize(
    "change",
    [
        {"actor_id": "u-2"},
        {"actor_role": "admin"},
        {"ip": None},
        {"action": "order.cancel"},
        {"subject_type": "refund"},
        {"subject_id": "o-9"},
        {"reason": "damaged box "},
        {"details": {"amount_cents": 501, "note": "桃子"}},
        {"before": {"refundable_cents": 2701}},
        {"after": None},
        {"request_id": None},
        {"at": AT + timedelta(microseconds=1)},
        {"prev_hash": "1" * 64},
    ],
)
def test_every_field_is_hashed(change: dict[str, object]) -> None:
    assert entry_hash(replace(link(1, GENESIS), **change)) != entry_hash(link(1, GENESIS))
    assert entry_hash(replace(link(1, GENESIS), seq=2)) != entry_hash(link(1, GENESIS))


def test_jsonable_is_what_a_json_column_gives_back() -> None:
    assert jsonable({"at": AT, "price": Decimal("9.90"), "ids": (1, 2), 3: "x"}) == {
        "at": "2026-12-06T08:30:00.123456Z",
        "price": "9.90",
        "ids": [1, 2],
        "3": "x",
    }
    assert jsonable(None) is None
    with pytest.raises(ValueError, match="Out of range float"):
        jsonable({"t": float("nan")})
    with pytest.raises(TypeError, match="object cannot go into the audit log"):
        jsonable({"o": object()})


def test_walk_accepts_an_intact_chain() -> None:
    walk = ChainWalk()
    assert all(walk.feed(item, digest) is None for item, digest in chain(5))
    assert walk.seq == 5


def test_walk_names_the_first_bad_seq() -> None:
    rows = chain(5)
    edited = [(replace(item, reason="x") if item.seq == 3 else item, h) for item, h in rows]
    deleted = [r for r in rows if r[0].seq != 3]
    swapped = [rows[0], rows[1], (replace(rows[3][0], seq=3), rows[3][1]),
               (replace(rows[2][0], seq=4), rows[2][1]), rows[4]]  # fmt: skip
    duplicated = [*rows[:3], rows[2], *rows[3:]]
    cases = {"edited": edited, "deleted": deleted, "swapped": swapped, "duplicated": duplicated}
    kinds = {"edited": "edited", "deleted": "missing", "swapped": "link", "duplicated": "duplicate"}
    for case, tampered in cases.items():
        walk = ChainWalk()
        found = next(b for b in (walk.feed(i, h) for i, h in tampered) if b is not None)
        assert (found.seq, found.kind) == (3, kinds[case]), case
