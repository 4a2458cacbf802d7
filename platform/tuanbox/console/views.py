"""The console's router (mounted once by api.app) and its error pages.

A console module adds its page by listing its router in MODULES below (see
/work/notes/console_skeleton.md and README.md in this package)."""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from tuanbox.console import auth
from tuanbox.errors import TuanboxError

# Each name is a module of this package exposing `router`; routing tries them in this order.
MODULES: tuple[str, ...] = (
    "signin",
    # products (their SKUs and photos), lots, campaigns (list and create; pause, resume, end,
    # cancel), credentials
    "products",
    "skus",
    "photos",
    "lots",
    "campaigns",
    "campaign_actions",
    "credentials",
    # orders side
    "orders",
    "waves",
    "presale",
    "returns",
    "reviews",
    # the dashboard (tuanbox.reports)
    "reports",
    # segments, pushes and experiments (tuanbox.segments, tuanbox.experiments)
    "targeting",
    # coupon templates and issuance; invite tasks, new-user offers, leaderboards
    "coupons",
    "invites",
)

router = APIRouter(tags=["console"], include_in_schema=False)
for _name in MODULES:
    router.include_router(import_module(f"tuanbox.console.{_name}").router)


def _wants_html(request: Request) -> bool:
    return request.url.path.startswith("/console") and "text/html" in request.headers.get(
        "accept", ""
    )


def install_handlers(app: FastAPI) -> None:
    """Signed-out page loads go to the sign-in page; a browser's refusal on a console page is
    a page in its language (API callers keep the problem responses)."""
    problem = app.exception_handlers[TuanboxError]

    async def _console(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, TuanboxError)
        if isinstance(exc, auth.ConsoleSignInRequired):
            return RedirectResponse(auth.signin_redirect(exc.next_path), status_code=303)
        if not _wants_html(request):
            answer = problem(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return _error_page(request, exc)

    app.add_exception_handler(TuanboxError, _console)


def _error_page(request: Request, exc: TuanboxError) -> Response:
    from tuanbox.console.i18n import gettext_for, locale_of
    from tuanbox.console.render import page

    _ = gettext_for(locale_of(request))
    headings = {401: _("Please sign in"), 403: _("Not allowed"), 404: _("Not found"),
                409: _("That cannot be done now"), 422: _("Please check what you entered"),
                429: _("Too many attempts")}  # fmt: skip
    messages = {
        "FORBIDDEN": _("This page or action is not available to your account."),
        "NOT_FOUND": _("There is nothing here, or it belongs to another merchant."),
        "UNAUTHENTICATED": _("Your session has ended. Please sign in again."),
    }
    message = messages.get(exc.code) or _("That could not be done: %(detail)s") % {
        "detail": str(exc)}  # fmt: skip
    if exc.code == "FORBIDDEN" and "security token" in str(exc):
        message = _("This form has expired or was not sent from the console. Reload the page "
                    "and try again.")  # fmt: skip
    status = exc.status if 400 <= exc.status < 600 else 500
    heading = headings.get(status, _("Something went wrong"))
    return page(request, None, "console_error.html",
                {"heading": heading, "message": message, "back": "/console"},
                status_code=status)  # fmt: skip
