"""Ops' side of merchants' licence documents: the review queue, a file, a decision (audited).

Staff upload on the console's credentials page (tuanbox.console.credentials); approving a
document marks its merchant verified, which shoppers see beside the merchant's name."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tuanbox.accounts.deps import OpsOrAdmin
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.bounds import Id
from tuanbox.catalog import licences
from tuanbox.catalog.models import Merchant, MerchantLicence
from tuanbox.errors import NotFoundError
from tuanbox.ops.auth import OpsUser

router = APIRouter(tags=["catalog"])


class LicenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    merchant_name: str
    merchant_verified: bool
    original_name: str
    content_type: str
    size_bytes: int
    status: str
    created_at: datetime
    reviewed_at: datetime | None
    review_note: str | None


class LicenceList(BaseModel):
    items: list[LicenceOut]


class LicenceReviewIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"decision": "approved", "note": "matches the SAMR register entry"}]
        }
    )

    decision: Literal["approved", "rejected"]
    note: str = Field(min_length=3, max_length=500)


def _out(licence: MerchantLicence, merchant: Merchant) -> LicenceOut:
    return LicenceOut(
        id=licence.id,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        merchant_verified=merchant.verified,
        original_name=licence.original_name,
        content_type=licence.content_type,
        size_bytes=licence.size_bytes,
        status=licence.status,
        created_at=licence.created_at,
        reviewed_at=licence.reviewed_at,
        review_note=licence.review_note,
    )


@router.get(
    "/api/v1/ops/merchant-licences", response_model=LicenceList, responses=problems(401, 403)
)
def pending_licences(_ops: OpsOrAdmin, session: SessionDep) -> LicenceList:
    """Licence documents waiting for review, oldest first (at most 200)."""
    rows = session.execute(
        select(MerchantLicence, Merchant)
        .join(Merchant, Merchant.id == MerchantLicence.merchant_id)
        .where(MerchantLicence.status == "pending")
        .order_by(MerchantLicence.created_at, MerchantLicence.id)
        .limit(200)
    ).all()
    return LicenceList(items=[_out(licence, merchant) for licence, merchant in rows])


@router.get(
    "/api/v1/ops/merchant-licences/{licence_id}/file",
    response_model=None,
    response_class=FileResponse,
    responses={
        200: file_response("The uploaded file", "application/pdf", "image/png", "image/jpeg"),
        **problems(401, 403, 404),
    },
)
def licence_file(
    licence_id: Id, _ops: OpsOrAdmin, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The document as uploaded (for ops' review)."""
    licence = licences.get_licence(session, licence_id)
    path = licences.licence_path(settings.media_dir, licence)
    if not path.is_file():
        raise NotFoundError("the licence file is missing from the media directory")
    return FileResponse(
        path, media_type=licence.content_type, headers={"Cache-Control": "private, no-store"}
    )


@router.post(
    "/api/v1/ops/merchant-licences/{licence_id}/review",
    response_model=LicenceOut,
    responses=problems(401, 403, 404, 409, 422),
)
def review(
    licence_id: Id, body: LicenceReviewIn, ops: OpsOrAdmin, session: SessionDep
) -> LicenceOut:
    """Approve (the merchant becomes verified) or reject one document (audited)."""
    licence = licences.review_licence(session, ops.actor, licence_id, body.decision, body.note)
    merchant = session.get(Merchant, licence.merchant_id)
    assert merchant is not None  # the foreign key
    session.commit()
    return _out(licence, merchant)


# --- the same queue on the ops dashboard (its cookie, /ops/licences) ---------------------


@router.get("/ops/licences", include_in_schema=False, response_model=None)
def licences_page(
    request: Request, settings: SettingsDep, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    """Licence documents: pending first, then the last reviewed; approve or reject each."""
    from tuanbox.ops import auth
    from tuanbox.ops.views import templates

    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    rows = session.execute(
        select(MerchantLicence, Merchant)
        .join(Merchant, Merchant.id == MerchantLicence.merchant_id)
        .order_by((MerchantLicence.status == "pending").desc(), MerchantLicence.created_at.desc())
        .limit(200)
    ).all()
    context = {"user": user, "licences": [_out(licence, merchant) for licence, merchant in rows]}
    return templates().TemplateResponse(
        request, "licences.html", context, headers={"Cache-Control": "no-store"}
    )


@router.get("/ops/licences/{licence_id}/file", include_in_schema=False)
def ops_licence_file(
    licence_id: Id, _user: OpsUser, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    return licence_file(licence_id, _user, session, settings)


@router.post("/ops/licences/{licence_id}/review", include_in_schema=False)
def ops_review(
    licence_id: Id, body: LicenceReviewIn, user: OpsUser, session: SessionDep
) -> LicenceOut:
    """The page's approve / reject buttons (JSON, the /ops cookie)."""
    return review(licence_id, body, user, session)
