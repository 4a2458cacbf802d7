"""The console's Jinja2 environments (per locale: console templates over the shop's, so the
shop's ``_components.html`` macros are shared) and its page responses."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from tuanbox.console import i18n
from tuanbox.console.auth import ConsoleStaff
from tuanbox.shop import i18n as shop_i18n
from tuanbox.shop import render as shop_render

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}  # fmt: skip

# The nav every console page shows: (key, path, label). Labels are msgids; the template
# translates them. A module whose page is not built yet still has its place here.
NAV: tuple[tuple[str, str, str], ...] = (
    ("products", "/console/products", "Products"),
    ("campaigns", "/console/campaigns", "Campaigns"),
    ("orders", "/console/orders", "Orders"),
    ("reports", "/console/reports", "Reports"),
    ("reviews", "/console/reviews", "Reviews"),
    ("segments", "/console/segments", "Segments"),
    ("experiments", "/console/experiments", "Experiments"),
    ("coupons", "/console/coupons", "Coupons"),
    ("invites", "/console/invites", "Invites"),
    ("credentials", "/console/credentials", "Credentials"),
)


def _nav_labels() -> None:
    """Never called: lets the catalog extractor see the nav's msgids."""
    _ = i18n.gettext_for("en")
    _("Products"), _("Campaigns"), _("Orders"), _("Reports"), _("Reviews"), _("Credentials")


@cache
def static_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    """``/console/static/<name>?v=<content hash>`` (cacheable for a year at that version)."""
    return f"/console/static/{name}?v={static_version(name)}"


@cache
def environment(locale: str) -> Environment:
    """Built on first use per locale, not at import."""
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(TEMPLATES)), FileSystemLoader(str(shop_render.TEMPLATES))]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = shop_render.money
    env.filters["iso"] = shop_render.iso
    env.filters["clock"] = shop_render.clock
    env.globals["static_url"] = static_url
    env.globals["shop_static_url"] = shop_render.static_url
    env.globals["locale"] = locale
    env.globals["html_lang"] = shop_i18n.HTML_LANG[locale]
    env.globals["locales"] = i18n.LOCALES
    env.globals["nav"] = NAV
    return env


def render(locale: str, name: str, context: dict[str, Any]) -> str:
    return environment(locale).get_template(name).render(context)


def page(
    request: Request,
    staff: ConsoleStaff | None,
    name: str,
    context: dict[str, Any],
    *,
    active: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``name`` (extending ``console_base.html``) in the request's language. Every page
    gets ``request``, ``path``, ``staff``, ``csrf``, ``csrf_field`` (put ``{{ csrf_field }}`` in
    each POST form) and ``active`` (the nav key to highlight)."""
    locale = i18n.locale_of(request)
    csrf = staff.csrf if staff else ""
    full = {
        "request": request,
        "path": shop_render._here(request),
        "staff": staff,
        "csrf": csrf,
        "active": active,
        # {{ csrf_field }} inside every <form method="post">.
        "csrf_field": Markup(f'<input type="hidden" name="csrf" value="{escape(csrf)}">'),  # noqa: S704 - the one value is escaped
        **context,
    }
    return HTMLResponse(
        render(locale, name, full),
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Content-Language": locale,
            "Vary": "Cookie",
            **(headers or {}),
        },
    )
