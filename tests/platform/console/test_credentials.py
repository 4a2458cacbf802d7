"""Credentials: licence upload (checked by its bytes), the staff's own files only, ops'
review (audited) turning into the Verified badge shoppers see."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient, ConsoleWorld
from tests.platform.factories import auth_header, make_user
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.catalog.models import Merchant, MerchantLicence
from tuanbox.settings import Settings

EN = {"Accept-Language": "en"}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63f8cfc0f01f0005000201a5f6c9b80000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_upload_review_and_verified_badge(
    console: ConsoleClient, db_session: Session, client: TestClient, settings: Settings
) -> None:
    world = console.world
    merchant = db_session.get(Merchant, world.merchant_id)
    assert merchant is not None
    merchant.verified = False
    db_session.flush()
    page = console.get("/console/credentials", headers=EN)
    assert page.status_code == 200
    assert "Not verified yet" in page.text and merchant.licence_number in page.text

    for upload, words in (
        (("l.pdf", b"", "application/pdf"), "choose a file first"),
        (("l.exe", b"MZ\x90\x00", "application/pdf"), "not a PDF, PNG or JPEG"),
        (("l.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), "application/pdf"), "larger than 10 MB"),
    ):
        refused = console.post(
            "/console/credentials/licences",
            data={"csrf": console.csrf},
            files={"licence": upload},
            headers=EN,
        )
        assert refused.status_code == 422 and words in refused.text, refused.text[:500]
    assert (
        console.post(
            "/console/credentials/licences", files={"licence": ("l.pdf", PDF, "application/pdf")}
        ).status_code
        == 403
    )
    ok = console.post(
        "/console/credentials/licences",
        data={"csrf": console.csrf},
        files={"licence": ("licence.pdf", PDF, "application/pdf")},
    )
    assert ok.status_code == 303
    licence = db_session.scalars(
        select(MerchantLicence).where(MerchantLicence.merchant_id == world.merchant_id)
    ).one()
    assert licence.status == "pending" and licence.original_name == "licence.pdf"
    page = console.get("/console/credentials", headers=EN)
    assert "Waiting for review" in page.text and "licence.pdf" in page.text
    own = console.get(f"/console/credentials/licences/{licence.id}")
    assert own.status_code == 200 and own.content == PDF
    assert client.get(f"/media/{licence.filename}").status_code == 404  # never public

    ops = make_user(db_session, "ops")
    queue = client.get("/api/v1/ops/merchant-licences", headers=auth_header(settings, ops))
    assert [item["id"] for item in queue.json()["items"]] == [licence.id]
    staff_call = client.get(
        "/api/v1/ops/merchant-licences", headers=auth_header(settings, world.staff)
    )
    assert staff_call.status_code == 403
    file = client.get(
        f"/api/v1/ops/merchant-licences/{licence.id}/file", headers=auth_header(settings, ops)
    )
    assert file.status_code == 200 and file.content == PDF
    reviewed = client.post(
        f"/api/v1/ops/merchant-licences/{licence.id}/review",
        json={"decision": "approved", "note": "matches the register"},
        headers=auth_header(settings, ops),
    )
    assert reviewed.status_code == 200 and reviewed.json()["merchant_verified"] is True
    twice = client.post(
        f"/api/v1/ops/merchant-licences/{licence.id}/review",
        json={"decision": "rejected", "note": "changed my mind"},
        headers=auth_header(settings, ops),
    )
    assert twice.status_code == 409
    actions = {
        e.action
        for e in db_session.scalars(
            select(AuditEntry).where(AuditEntry.subject_id == world.merchant_id)
        )
    }
    assert {"merchant.licence_upload", "merchant.licence_approved", "merchant.verify"} <= actions
    page = console.get("/console/credentials", headers=EN)
    assert "Your credentials are verified" in page.text and "Approved" in page.text
    public = client.get(f"/api/v1/merchants/{world.merchant_id}").json()
    assert public["verified"] is True


def test_another_merchants_licence_is_not_found(
    console: ConsoleClient,
    console_as: Callable[[User], ConsoleClient],
    console_world: ConsoleWorld,
) -> None:
    assert (
        console.post(
            "/console/credentials/licences",
            data={"csrf": console.csrf},
            files={"licence": ("l.pdf", PDF, "application/pdf")},
        ).status_code
        == 303
    )
    page = console.get("/console/credentials")
    licence_id = page.text.split("/console/credentials/licences/")[1].split('"')[0]
    other = console_as(console_world.other_staff)
    assert other.get(f"/console/credentials/licences/{licence_id}").status_code == 404
    assert "l.pdf" not in other.get("/console/credentials").text
    shopper = console_as(console_world.shopper)
    assert shopper.get("/console/credentials").status_code == 403


def test_ops_review_page(
    console: ConsoleClient, db_session: Session, client: TestClient, settings: Settings
) -> None:
    world = console.world
    ok = console.post(
        "/console/credentials/licences",
        data={"csrf": console.csrf},
        files={"licence": ("scan.png", PNG, "image/png")},
    )
    assert ok.status_code == 303
    licence = db_session.scalars(
        select(MerchantLicence).where(MerchantLicence.merchant_id == world.merchant_id)
    ).one()
    ops = auth_header(settings, make_user(db_session, "ops"))
    page = client.get("/ops/licences", headers=ops)
    assert page.status_code == 200
    assert "scan.png" in page.text and f'data-licence-id="{licence.id}"' in page.text
    assert client.get(f"/ops/licences/{licence.id}/file", headers=ops).content == PNG
    staff = client.get(
        "/ops/licences", headers=auth_header(settings, world.staff), follow_redirects=False
    )
    assert staff.status_code == 303 and staff.headers["location"] == "/ops/login"
    cross = client.post(
        f"/ops/licences/{licence.id}/review",
        headers={**ops, "Origin": "https://x.example"},
        json={"decision": "rejected", "note": "blurred scan"},
    )
    assert cross.status_code == 403
    rejected = client.post(
        f"/ops/licences/{licence.id}/review",
        headers=ops,
        json={"decision": "rejected", "note": "blurred scan"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    shown = console.get("/console/credentials", headers=EN)
    assert "Rejected" in shown.text and "blurred scan" in shown.text
