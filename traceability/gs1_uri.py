"""Constrained canonical GS1 Digital Link URIs for the event hash (CBV 2.0 §8.9, rules 17-18)."""

from __future__ import annotations

import re

from traceability.identifiers import check_digit

DL_BASE = "https://id.gs1.org"

# URN-escaped character set 82 (TDS 1.13 §5.3), as it may appear in an EPC URN component.
_CSET82 = (
    r"(?:%2[125-9A-Fa-f]|%3[0-9A-Fa-f]|%4[1-9A-Fa-f]|%5[0-9AaFf]|%6[1-9A-Fa-f]|%7[0-9Aa]"
    r"|[!')(*+,.0-9:;=A-Za-z_-])"
)
# Characters a key qualifier may carry in the constrained output (no percent escapes).
_QUAL = r"[\"'\-.0-9;-?A-Z_a-z]"
_SHORT_NAMES = (
    ("gtin", "01"),
    ("itip", "8006"),
    ("cpid", "8010"),
    ("gln", "414"),
    ("party", "417"),
    ("gsrnp", "8017"),
    ("gsrn", "8018"),
    ("gcn", "255"),
    ("sscc", "00"),
    ("gdti", "253"),
    ("ginc", "401"),
    ("gsin", "402"),
    ("grai", "8003"),
    ("giai", "8004"),
    ("cpv", "22"),
    ("lot", "10"),
    ("ser", "21"),
)
# Primary keys in the order a custom-domain prefix is cut at.
_PRIMARY = [
    "00",
    "01",
    "253",
    "255",
    "401",
    "402",
    "414",
    "417",
    "8003",
    "8004",
    "8006",
    "8010",
    "8017",
    "8018",
]
_KEY_ALT = (
    "01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc"
    "|253|gdti|401|ginc|402|gsin|8003|grai|8004|giai"
)
_DIGITAL_LINK = re.compile(
    r"^https?:(//(([^/?#]*)@)?([^/?#:]*)(:([^/?#]*))?)?"
    rf"(([^?#]*)(/({_KEY_ALT})/)(\d{{4}}[^/]+)(/[^/]+/[^/]+)?/?(\?[^?\n]*)?(#[^\n]*)?)"
)
_CANONICAL_HEAD = re.compile(
    r"^https://id\.gs1\.org/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)/\d{4}"
)
_VALID = [
    re.compile(rf"^https://id\.gs1\.org/{body}$")
    for body in (
        r"00/\d{18}",
        rf"01/\d{{14}}(/(21|10)/{_QUAL}{{0,20}}|/235/{_QUAL}{{0,28}})?",
        rf"253/\d{{13}}{_QUAL}{{0,17}}",
        r"255/\d{13}\d{0,12}",
        rf"401/{_QUAL}{{0,30}}",
        r"402/\d{17}",
        rf"414/\d{{13}}(/254/{_QUAL}{{0,20}})?",
        r"417/\d{13}",
        rf"8003/\d{{14}}{_QUAL}{{0,16}}",
        rf"8004/{_QUAL}{{0,30}}",
        rf"8006/\d{{18}}(/(21|10)/{_QUAL}{{0,20}})?",
        r"8010/[#\-/0-9A-Z]{0,30}(/8011/\d{0,12})?",
        r"8017/\d{18}",
        r"8018/\d{18}",
    )
]


def _escape(text: str) -> str:
    """Percent-encode what a Digital Link path segment must not carry raw (DL 1.2 table 7-1)."""
    for char in "!()*+,:":
        text = text.replace(char, f"%{ord(char):02X}")
    return text


def _with_check(digits: str) -> str:
    return digits + check_digit(digits)


def _gtin(company: str, item_ref: str) -> str:
    return _with_check(item_ref[0] + company + item_ref[1:])


def _partition(company: str, total: int, rest: str) -> bool:
    return 6 <= len(company) <= 12 and len(company) + len(rest) == total


