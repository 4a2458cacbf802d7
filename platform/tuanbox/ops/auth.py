"""Who may see /ops: the ops and admin roles, by bearer header or by an HttpOnly cookie.

Browsers cannot put a bearer header on page loads, images or an EventSource, so the ops
login (password form, or a one-time hand-over of an access token on ``/ops/login?token=``
that is immediately redirected away from the URL) stores the platform's own short-lived
access token in an ``HttpOnly; SameSite=Strict`` cookie scoped to ``/ops``. SameSite=Strict
keeps the cookie off cross-site requests, and the state-changing endpoints only accept JSON
bodies (a cross-site form cannot send one without a CORS preflight, which we never allow),
so no separate CSRF token is needed.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from tuanbox.accounts.deps import Principal
from tuanbox.api.deps import SettingsDep
from tuanbox.errors import AuthenticationError, PermissionDeniedError
from tuanbox.settings import Settings

COOKIE = "tuanbox_ops"
OPS_ROLES = frozenset({"ops", "admin"})


def _signed_in(request: Request, settings: Settings) -> Principal | None:
    """Whoever this request's token names (any role), or None: no token, or one that is
    invalid, expired or revoked (its account disabled since)."""
    from tuanbox.accounts.revocation import ensure_current
    from tuanbox.accounts.tokens import decode_access_token

    header = request.headers.get("Authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = decode_access_token(settings, token)
        ensure_current(request, principal)
    except AuthenticationError:
        return None
    return principal


def principal_from(request: Request, settings: Settings) -> Principal | None:
    """The ops principal of this request, or None when not signed in (or wrong role)."""
    principal = _signed_in(request, settings)
    return principal if principal is not None and principal.role in OPS_ROLES else None


def check_same_origin(request: Request) -> None:
    """Defence in depth beside SameSite=Strict: a state-changing request sent by a browser
    from another origin (its Origin header names another host) is refused."""
    origin = request.headers.get("origin")
    if request.method in ("GET", "HEAD") or not origin:
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise PermissionDeniedError("cross-origin requests to /ops are refused")


def require_ops(request: Request, settings: SettingsDep) -> Principal:
    """For JSON endpoints: 401 without a valid token, 403 for a signed-in non-ops user."""
    check_same_origin(request)
    principal = _signed_in(request, settings)
    if principal is None:
        raise AuthenticationError("sign in at /ops/login")
    if principal.role not in OPS_ROLES:
        raise PermissionDeniedError("the ops pages need the ops or admin role")
    return principal


OpsUser = Annotated[Principal, Depends(require_ops)]


def set_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.access_token_ttl_s,
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ops")
