"""The shopper's browser session: HttpOnly cookies holding the platform's own tokens.

Pages cannot send a bearer header, so signing in on ``/signin`` stores the short-lived access
token in ``tuanbox_shop`` (``SameSite=Lax``: a shared campaign link opened from a chat app
arrives signed in) and the refresh token in ``tuanbox_shop_rt``, sent only to
the ``/signin`` paths (refresh, and sign-out, which revokes it). A page whose access token
has expired sends the browser through ``/signin/refresh`` once, which rotates the refresh
token (accounts.tokens) and comes back.

Cross-site request forgery: Lax keeps both cookies off cross-site POSTs, and every
state-changing form post must also carry an ``Origin`` (or, failing that, ``Referer``)
naming this host — browsers always send one on a POST, so a post without either is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

from tuanbox.accounts.deps import Principal
from tuanbox.errors import AuthenticationError, PermissionDeniedError
from tuanbox.settings import Settings

ACCESS = "tuanbox_shop"
REFRESH = "tuanbox_shop_rt"
REFRESH_PATH = "/signin/refresh"
SIGNOUT_PATH = "/signin/out"
# The refresh cookie travels to the sign-in paths only (refresh, and sign-out to revoke it).
REFRESH_COOKIE_PATH = "/signin"
# Not a secret: tells a page that a refresh is worth trying once the access token is gone
# (the refresh cookie itself only travels to REFRESH_PATH).
MARKER = "tuanbox_shop_signed"
MAX_NEXT = 500


def shopper_from(request: Request, settings: Settings) -> Principal | None:
    """Whoever the access cookie names, or None: absent, invalid, expired or revoked
    (the revocation check is accounts.revocation's, the one every API request makes)."""
    from tuanbox.accounts.revocation import ensure_current
    from tuanbox.accounts.tokens import decode_access_token

    token = request.cookies.get(ACCESS)
    if not token or len(token) > 4096:
        return None
    try:
        principal = decode_access_token(settings, token)
        ensure_current(request, principal)
    except AuthenticationError:
        return None
    return principal


def signed_in(request: Request, settings: Settings) -> bool:
    """The access cookie is genuine and unexpired. Only for what a page's header shows (sign
    in or sign out): no Redis lookup, so a cached page costs none. Anything of the shopper's
    own goes through ``shopper_from``, which also refuses revoked tokens."""
    from tuanbox.accounts.tokens import decode_access_token

    token = request.cookies.get(ACCESS)
    if not token or len(token) > 4096:
        return False
    try:
        decode_access_token(settings, token)
    except AuthenticationError:
        return False
    return True


def can_refresh(request: Request) -> bool:
    """True when the browser holds a refresh cookie (known from the marker set beside it)."""
    return request.cookies.get(MARKER) == "1"


def _secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def set_tokens(response: Response, settings: Settings, access: str, refresh: str) -> None:
    secure = _secure(settings)
    response.set_cookie(
        ACCESS,
        access,
        max_age=settings.access_token_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        REFRESH,
        refresh,
        max_age=settings.refresh_token_ttl_s,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        MARKER,
        "1",
        max_age=settings.refresh_token_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_tokens(response: Response) -> None:
    response.delete_cookie(ACCESS, path="/")
    response.delete_cookie(MARKER, path="/")
    response.delete_cookie(REFRESH, path=REFRESH_COOKIE_PATH)


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request unless its Origin (or Referer) names this host."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or source == "null" or urlsplit(source).netloc != host:
        raise PermissionDeniedError("this form must be sent from this site's own pages")


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to: absolute path on this host only (no //host, no scheme,
    no backslash or control characters), so a sign-in link cannot redirect elsewhere."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/"):
        return default
    if value.startswith("//") or "\\" in value or any(ord(ch) < 0x20 for ch in value):
        return default
    return value
