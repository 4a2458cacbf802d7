"""GS1 Digital Link resolving (GS1 Digital Link URI syntax, GS1-Conformant resolver standard):
identifier checks, link types, the linkset (RFC 9264) and the Link header. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from traceability.identifiers import check_digit
from tuanbox.errors import TuanboxError

VOC = "https://gs1.org/voc/"
# What a request may name a link type by: the gs1: CURIE or one of GS1's vocabulary IRIs.
_VOC_PREFIXES = ("gs1:", VOC, "https://www.gs1.org/voc/", "https://ref.gs1.org/voc/")
TRACEABILITY = VOC + "traceability"
PIP = VOC + "pip"
DEFAULT_LINK = VOC + "defaultLink"
LINKSET_TYPE = "application/linkset+json"
# GS1 AI (10) takes CSET 82 (GS1 General Specifications, figure 7.11-1), at most 20 of them.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


class InvalidDigitalLinkError(TuanboxError):
    """The request's GS1 identifier breaks the standard's syntax (the resolver answers 400)."""

    code = "INVALID_DIGITAL_LINK"
    status = 400
    title = "Invalid GS1 Digital Link"


class ProductNotFoundError(TuanboxError):
    code = "PRODUCT_NOT_FOUND"
    status = 404
    title = "Product not found"


def gtin14(value: str) -> str:
    """AI (01) as a Digital Link path carries it: 14 digits, the last the mod-10 check digit."""
    if len(value) != 14 or not value.isascii() or not value.isdigit():
        raise InvalidDigitalLinkError(
            f"GTIN {value[:40]!r}: a Digital Link carries a GTIN as 14 digits", field="gtin"
        )
    expected = check_digit(value[:13])
    if value[13] != expected:
        raise InvalidDigitalLinkError(
            f"GTIN {value} has a wrong check digit (expected {expected})", field="gtin"
        )
    return value


def lot_ai10(value: str) -> str:
    """AI (10) batch/lot: 1 to 20 characters of GS1 CSET 82 (after percent-decoding)."""
    if not _CSET82.match(value):
        raise InvalidDigitalLinkError(
            f"lot {value[:40]!r}: AI (10) takes 1 to 20 characters of GS1 CSET 82", field="lot"
        )
    return value


def link_type(value: str) -> str | None:
    """A requested linkType as its full IRI; ``all`` and ``linkset`` ask for the linkset."""
    if value in ("all", "linkset"):
        return value
    for prefix in _VOC_PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return VOC + value[len(prefix) :]
    return None


@dataclass(frozen=True)
class Link:
    """One target link of a link type (RFC 9264 target attributes)."""

    href: str
    title: str
    type: str = "text/html"
    hreflang: tuple[str, ...] = ("zh", "en")

    def as_json(self) -> dict[str, Any]:
        return {
            "href": self.href,
            "title": self.title,
            "type": self.type,
            "hreflang": list(self.hreflang),
        }


def dl_path(gtin: str, lot: str | None) -> str:
    """Our resolver's own path for the identifier (lot percent-encoded as a path segment)."""
    return f"/01/{gtin}" + (f"/10/{quote(lot, safe='')}" if lot is not None else "")


def links_for(
    base_url: str, gtin: str, lot: str | None, product_name: str
) -> tuple[Link, dict[str, Link]]:
    """The default link and the link of every type this identifier has.

    A lot's default is its trace page (what the QR on the pack is for); a bare GTIN's is its
    product information page.
    """
    base = base_url.rstrip("/")
    pip = Link(f"{base}/product/{gtin}", f"{product_name} · 商品信息 product information")
    links = {PIP: pip}
    if lot is None:
        return pip, links
    trace = Link(
        f"{base}/trace/lot/{gtin}/{quote(lot, safe='')}",
        f"{product_name} · 批次 {lot} 溯源 traceability",
    )
    links[TRACEABILITY] = trace
    return trace, links


def linkset(anchor: str, default: Link, links: dict[str, Link]) -> dict[str, Any]:
    """RFC 9264 JSON linkset, link types as GS1 vocabulary IRIs (``defaultLink`` included)."""
    context: dict[str, Any] = {"anchor": anchor, DEFAULT_LINK: [default.as_json()]}
    for relation, link in sorted(links.items()):
        context[relation] = [link.as_json()]
    return {"linkset": [context]}


def link_header(anchor: str, default: Link, links: dict[str, Link]) -> str:
    """RFC 8288 Link header: the linkset itself, then every typed link."""
    parts = [f'<{anchor}?linkType=all>; rel="linkset"; type="{LINKSET_TYPE}"']
    for relation, link in [(DEFAULT_LINK, default), *sorted(links.items())]:
        # Titles are Chinese and English: they go in the linkset, header values stay ASCII.
        langs = "".join(f'; hreflang="{lang}"' for lang in link.hreflang)
        parts.append(f'<{link.href}>; rel="{relation}"; type="{link.type}"{langs}')
    return ", ".join(parts)
