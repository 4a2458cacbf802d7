"""Ops search and export of the audit log over HTTP, and the /ops/audit page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_merchant, make_product, make_sku, make_user
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor, record
from tuanbox.ops.auth import COOKIE
from tuanbox.settings import Settings

URL = "/api/v1/ops/audit"
EXPORT = "/api/v1/ops/audit/export.csv"


@pytest.fixture
def ops(db_session: Session, settings: Settings) -> dict[str, str]:
    return auth_header(settings, make_user(db_session, "ops"))


@pytest.fixture
def entries(db_session: Session) -> list[AuditEntry]:
    """Five committed entries from two people; the last one's reason starts with `=`."""
    ann, bob = Actor("u-ann", "ops"), Actor("u-bob", "admin")
    made = []
    for actor, action, subject, day in [
        (ann, "order.refund", ("order", "o-1"), 1),
        (ann, "order.cancelled", ("order", "o-2"), 2),
        (bob, "user.disable", ("user", "u-9"), 3),
        (bob, "order_x.refund", ("order", "o-1"), 4),
        (ann, "alert.resolve", ("ops_alert", "7"), 5),
    ]:
        entry = record(
            db_session,
            actor,
            action,
            *subject,
            reason='=HYPERLINK("x")',
            before={"status": "open"},
            after={"status": "done"},
        )
        entry.at = datetime(2026, 12, day, 9, tzinfo=UTC)
        made.append(entry)
    db_session.commit()
    return made


def test_only_ops_and_admins_read_it(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    assert client.get(URL).status_code == 401
    assert client.get(EXPORT).status_code == 401
    merchant = make_merchant(db_session)
    for role in ("shopper", "merchant_staff", "courier"):
        user = make_user(db_session, role, merchant.id if role != "shopper" else None)
        for url in (URL, EXPORT):
            refused = client.get(url, headers=auth_header(settings, user))
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", role
    for role in ("ops", "admin"):
        assert client.get(
            URL, headers=auth_header(settings, make_user(db_session, role))
        ).is_success


def test_search_filters_and_pages_by_seq(
    client: TestClient, ops: dict[str, str], entries: list[AuditEntry]
) -> None:
    def seqs(**params: Any) -> list[int]:
        reply = client.get(URL, params=params, headers=ops)
        assert reply.status_code == 200, reply.text
        return [item["seq"] for item in reply.json()["items"]]

    s = [e.seq for e in entries]
    assert seqs()[:5] == s[::-1]  # newest first
    assert seqs(actor="u-bob") == [s[3], s[2]]
    assert seqs(action="order.refund") == [s[0]]
    assert seqs(action="order.*") == [s[1], s[0]]  # `_` in the prefix is not a wildcard
    assert seqs(subject_type="order", subject_id="o-1") == [s[3], s[0]]
    assert seqs(since="2026-12-02T09:00:00Z", until="2026-12-04T09:00:00+00:00") == [s[2], s[1]]
    assert seqs(since="2026-12-05T16:00:00+08:00") == [s[4]]  # an offset is honoured
    first = client.get(URL, params={"limit": 2, "actor": "u-ann"}, headers=ops).json()
    assert [i["seq"] for i in first["items"]] == [s[4], s[1]]
    assert first["next_before_seq"] == s[1]
    rest = client.get(
        URL, params={"limit": 2, "actor": "u-ann", "before_seq": s[1]}, headers=ops
    ).json()
    assert [i["seq"] for i in rest["items"]] == [s[0]] and rest["next_before_seq"] is None
    item = rest["items"][0]
    assert item["before"] == {"status": "open"} and item["after"] == {"status": "done"}
    assert item["at"] == "2026-12-01T09:00:00.000000Z" and len(item["hash"]) == 64


@pytest.mark.parametrize(
    "params",
    [
        {"before_seq": 2**63},
        {"before_seq": 0},
        {"limit": 501},
        {"since": "yesterday"},
        {"since": "0001-01-01T00:00:00+05:00"},
        {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        {"action": "order.%"},
        {"action": "x" * 65},
        {"actor": "a\x01b"},
        {"subject_id": "a\x00b"},
    ],
)
def test_bad_filters_are_422_problems(
    client: TestClient, ops: dict[str, str], params: dict[str, Any]
) -> None:
    paging = {"before_seq", "limit"} & set(params)
    for url in (URL,) if paging else (URL, EXPORT):  # the export is not paged
        reply = client.get(url, params=params, headers=ops)
        assert reply.status_code == 422, (url, params, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")


def test_export_streams_csv_and_is_audited(
    client: TestClient, db_session: Session, ops: dict[str, str], entries: list[AuditEntry]
) -> None:
    reply = client.get(EXPORT, params={"actor": "u-ann", "action": "order.*"}, headers=ops)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [int(r["seq"]) for r in rows] == [entries[0].seq, entries[1].seq]  # oldest first
    assert rows[0]["reason"] == '\'=HYPERLINK("x")'  # never a live formula in a spreadsheet
    assert rows[0]["after"] == '{"status": "done"}' and rows[0]["hash"] == entries[0].hash
    export = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "audit.export")
    ).one()
    assert export.details == {"filters": {"actor": "u-ann", "action": "order.*"}}
    assert export.actor_role == "ops" and export.seq is not None
    # Searching is not itself audited (that would never end); exporting is.
    client.get(URL, headers=ops)
    assert (
        db_session.scalar(sa.select(sa.func.count()).where(AuditEntry.action.like("audit.%"))) == 1
    )


def test_requests_record_ip_request_id_and_before_after(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant), stock=7)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    headers = {**auth_header(settings, staff), "X-Request-ID": "restock-1"}
    reply = client.post(f"/api/v1/skus/{sku.id}/restock", json={"add": 5}, headers=headers)
    assert reply.status_code == 200, reply.text
    entry = db_session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "sku.restock", AuditEntry.subject_id == sku.id
        )
    ).one()
    assert (entry.ip, entry.request_id) == ("testclient", "restock-1")
    assert (entry.before, entry.after) == ({"stock_on_hand": 7}, {"stock_on_hand": 12})
    assert entry.actor_id == staff.id and entry.seq is not None


