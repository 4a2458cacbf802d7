"""Staff sign-in on a page (login + password), sign-out, the console's home and its assets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.console import auth
from tuanbox.console.auth import StaffDep
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import STATIC, STATIC_TYPES, page, static_version
from tuanbox.errors import NotFoundError

router = APIRouter(include_in_schema=False)
STATIC_NAMES = frozenset(p.name for p in STATIC.iterdir() if p.suffix in STATIC_TYPES)
NextField = Annotated[str, Form(alias="next", max_length=500)]


def _signin_page(request: Request, status_code: int = 200, headers: dict[str, str] | None = None,
                 **context: object) -> HTMLResponse:  # fmt: skip
    full = {"error": None, "login": "", "next": "/console", **context}
    return page(request, None, "console_signin.html", full, status_code=status_code,
                headers=headers)  # fmt: skip


@router.get("/console/signin", response_class=HTMLResponse)
def signin_page(
    request: Request,
    next_: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> HTMLResponse:
    return _signin_page(request, next=auth.safe_next(next_))


@router.post("/console/signin", response_model=None)
def signin(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    login: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    next_: NextField = "/console",
) -> HTMLResponse | RedirectResponse:
    """The limits and lockout of the API's password grant (accounts.signin.SignInGuard,
    sharing its per-IP bucket), admitting merchant staff only; every refusal reads alike."""
    from tuanbox.accounts.deps import Principal
    from tuanbox.accounts.signin import SignInGuard
    from tuanbox.accounts.tokens import issue_access_token
    from tuanbox.errors import AuthenticationError, RateLimitedError
    from tuanbox.ratelimit.deps import client_ip, get_redis

    auth.check_same_origin(request)  # no signing a victim's browser into another account
    _ = gettext_for(locale_of(request))
    back = auth.safe_next(next_)
    guard = SignInGuard(get_redis(request), settings)
    ip = client_ip(request)
    try:
        guard.check_ip(ip)
        user = guard.password(session, login, password, ip=ip, roles=auth.STAFF_ROLES)
    except RateLimitedError as exc:
        error = _("Too many attempts. Please try again in %(s)s seconds.") % {
            "s": exc.retry_after}  # fmt: skip
        return _signin_page(request, 429, {"Retry-After": str(exc.retry_after)}, error=error,
                            login=login, next=back)  # fmt: skip
    except AuthenticationError:
        return _signin_page(request, 401, error=_("Wrong login or password."), login=login,
                            next=back)  # fmt: skip
    session.commit()  # a password rehash, if any
    principal = Principal(user.id, user.role, merchant_id=user.merchant_id,
                          token_version=user.token_version)  # fmt: skip
    response = RedirectResponse(back, status_code=303)
    auth.set_cookie(response, settings, issue_access_token(settings, principal))
    return response


@router.post("/console/signout")
def signout(_csrf: Annotated[str | None, Depends(auth.csrf_checked)]) -> RedirectResponse:
    """Clear the cookie (a signed-in browser's post must carry its CSRF token)."""
    response = RedirectResponse(auth.SIGNIN_PATH, status_code=303)
    auth.clear_cookie(response)
    return response


@router.get("/console", response_class=HTMLResponse)
def home(request: Request, staff: StaffDep, session: SessionDep) -> HTMLResponse:
    from tuanbox.catalog.models import Merchant

    merchant = session.get(Merchant, staff.merchant_id)
    name = merchant.name if merchant is not None else ""
    return page(request, staff, "console_home.html", {"merchant_name": name})


@router.get("/console/static/{name}")
def static(name: str, v: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """A file by name (no paths); a request naming its current ``v`` may be cached a year."""
    if name not in STATIC_NAMES:
        raise NotFoundError(f"no static file {name}")
    path = STATIC / name
    current = v == static_version(name)
    cache = "public, max-age=31536000, immutable" if current else "public, max-age=300"
    return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                    headers={"Cache-Control": cache})  # fmt: skip
