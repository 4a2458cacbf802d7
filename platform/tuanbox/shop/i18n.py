"""Message catalogs (zh, en) compiled from the committed .po files on first use, and the
request's language: the switch's cookie, then Accept-Language, then Chinese."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

LOCALES = ("zh", "en")
DEFAULT = "zh"
COOKIE = "tuanbox_lang"
# <html lang> of each locale: screen readers and the browser's font choice read it.
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


@cache
def translations(locale: str) -> Translations:
    """The catalog of ``locale``, compiled in memory from its .po (no generated .mo in git)."""
    if locale not in LOCALES:
        raise ValueError(f"no catalog for {locale!r}")
    with (LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def _from_accept_language(header: str) -> str | None:
    """The first of our locales the header names, by its q order (ties keep header order)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else None


def locale_of(request: Request) -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LOCALES:
        return chosen
    return _from_accept_language(request.headers.get("accept-language", "")) or DEFAULT


def gettext_for(locale: str) -> Callable[[str], str]:
    """``_`` for Python code (error texts chosen by code); templates use the i18n extension."""
    return translations(locale).gettext