def epc_urn_to_dl(urn: str) -> str | None:
    """An EPC pure-identity, class or pattern URN as its canonical Digital Link, if GS1 has one."""
    m = re.match(r"^urn:epc:(id|class|idpat):([a-z]+):(\d+)\.(.*)$", urn)
    if not m:
        return None
    kind, scheme, company, rest = m.groups()
    if not 6 <= len(company) <= 12:
        return None
    if (kind, scheme) == ("id", "giai"):
        if re.fullmatch(f"{_CSET82}{{1,{30 - len(company)}}}", rest):
            return f"{DL_BASE}/8004/{company}{_escape(rest)}"
        return None
    fields = rest.split(".", 1)
    ref, tail = fields[0], (fields[1] if len(fields) > 1 else None)
    if (kind, scheme) in (("id", "sgtin"), ("class", "lgtin")):
        if not (ref.isdigit() and len(company) + len(ref) == 13 and tail is not None):
            return None
        if not re.fullmatch(f"{_CSET82}{{1,20}}", tail):
            return None
        ai = "21" if scheme == "sgtin" else "10"
        return f"{DL_BASE}/01/{_gtin(company, ref)}/{ai}/{_escape(tail)}"
    if (kind, scheme) == ("idpat", "sgtin"):
        if ref.isdigit() and len(company) + len(ref) == 13 and tail == "*":
            return f"{DL_BASE}/01/{_gtin(company, ref)}"
        return None
    if kind != "id":
        return None
    if scheme == "sscc" and tail is None and ref.isdigit() and _partition(company, 17, ref):
        return f"{DL_BASE}/00/{_with_check(ref[0] + company + ref[1:])}"
    if scheme in ("sgln", "grai", "gdti") and tail is not None:
        if not (len(company) + len(ref) == 12 and (ref.isdigit() or ref == "")):
            return None
        if not re.fullmatch(f"{_CSET82}{{1,20}}", tail):
            return None
        key = _with_check(company + ref)
        if scheme == "sgln":
            return f"{DL_BASE}/414/{key}" + ("" if tail == "0" else f"/254/{_escape(tail)}")
        if scheme == "grai" and len(tail) <= 16:
            return f"{DL_BASE}/8003/0{key}{_escape(tail)}"
        if scheme == "gdti":
            return f"{DL_BASE}/253/{key}{_escape(tail)}"
        return None
    if tail is not None:
        return None
    if scheme == "pgln" and (ref.isdigit() or ref == "") and len(company) + len(ref) == 12:
        return f"{DL_BASE}/417/{_with_check(company + ref)}"
    if scheme in ("gsrn", "gsrnp") and ref.isdigit() and _partition(company, 17, ref):
        return f"{DL_BASE}/{'8018' if scheme == 'gsrn' else '8017'}/{_with_check(company + ref)}"
    return None


def constrained_dl(uri: str) -> str | None:
    """Any GS1 Digital Link as a constrained canonical one: ``https://id.gs1.org``, no query,
    the finest identification level only (rule 18); None when it is not one."""
    if _DIGITAL_LINK.match(uri) is None:
        return None
    uri = uri.split("?", 1)[0]
    for name, ai in _SHORT_NAMES:
        uri = uri.replace(f"/{name}/", f"/{ai}/")
    if _CANONICAL_HEAD.match(uri) is None:
        for ai in _PRIMARY:
            at = uri.find(f"/{ai}/")
            if at != -1:
                uri = DL_BASE + uri[at:]
                break
    gtin = re.match(r"^https://id\.gs1\.org/01/(\d+)", uri)
    if gtin and len(gtin.group(1)) < 14:
        short = gtin.group(1)
        pad = {13: 1, 12: 2}.get(len(short), 6 if len(short) >= 8 else 0)
        uri = uri.replace("/01/", "/01/" + "0" * pad, 1)
    cpv = re.match(r"^(https://id\.gs1\.org/(?:01/\d{14}|8006/\d{18}))/22/(.*)$", uri)
    if cpv and re.fullmatch(f"(?:{_QUAL}|/){{0,20}}", cpv.group(2)):
        rest = cpv.group(2)
        uri = cpv.group(1) + (rest[rest.find("/") :] if "/" in rest else "")
    lot_and_serial = re.match(
        rf"^(https://id\.gs1\.org/(?:01/\d{{14}}|8006/\d{{18}}))/10/{_QUAL}{{0,20}}(/21/{_QUAL}{{0,20}})$",
        uri,
    )
    if lot_and_serial:
        uri = lot_and_serial.group(1) + lot_and_serial.group(2)
    return uri if any(p.match(uri) for p in _VALID) else None


def normalise_gs1_uri(value: str) -> str | None:
    """The hash form of an EPC URN or GS1 Digital Link (rules 17-18); None for anything else."""
    if "." not in value:
        return None
    if value.startswith("urn:epc:"):
        return epc_urn_to_dl(value)
    return constrained_dl(value)