def test_ops_page_lists_and_filters(
    client: TestClient, db_session: Session, settings: Settings, entries: list[AuditEntry]
) -> None:
    assert client.get("/ops/audit", follow_redirects=False).headers["location"] == "/ops/login"
    staff = auth_header(
        settings, make_user(db_session, "merchant_staff", make_merchant(db_session).id)
    )
    client.cookies.set(COOKIE, staff["Authorization"][7:], path="/ops")
    assert client.get("/ops/audit", follow_redirects=False).status_code == 303
    ops = auth_header(settings, make_user(db_session, "ops"))
    client.cookies.set(COOKIE, ops["Authorization"][7:], path="/ops")
    blank = "actor=&action=&subject_type=&subject_id=&since=&until="  # an empty form
    page = client.get(f"/ops/audit?{blank}")
    assert page.status_code == 200 and "Audit log" in page.text
    assert all(f'data-seq="{e.seq}"' in page.text for e in entries)
    only = client.get("/ops/audit", params={"actor": "u-bob", "since": "2026-12-01T00:00"})
    assert f'data-seq="{entries[3].seq}"' in only.text
    assert f'data-seq="{entries[0].seq}"' not in only.text
    assert (
        'href="/ops/audit/export.csv?actor=u-bob&amp;since=2026-12-01T00%3A00%3A00%2B00%3A00"'
        in only.text
    )
    exported = client.get("/ops/audit/export.csv", params={"actor": "u-bob"})
    assert exported.status_code == 200 and exported.text.count("\n") == 3  # header + 2
