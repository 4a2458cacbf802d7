"""Merchants' licence documents: staff upload them, ops approve or reject each (audited).

Files are checked by their bytes (PNG, JPEG or PDF, at most MAX_LICENCE_BYTES) and stored
under ``<media_dir>/licences/`` by content hash, outside what ``/media`` serves. Approving a
document marks its merchant verified: the "Verified" shoppers see beside the name."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.errors import ImageRejectedError
from tuanbox.catalog.models import Merchant, MerchantLicence
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError

MAX_LICENCE_BYTES = 10 * 1024 * 1024
MAX_PER_MERCHANT = 50
SUBDIR = "licences"
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
DECISIONS = ("approved", "rejected")


class LicenceRejectedError(ImageRejectedError):
    code = "LICENCE_REJECTED"


def sniff(data: bytes) -> tuple[str, str]:
    for magic, content_type, ext in _SIGNATURES:
        if data.startswith(magic):
            return content_type, ext
    raise LicenceRejectedError("only PDF, PNG and JPEG files are accepted")


def store_licence(
    session: Session,
    actor: Actor,
    media_dir: str,
    merchant_id: str,
    data: bytes,
    original_name: str = "",
) -> MerchantLicence:
    if not data:
        raise LicenceRejectedError("the file is empty")
    if len(data) > MAX_LICENCE_BYTES:
        raise LicenceRejectedError(f"licence files are limited to {MAX_LICENCE_BYTES} bytes")
    content_type, ext = sniff(data)
    if len(licences_of(session, merchant_id)) >= MAX_PER_MERCHANT:
        raise ConflictError(f"a merchant keeps at most {MAX_PER_MERCHANT} licence files")
    filename = f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
    root = Path(media_dir) / SUBDIR
    root.mkdir(parents=True, exist_ok=True)
    target = root / filename
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".part")  # write, then rename
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    licence = MerchantLicence(
        merchant_id=merchant_id,
        filename=filename,
        original_name=original_name[:200],
        content_type=content_type,
        size_bytes=len(data),
        uploaded_by=actor.id,
        status="pending",
    )
    session.add(licence)
    session.flush()
    record(
        session,
        actor,
        "merchant.licence_upload",
        "merchant",
        merchant_id,
        details={"licence_id": licence.id, "file": filename},
    )
    return licence


def licences_of(session: Session, merchant_id: str) -> list[MerchantLicence]:
    return list(
        session.scalars(
            select(MerchantLicence)
            .where(MerchantLicence.merchant_id == merchant_id)
            .order_by(MerchantLicence.created_at.desc(), MerchantLicence.id)
        )
    )


def get_licence(
    session: Session, licence_id: str, merchant_id: str | None = None
) -> MerchantLicence:
    """The licence; with ``merchant_id``, only that merchant's (another's is not found)."""
    licence = session.get(MerchantLicence, licence_id)
    if licence is None or (merchant_id is not None and licence.merchant_id != merchant_id):
        raise NotFoundError("no such licence file")
    return licence


def licence_path(media_dir: str, licence: MerchantLicence) -> Path:
    return Path(media_dir) / SUBDIR / licence.filename


def review_licence(
    session: Session, actor: Actor, licence_id: str, decision: str, note: str
) -> MerchantLicence:
    """Ops' decision on one document. Approving marks the merchant verified; a rejection
    leaves the merchant's state to the other documents (and to ops' verification API)."""
    if decision not in DECISIONS:
        raise InvalidInputError("decision must be approved or rejected", field="decision")
    licence = get_licence(session, licence_id)
    if licence.status != "pending":
        raise ConflictError(f"this licence file was already {licence.status}")
    licence.status = decision
    licence.reviewed_by = actor.id
    licence.reviewed_at = utcnow()
    licence.review_note = note[:500]
    record(
        session,
        actor,
        f"merchant.licence_{decision}",
        "merchant",
        licence.merchant_id,
        reason=note,
        details={"licence_id": licence.id},
    )
    merchant = session.get(Merchant, licence.merchant_id)
    if decision == "approved" and merchant is not None and not merchant.verified:
        merchant.verified = True
        record(
            session,
            actor,
            "merchant.verify",
            "merchant",
            merchant.id,
            reason=note,
            before={"verified": False},
            after={"verified": True},
        )
    return licence
