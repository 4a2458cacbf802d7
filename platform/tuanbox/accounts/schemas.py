"""Request and response bodies of the accounts API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.models import Role
from tuanbox.bounds import AddressText


class OtpRequest(BaseModel):
    phone: str = Field(min_length=6, max_length=32, examples=["+8613800138000"])


class OtpSent(BaseModel):
    sent: bool = True
    expires_in: int


class OtpGrant(BaseModel):
    grant_type: Literal["otp"]
    phone: str = Field(min_length=6, max_length=32, examples=["+8613800138000"])
    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])


class PasswordGrant(BaseModel):
    grant_type: Literal["password"]
    login: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class RefreshGrant(BaseModel):
    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(min_length=10)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "rt_8Jc2…"}]})

    refresh_token: str = Field(min_length=10)


TokenRequest = Annotated[OtpGrant | PasswordGrant | RefreshGrant, Field(discriminator="grant_type")]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    merchant_id: str | None
    display_name: str | None
    active: bool = True


class UserStatusChange(BaseModel):
    """Why an admin disables or re-enables an account (kept in the audit log)."""

    reason: str = Field(
        min_length=1, max_length=500, examples=["phone reported stolen; ticket #4821"]
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    user: UserOut


class StaffCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "role": "merchant_staff",
                    "login": "green.valley.wang",
                    "password": "correct horse 42",
                    "merchant_id": "m-3f1c…",
                    "display_name": "Wang (Green Valley Farm)",
                },
                {
                    "role": "courier",
                    "login": "green.valley.courier.li",
                    "password": "another horse 42",
                    "merchant_id": "m-3f1c…",
                    "display_name": "Li (courier, Green Valley Farm)",
                },
            ]
        }
    )

    # merchant_staff and courier need merchant_id (a courier sees only that merchant's run
    # sheet lines); ops and admin must not have one.
    role: Literal[Role.MERCHANT_STAFF, Role.COURIER, Role.OPS, Role.ADMIN]
    login: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=200)
    merchant_id: str | None = None
    display_name: str | None = Field(default=None, max_length=100)


class MeOut(UserOut):
    phone: str | None = None


class AddressIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"label": "home", "text": "Room 302, Bldg 5, 88 Lianhua Rd, Shenzhen"}]
        }
    )

    label: str = Field(default="home", min_length=1, max_length=50)
    text: AddressText


class AddressOut(BaseModel):
    id: str
    label: str
    text: str
