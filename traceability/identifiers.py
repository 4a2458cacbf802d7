"""GS1 identifiers: check digits, Digital Link URIs, and EPC URN to Digital Link conversion."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from traceability.errors import IdentifierError

DL_BASE = "https://id.gs1.org"

# Lot numbers are GS1 AI (10): up to 20 characters. We accept the URI-safe part of CSET 82
# so that a lot can sit in a Digital Link path and a QR code without escaping surprises.
_LOT_RE = re.compile(r"^[A-Za-z0-9._\-]{1,20}$")
_SERIAL_RE = re.compile(r"^[A-Za-z0-9._\-]{1,20}$")

# Primary-key AIs that may start the path of a GS1 Digital Link URI.
_PRIMARY_AIS = frozenset(
    {
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
        "8013",
        "8017",
        "8018",
    }
)


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit for a string of digits (weights 3,1,3,... from the right)."""
    if not digits.isdigit():
        raise IdentifierError("identifier", f"{digits!r} is not all digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def normalize_gtin(gtin: str, field: str = "gtin") -> str:
    """Validate a GTIN-8/12/13/14 (check digit included) and return it as 14 digits."""
    if not isinstance(gtin, str) or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        raise IdentifierError(field, f"{gtin!r} is not a GTIN (8, 12, 13 or 14 digits)")
    if check_digit(gtin[:-1]) != gtin[-1]:
        raise IdentifierError(
            field, f"GTIN {gtin} has a wrong check digit (expected {check_digit(gtin[:-1])})"
        )
    return gtin.zfill(14)


def validate_gln(gln: str, field: str = "gln") -> str:
    """Validate a 13-digit GLN and its check digit."""
    if not isinstance(gln, str) or not gln.isdigit() or len(gln) != 13:
        raise IdentifierError(field, f"{gln!r} is not a GLN (13 digits)")
    if check_digit(gln[:-1]) != gln[-1]:
        raise IdentifierError(field, f"GLN {gln} has a wrong check digit")
    return gln


def validate_lot(lot: str, field: str = "lot") -> str:
    """Validate a batch/lot number (AI 10) as we accept it."""
    if not isinstance(lot, str) or not _LOT_RE.match(lot):
        raise IdentifierError(field, f"{lot!r} is not a lot (1-20 of A-Z a-z 0-9 . _ -)")
    return lot


def gtin_lot_uri(gtin: str, lot: str) -> str:
    """Digital Link for a product batch: ``https://id.gs1.org/01/{gtin14}/10/{lot}``."""
    return f"{DL_BASE}/01/{normalize_gtin(gtin)}/10/{validate_lot(lot)}"


def sgtin_uri(gtin: str, serial: str) -> str:
    """Digital Link for one serialised item."""
    if not _SERIAL_RE.match(serial):
        raise IdentifierError("serial", f"{serial!r} is not a serial number")
    return f"{DL_BASE}/01/{normalize_gtin(gtin)}/21/{serial}"


def sscc_uri(sscc: str) -> str:
    """Digital Link for a logistic unit (crate, pallet)."""
    if not sscc.isdigit() or len(sscc) != 18 or check_digit(sscc[:-1]) != sscc[-1]:
        raise IdentifierError("sscc", f"{sscc!r} is not a valid 18-digit SSCC")
    return f"{DL_BASE}/00/{sscc}"


def gln_uri(gln: str, extension: str | None = None) -> str:
    """Digital Link for a place: a GLN, or an SGLN when ``extension`` is given (AI 254)."""
    uri = f"{DL_BASE}/414/{validate_gln(gln)}"
    if extension not in (None, "", "0"):
        if not re.match(r"^[A-Za-z0-9._\-]{1,20}$", str(extension)):
            raise IdentifierError("gln_extension", f"{extension!r} is not a GLN extension")
        uri += f"/254/{extension}"
    return uri


def party_uri(gln: str) -> str:
    """Digital Link for a party GLN (AI 417): a farm, a merchant, a carrier."""
    return f"{DL_BASE}/417/{validate_gln(gln)}"


def parse_gtin_lot(uri: str) -> tuple[str, str]:
    """Split ``…/01/{gtin}/10/{lot}`` into (gtin14, lot); any host is accepted."""
    match = re.match(r"^(?:https?://[^/]+)?/01/(\d{8,14})/10/([^/?#]+)$", uri)
    if not match:
        raise IdentifierError("uri", f"{uri!r} is not a GTIN + lot Digital Link")
    return normalize_gtin(match.group(1)), validate_lot(unquote(match.group(2)))


def _gs1_key(prefix_and_ref: str) -> str:
    return prefix_and_ref + check_digit(prefix_and_ref)


def epc_urn_to_digital_link(urn: str) -> str | None:
    """Convert an EPC pure-identity or class URN to its canonical Digital Link, if we know it."""
    match = re.match(r"^urn:epc:(id|class|idpat):([a-z]+):(.+)$", urn)
    if not match:
        return None
    kind, scheme, body = match.groups()
    parts = body.split(".")
    try:
        if scheme in ("sgtin", "lgtin") and len(parts) == 3:
            company, item_ref, rest = parts
            gtin = _gs1_key(item_ref[0] + company + item_ref[1:])
            if kind == "idpat" and rest == "*":
                return f"{DL_BASE}/01/{gtin}"
            ai = "10" if scheme == "lgtin" else "21"
            return f"{DL_BASE}/01/{gtin}/{ai}/{quote(unquote(rest), safe='')}"
        if scheme == "sscc" and len(parts) == 2:
            company, serial_ref = parts
            return f"{DL_BASE}/00/{_gs1_key(serial_ref[0] + company + serial_ref[1:])}"
        if scheme == "sgln" and len(parts) == 3:
            company, location_ref, ext = parts
            uri = f"{DL_BASE}/414/{_gs1_key(company + location_ref)}"
            return uri if ext == "0" else f"{uri}/254/{quote(unquote(ext), safe='')}"
        if scheme == "pgln" and len(parts) == 2:
            return f"{DL_BASE}/417/{_gs1_key(parts[0] + parts[1])}"
        if scheme == "gdti" and len(parts) == 3:
            company, doc_type, serial = parts
            return f"{DL_BASE}/253/{_gs1_key(company + doc_type)}{serial}"
        if scheme == "giai" and len(parts) == 2:
            return f"{DL_BASE}/8004/{parts[0]}{quote(unquote(parts[1]), safe='')}"
        if scheme == "grai" and len(parts) == 3:
            company, asset_type, serial = parts
            return f"{DL_BASE}/8003/0{_gs1_key(company + asset_type)}{serial}"
    except IdentifierError:
        return None
    return None


def canonical_digital_link(uri: str) -> str | None:
    """Rewrite any GS1 Digital Link (any host, any query) to ``https://id.gs1.org/...``."""
    parsed = urlsplit(uri)
    if parsed.scheme not in ("http", "https"):
        return None
    segments = [s for s in parsed.path.split("/") if s]
    for i, segment in enumerate(segments):
        if segment in _PRIMARY_AIS and i + 1 < len(segments):
            tail = segments[i:]
            if len(tail) % 2:
                return None
            if tail[0] == "01" and tail[1].isdigit() and len(tail[1]) < 14:
                tail[1] = tail[1].zfill(14)
            return DL_BASE + "/" + "/".join(tail)
    return None


def canonical_identifier(value: str) -> str:
    """The form an identifier takes in the event hash: Digital Link where one exists."""
    if value.startswith("urn:epc:"):
        return epc_urn_to_digital_link(value) or value
    return canonical_digital_link(value) or value


def validate_identifier(value: object, field: str) -> str:
    """Check an EPC / location / party identifier: an EPC URN or an absolute URI.

    GS1 Digital Links on id.gs1.org have their GTIN check digits verified.
    """
    if not isinstance(value, str) or not value.strip():
        raise IdentifierError(field, "must be a non-empty URI")
    if value.startswith("urn:"):
        if value.startswith("urn:epc:") and not re.match(
            r"^urn:epc:(id|class|idpat):[a-z]+:.+$", value
        ):
            raise IdentifierError(field, f"{value!r} is not an EPC URN")
        return value
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https", "geo", "urn") or (
        parsed.scheme in ("http", "https") and not parsed.netloc
    ):
        raise IdentifierError(field, f"{value!r} is not an absolute URI")
    segments = [s for s in parsed.path.split("/") if s]
    if parsed.netloc == "id.gs1.org" and len(segments) >= 2 and segments[0] == "01":
        normalize_gtin(segments[1], field)
    if parsed.netloc == "id.gs1.org" and len(segments) >= 2 and segments[0] in ("414", "417"):
        validate_gln(segments[1], field)
    return value
