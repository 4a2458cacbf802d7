"""Admin API: let a merchant staff account see shoppers' personal data in clear (or not)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.deps import Admin
from tuanbox.api.deps import SessionDep
from tuanbox.api.openapi_problems import problems
from tuanbox.merchant_orders.permissions import may_reveal_pii, set_pii_access

router = APIRouter(prefix="/api/v1", tags=["console"])


class PiiAccessIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"allowed": True, "reason": "after-sales lead"}]}
    )

    allowed: bool = Field(description="True: phones and names in clear in console and exports")
    reason: str = Field(min_length=3, max_length=300)


class PiiAccessOut(BaseModel):
    user_id: str
    allowed: bool
    changed: bool


@router.put(
    "/staff/{staff_id}/pii-access",
    response_model=PiiAccessOut,
    responses=problems(401, 403, 404, 422),
)
def put_pii_access(
    staff_id: str, body: PiiAccessIn, user: Admin, session: SessionDep
) -> PiiAccessOut:
    """Admins: whether this merchant staff account sees shoppers' phones and names in clear
    in the console and its exports (audited; masked by default)."""
    changed = set_pii_access(
        session, staff_id, allowed=body.allowed, reason=body.reason, actor=user.actor
    )
    session.commit()
    return PiiAccessOut(
        user_id=staff_id, allowed=may_reveal_pii(session, staff_id), changed=changed
    )
