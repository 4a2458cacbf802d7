"""The shop's Jinja2 environments (one per locale, with the i18n extension) and page responses."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tuanbox.shop import i18n

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}  # fmt: skip


@cache
def static_version(name: str) -> str:
    """A short content hash for ``?v=``: a changed file gets a new URL, so it may be cached."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/shop/static/{name}?v={static_version(name)}"


def money(cents: int | None) -> str:
    """Integer cents as yuan for display: 1290 → ¥12.90 (money stays integer until here)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    yuan, fen = divmod(abs(int(cents)), 100)
    return f"{sign}¥{yuan}.{fen:02d}"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clock(at: datetime, tz: str) -> str:
    """Month-day hour:minute in the station's zone: what a page shows without script."""
    return at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")


@cache
def environment(locale: str) -> Environment:
    """Built on first use per locale, not at import."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = money
    env.filters["iso"] = iso
    env.filters["clock"] = clock
    env.globals["static_url"] = static_url
    env.globals["locale"] = locale
    env.globals["html_lang"] = i18n.HTML_LANG[locale]
    env.globals["locales"] = i18n.LOCALES
    return env


def render(locale: str, name: str, context: dict[str, Any]) -> str:
    return environment(locale).get_template(name).render(context)


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``name`` in the request's language; every shop page gets ``request``, ``path``
    (for the language switch and sign-in's way back) and ``shopper`` (None when signed out)."""
    locale = i18n.locale_of(request)
    full = {
        "request": request,
        "path": _here(request),
        "shopper": None,
        # The server's clock for shop.js's countdowns (a cached fragment holds instants only).
        "now_ms": int(time.time() * 1000),
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


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
