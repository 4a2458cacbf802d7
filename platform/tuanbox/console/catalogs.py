"""Keep the console's catalogs in step: `python -m tuanbox.console.catalogs NAME [GLOB...]`.

Strings come from this package's Python and templates. The console's translations are the
shop's catalog plus every ``locale/{zh,en}/LC_MESSAGES/*.po`` here, one file per owner
(``console.po``, ``orders.po``, ``reports.po``): so engineers adding pages side by side never
rewrite each other's file. ``NAME FILE-GLOB...`` adds the strings of those files (paths
relative to this package, e.g. ``orders.py templates/orders*.html``) that no catalog has yet
to ``NAME.po`` (new ones empty: translate them in ``zh/.../NAME.po``), and drops from
``NAME.po`` what the code no longer uses. Without globs it takes every file's strings.
``--check`` writes nothing and exits 1 when a string the code uses is in no catalog of a
locale, or has no Chinese.
"""

from __future__ import annotations

import fnmatch
import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from tuanbox.console.i18n import LOCALE_DIR, LOCALES
from tuanbox.shop import catalogs as shop_catalogs
from tuanbox.shop import i18n as shop_i18n

HERE = Path(__file__).parent
NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


def extract(only: list[str] | None = None) -> Catalog:
    """Every string of the package; with ``only`` (glob patterns of paths relative to the
    package, such as ``orders.py`` or ``templates/orders*.html``), those files' strings."""
    template = Catalog(domain=shop_i18n.DOMAIN, project="tuanbox", fuzzy=False)
    for file, _line, message, comments, context in extract_from_dir(
        str(HERE),
        shop_catalogs.METHODS,
        options_map=shop_catalogs.OPTIONS,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        if only is None or any(fnmatch.fnmatch(file, pattern) for pattern in only):
            template.add(message, None, [], auto_comments=comments, context=context)
    return template


def po_path(locale: str, name: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{name}.po"


def _read(path: Path, locale: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=locale, domain=shop_i18n.DOMAIN, project="tuanbox", fuzzy=False)
    with path.open("rb") as fp:
        return read_po(fp, locale=locale, domain=shop_i18n.DOMAIN)


def known(locale: str) -> dict[str, Catalog]:
    """Every catalog the console's translations merge, by file name (the shop's first)."""
    found = {"shop": _read(shop_catalogs.po_path(locale), locale)}
    for path in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        found[path.stem] = _read(path, locale)
    return found


def _translated(catalogs: dict[str, Catalog], msgid: str, locale: str) -> bool | None:
    """None when no catalog has ``msgid``; else whether one of them translates it."""
    present = [c[msgid] for c in catalogs.values() if msgid in c]
    if not present:
        return None
    return locale not in shop_catalogs.MUST_TRANSLATE or any(shop_catalogs._done(m)
                                                             for m in present)  # fmt: skip


def problems() -> list[str]:
    template = extract()
    found: list[str] = []
    for locale in LOCALES:
        catalogs = known(locale)
        for message in template:
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            if not msgid:
                continue
            state = _translated(catalogs, msgid, locale)
            if state is None:
                found.append(f"{locale}: {msgid!r} is in no console catalog")
            elif not state:
                found.append(f"{locale}: no translation of {msgid!r}")
    if found:
        found.append("run python -m tuanbox.console.catalogs NAME, then translate NAME.po")
    return found


def update(name: str, only: list[str] | None = None) -> None:
    used = {m.id for m in extract() if m.id}
    mine = {m.id for m in extract(only) if m.id}
    for locale in LOCALES:
        catalogs = known(locale)
        path = po_path(locale, name)
        own = catalogs.get(name) or _read(path, locale)
        elsewhere = {mid for stem, c in catalogs.items() if stem != name for mid in
                     (m.id for m in c) if mid}  # fmt: skip
        for message in list(own):
            if message.id and message.id not in used:
                own.delete(message.id)
        for mid in sorted(mine - elsewhere):
            if mid not in own:
                own.add(mid, "")
        own.fuzzy = False
        out = io.BytesIO()
        write_po(out, own, omit_header=False, no_location=True, width=100,
                 ignore_obsolete=True, sort_output=True)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out.getvalue())
        print(f"wrote {path}")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = problems()
        print("\n".join(found) or "console catalogs in step")
        return 1 if found else 0
    names = [a for a in argv if not a.startswith("-")]
    if not names or not NAME.fullmatch(names[0]):
        print("usage: python -m tuanbox.console.catalogs NAME [FILE-GLOB ...] | --check")
        return 2
    update(names[0], names[1:] or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
