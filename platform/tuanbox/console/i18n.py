"""The console's message catalogs: the shop's (its components' strings) plus every ``.po`` in
``console/locale/{zh,en}/LC_MESSAGES/`` (one file per console module's owner), merged."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

from tuanbox.shop import i18n as shop_i18n

LOCALES = shop_i18n.LOCALES
LOCALE_DIR = Path(__file__).parent / "locale"


def po_files(locale: str) -> list[Path]:
    return sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))


def _compiled(path: Path, locale: str) -> Translations:
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale, domain=shop_i18n.DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=shop_i18n.DOMAIN)


@cache
def translations(locale: str) -> Translations:
    """The shop's catalog of ``locale`` with the console's files merged over it."""
    if locale not in LOCALES:
        raise ValueError(f"no catalog for {locale!r}")
    merged = _compiled(shop_i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    for path in po_files(locale):
        merged.merge(_compiled(path, locale))
    return merged


def locale_of(request: Request) -> str:
    """The shop's choice: the language switch's cookie, then Accept-Language, then Chinese."""
    return shop_i18n.locale_of(request)


def gettext_for(locale: str) -> Callable[[str], str]:
    """``_`` for Python code (messages chosen by code); templates use the i18n extension."""
    return translations(locale).gettext
