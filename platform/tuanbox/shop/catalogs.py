"""Keep the message catalogs in step with the code: `python -m tuanbox.shop.catalogs [--check]`.

Extracts every ``_()``/``{% trans %}`` string of this package's Python and templates, merges
the result into ``locale/{zh,en}/LC_MESSAGES/messages.po`` (new strings empty, vanished ones
dropped), and writes them back; ``--check`` writes nothing and exits 1 when a string the code
uses is missing from a catalog or has no Chinese (English falls back to the msgid itself).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from tuanbox.shop.i18n import DOMAIN, LOCALE_DIR, LOCALES

HERE = Path(__file__).parent
METHODS = [
    ("**/templates/**.html", "jinja2.ext.babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {
    "**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                             "lstrip_blocks": "true"},
}  # fmt: skip
# Languages whose every message needs its own text; English source strings are the English.
MUST_TRANSLATE = ("zh",)


def extract() -> Catalog:
    template = Catalog(domain=DOMAIN, project="tuanbox", fuzzy=False)
    for _file, _line, message, comments, context in extract_from_dir(
        str(HERE), METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None,
                                                           "ngettext": (1, 2)},
    ):  # fmt: skip
        template.add(message, None, [], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, domain=DOMAIN, project="tuanbox", fuzzy=False)
    with path.open("rb") as fp:
        return read_po(fp, locale=locale, domain=DOMAIN)


def _render(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, omit_header=False, no_location=True, width=100,
             ignore_obsolete=True, sort_output=True)  # fmt: skip
    return out.getvalue()


def merged(locale: str, template: Catalog) -> Catalog:
    catalog = _read(locale)
    created = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True)
    catalog.creation_date = created
    catalog.obsolete.clear()
    catalog.fuzzy = False
    catalog.revision_date = catalog.creation_date  # stable output: no timestamp churn
    return catalog


def problems() -> list[str]:
    """What is wrong with the catalogs (empty when all is well): a string the code uses that a
    catalog lacks, or that Chinese leaves untranslated. Entries the code no longer uses are
    tolerated (the next update drops them), so two changes can add strings side by side."""
    template = extract()
    found: list[str] = []
    for locale in LOCALES:
        catalog = _read(locale)
        missing = [m.id for m in template if m.id and m.id not in catalog]
        found += [f"{locale}: {mid!r} is not in {po_path(locale).name}" for mid in missing]
        if locale in MUST_TRANSLATE:
            found += [f"{locale}: no translation of {m.id!r}" for m in template
                      if m.id and m.id in catalog and not _done(catalog[m.id])]  # fmt: skip
    if found:
        found.append("run python -m tuanbox.shop.catalogs, then translate (README.md)")
    return found


def _done(message: Message) -> bool:
    text = message.string
    if not message.id:
        return True  # the header
    return bool(text) if isinstance(text, str) else bool(text) and all(text or ())


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = problems()
        print("\n".join(found) or "catalogs in step")
        return 1 if found else 0
    template = extract()
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_render(merged(locale, template)))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
