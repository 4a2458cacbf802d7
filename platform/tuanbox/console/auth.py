"""Who may use /console: merchant staff, by an HttpOnly cookie (or a bearer header), with a
CSRF token on every state-changing form.

Signing in on ``/console/signin`` (login + password, through accounts.signin's SignInGuard:
the same windows and lockout as the API's password grant) stores the platform's own
short-lived access token in ``tuanbox_console``: ``HttpOnly``, ``SameSite=Strict``, path
``/console``, ``Secure`` when the public URL is https. A browser request authenticated by the
cookie that changes state must carry the CSRF token (form field ``csrf`` or header
``X-CSRF-Token``): an HMAC of the cookie's token under a key derived from the secret key, so
nothing is stored and signing out (a new token) changes it. Its Origin, when sent, must name
this host. A bearer header is no ambient credential: requests carrying one need no token.

Every console page depends on :data:`StaffDep` (a :class:`ConsoleStaff`): the staff user and
their merchant id. Anyone else is refused: anonymous 401 (pages redirect to sign-in), other
roles 403.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from tuanbox.accounts.deps import Principal
from tuanbox.api.deps import SettingsDep
from tuanbox.crypto import derive_key
from tuanbox.errors import AuthenticationError, PermissionDeniedError
from tuanbox.settings import Settings

COOKIE = "tuanbox_console"
COOKIE_PATH = "/console"
SIGNIN_PATH = "/console/signin"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
STAFF_ROLES = frozenset({"merchant_staff"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN = 4096


class ConsoleSignInRequired(AuthenticationError):
    """No (valid) console session: pages answer with a redirect to the sign-in page."""

    code = "CONSOLE_SIGN_IN_REQUIRED"

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in at /console/signin")
        self.next_path = next_path


@dataclass(frozen=True)
class ConsoleStaff:
    """The signed-in staff member of one merchant; every query a page makes is scoped by
    ``merchant_id``."""

    principal: Principal
    merchant_id: str
    csrf: str  # the token forms must carry ("" for bearer callers, who need none)

    @property
    def id(self) -> str:
        return self.principal.id


def csrf_token(settings: Settings, access_token: str) -> str:
    key = derive_key(settings.secret_key.get_secret_value(), "console-csrf")
    return hmac.new(key, access_token.encode(), hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


def _principal(request: Request, settings: Settings, token: str) -> Principal | None:
    from tuanbox.accounts.revocation import ensure_current
    from tuanbox.accounts.tokens import decode_access_token

    if len(token) > MAX_TOKEN:
        return None
    try:
        principal = decode_access_token(settings, token)
        ensure_current(request, principal)
    except AuthenticationError:
        return None
    return principal


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def check_same_origin(request: Request) -> None:
    """A state-changing request whose Origin names another host is refused."""
    origin = request.headers.get("origin")
    if request.method in SAFE_METHODS or not origin:
        return
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise PermissionDeniedError("cross-origin requests to /console are refused")


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)  # Starlette caches the parsed form
        return value if isinstance(value, str) else ""
    return ""


async def csrf_checked(request: Request) -> str | None:
    """The cookie's CSRF token when this request may proceed; raises for a cookie-borne
    state-changing request without the right token. None: no cookie (bearer or anonymous)."""
    cookie = request.cookies.get(COOKIE)
    if _bearer(request) is not None or not cookie:
        return None
    settings: Settings = request.app.state.settings
    expected = csrf_token(settings, cookie)
    if request.method not in SAFE_METHODS:
        check_same_origin(request)
        sent = await _sent_csrf(request)
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise PermissionDeniedError(
                "this form is missing its security token or it has expired: reload the page"
            )
    return expected


def require_staff(
    request: Request,
    settings: SettingsDep,
    csrf: Annotated[str | None, Depends(csrf_checked)],
) -> ConsoleStaff:
    """The dependency of every console route: 401 (a page: redirect to sign-in) without a
    session, 403 for any role but merchant staff."""
    bearer = _bearer(request)
    token = bearer if bearer is not None else request.cookies.get(COOKIE)
    principal = _principal(request, settings, token) if token else None
    if principal is None:
        if bearer is None and request.method in SAFE_METHODS:
            raise ConsoleSignInRequired(_here(request))
        raise AuthenticationError("sign in at /console/signin")
    if principal.role not in STAFF_ROLES or not principal.merchant_id:
        raise PermissionDeniedError("the console is for merchant staff")
    request.state.principal = principal
    return ConsoleStaff(principal=principal, merchant_id=principal.merchant_id,
                        csrf=csrf or "")  # fmt: skip


StaffDep = Annotated[ConsoleStaff, Depends(require_staff)]


def signin_redirect(next_path: str) -> str:
    return f"{SIGNIN_PATH}?next={quote(next_path, safe='/')}"


def set_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.access_token_ttl_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def safe_next(value: str | None) -> str:
    """A path inside the console to go back to after sign-in, else the console's home."""
    if (not value or len(value) > 500 or not value.startswith("/console")
            or "\\" in value or any(ord(ch) < 0x20 for ch in value)):  # fmt: skip
        return "/console"
    return value
