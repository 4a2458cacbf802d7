"""Sign in with phone and code on the page, sign out, refresh the session, switch language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.errors import AuthenticationError, InvalidInputError, RateLimitedError, TuanboxError
from tuanbox.shop import i18n, session
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.render import page

router = APIRouter(include_in_schema=False)
NextField = Annotated[str, Form(max_length=session.MAX_NEXT)]
PhoneField = Annotated[str, Form(min_length=1, max_length=32)]
YEAR_S = 365 * 86400


def _form(**context: object) -> dict[str, object]:
    return {"error": None, "sent": False, "phone": "", "minutes": 0, "next": "/", **context}


def _signin_page(
    request: Request, settings: SettingsDep, status_code: int = 200, **context: object
) -> HTMLResponse:
    inbox = settings.env == "development"
    headers = {}
    retry = context.pop("retry_after", None)
    if retry:
        headers["Retry-After"] = str(retry)
    return page(request, "signin.html", {**_form(**context), "inbox": inbox},
                status_code=status_code, headers=headers)  # fmt: skip


def _message(request: Request, exc: TuanboxError) -> str:
    """A refusal in the shopper's language, chosen by the error's stable code."""
    _ = gettext_for(i18n.locale_of(request))
    if isinstance(exc, RateLimitedError):
        return _("Too many attempts. Please try again in %(s)s seconds.") % {
            "s": getattr(exc, "retry_after", 60)
        }
    if exc.code == "RISK_BLOCKED":
        return _("We could not sign you in. Please contact support.")
    if exc.code == "INVALID_PHONE":
        return _("That does not look like a mobile phone number.")
    if isinstance(exc, AuthenticationError):
        return _("That code is wrong or has expired. Ask for a new one.")
    if isinstance(exc, InvalidInputError):
        return _("Please check what you typed.")
    return _("Something went wrong. Please try again.")


def _status(exc: TuanboxError) -> int:
    return exc.status if 400 <= exc.status < 500 else 503


@router.get("/signin", response_class=HTMLResponse)
def signin_page(
    request: Request,
    settings: SettingsDep,
    next_: Annotated[str | None, Query(alias="next", max_length=session.MAX_NEXT)] = None,
) -> HTMLResponse:
    return _signin_page(request, settings, next=session.safe_next(next_))


@router.post("/signin/code", response_class=HTMLResponse)
def send_code(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    phone: PhoneField,
    next_: Annotated[str, Form(alias="next", max_length=session.MAX_NEXT)] = "/",
) -> HTMLResponse:
    """The same use case, limits and texts as POST /api/v1/auth/otp (that view is called)."""
    from tuanbox.accounts.schemas import OtpRequest
    from tuanbox.accounts.views import request_otp

    session.check_same_origin(request)
    back = session.safe_next(next_)
    try:
        body = OtpRequest(phone=phone)
        sent = request_otp(body, request, db, settings, request.app.state.sms_sender)
    except TuanboxError as exc:
        return _signin_page(request, settings, _status(exc), error=_message(request, exc),
                            phone=phone, next=back,
                            retry_after=getattr(exc, "retry_after", None))  # fmt: skip
    except ValueError:  # the schema's own bounds
        _ = gettext_for(i18n.locale_of(request))
        error = _("That does not look like a mobile phone number.")
        return _signin_page(request, settings, 422, error=error, phone=phone, next=back)
    return _signin_page(request, settings, sent=True, phone=phone, next=back,
                        minutes=max(1, sent.expires_in // 60))  # fmt: skip


@router.post("/signin", response_model=None)
def verify(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    phone: PhoneField,
    code: Annotated[str, Form(min_length=1, max_length=12)],
    next_: Annotated[str, Form(alias="next", max_length=session.MAX_NEXT)] = "/",
) -> HTMLResponse | RedirectResponse:
    """The OTP grant of POST /api/v1/auth/token (that view is called: same guards and limits)."""
    from tuanbox.accounts.schemas import OtpGrant
    from tuanbox.accounts.views import token

    session.check_same_origin(request)  # no signing a victim's browser into another account
    back = session.safe_next(next_)
    try:
        grant = OtpGrant(grant_type="otp", phone=phone, code=code.strip())
        tokens = token(grant, request, db, settings)
    except TuanboxError as exc:
        return _signin_page(request, settings, _status(exc), error=_message(request, exc),
                            sent=True, phone=phone, next=back,
                            retry_after=getattr(exc, "retry_after", None))  # fmt: skip
    except ValueError:
        _ = gettext_for(i18n.locale_of(request))
        error = _("That code is wrong or has expired. Ask for a new one.")
        return _signin_page(request, settings, 422, error=error, sent=True, phone=phone, next=back)
    response = RedirectResponse(back, status_code=303)
    session.set_tokens(response, settings, tokens.access_token, tokens.refresh_token)
    return response


@router.get(session.REFRESH_PATH)
def refresh(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    next_: Annotated[str | None, Query(alias="next", max_length=session.MAX_NEXT)] = None,
) -> RedirectResponse:
    """Rotate the refresh cookie for a new access cookie, then go back; without a usable
    refresh token, sign-in (and the cookies are cleared)."""
    from tuanbox.accounts.deps import Principal
    from tuanbox.accounts.tokens import issue_access_token, rotate_refresh_token

    back = session.safe_next(next_)
    current = request.cookies.get(session.REFRESH, "")
    try:
        if not current or len(current) > 4096:
            raise AuthenticationError("no refresh token")
        user, renewed = rotate_refresh_token(db, settings, current)
    except AuthenticationError:
        response = RedirectResponse(f"/signin?next={_quote(back)}", status_code=303)
        session.clear_tokens(response)
        return response
    principal = Principal(id=user.id, role=user.role, merchant_id=user.merchant_id,
                          token_version=user.token_version)  # fmt: skip
    db.commit()
    response = RedirectResponse(back, status_code=303)
    session.set_tokens(response, settings, issue_access_token(settings, principal), renewed)
    return response


@router.post(session.SIGNOUT_PATH)
def signout(request: Request, db: SessionDep, settings: SettingsDep) -> RedirectResponse:
    """Clear the cookies and revoke the refresh token's family (this browser's chain)."""
    from tuanbox.accounts.tokens import revoke_refresh_family

    session.check_same_origin(request)
    current = request.cookies.get(session.REFRESH, "")
    if current and len(current) <= 4096:
        try:
            revoke_refresh_family(db, settings, current)
            db.commit()
        except AuthenticationError:
            pass  # already unusable: nothing to revoke
    response = RedirectResponse("/", status_code=303)
    session.clear_tokens(response)
    return response


@router.post("/lang")
def switch_language(
    request: Request,
    lang: Annotated[str, Form(max_length=5)],
    next_: Annotated[str, Form(alias="next", max_length=session.MAX_NEXT)] = "/",
) -> RedirectResponse:
    session.check_same_origin(request)
    if lang not in i18n.LOCALES:
        raise InvalidInputError(f"language must be one of {', '.join(i18n.LOCALES)}")
    response = RedirectResponse(session.safe_next(next_), status_code=303)
    response.set_cookie(i18n.COOKIE, lang, max_age=YEAR_S, path="/", samesite="lax",
                        httponly=True)  # fmt: skip
    return response


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
