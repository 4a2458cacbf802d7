"""Who is calling: the bearer-token principal, and role checks every endpoint declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tuanbox.api.deps import SettingsDep
from tuanbox.audit.services import Actor
from tuanbox.errors import AuthenticationError, PermissionDeniedError

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/token")


@dataclass(frozen=True)
class Principal:
    id: str
    role: str
    merchant_id: str | None = None
    # The account's token version when the token was issued (claim `ver`); disabling the
    # account bumps it, so every older token is refused (accounts.revocation).
    token_version: int = field(default=0, compare=False)

    @property
    def actor(self) -> Actor:
        return Actor(id=self.id, role=self.role)

    def staff_of(self, merchant_id: str) -> bool:
        return self.role == "merchant_staff" and self.merchant_id == merchant_id


def get_current_user(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    from tuanbox.accounts.revocation import ensure_current
    from tuanbox.accounts.tokens import decode_access_token

    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("a bearer access token is required")
    principal = decode_access_token(settings, credentials.credentials)
    ensure_current(request, principal)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require_roles(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that admits only these roles: `Depends(require_roles("ops", "admin"))`."""
    allowed = frozenset(roles)

    def _check(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise PermissionDeniedError(
                f"this action needs one of the roles: {', '.join(sorted(allowed))}"
            )
        return user

    return _check


Shopper = Annotated[Principal, Depends(require_roles("shopper"))]
Staff = Annotated[Principal, Depends(require_roles("merchant_staff", "admin"))]
OpsOrAdmin = Annotated[Principal, Depends(require_roles("ops", "admin"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
