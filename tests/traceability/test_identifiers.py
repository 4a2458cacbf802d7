"""GS1 identifiers: check digits, Digital Link builders, URN conversion."""

from __future__ import annotations

import pytest

from traceability.errors import IdentifierError
from traceability.identifiers import (
    canonical_digital_link,
    check_digit,
    epc_urn_to_digital_link,
    gln_uri,
    gtin_lot_uri,
    normalize_gtin,
    parse_gtin_lot,
    validate_gln,
)


def test_check_digit_known_values() -> None:
    assert check_digit("629104150021") == "3"  # GS1 check digit calculator example
    assert check_digit("400638133393") == "1"
    assert check_digit("0401234511111") == "8"


def test_gtin_normalised_to_14_digits() -> None:
    assert normalize_gtin("4006381333931") == "04006381333931"
    assert gtin_lot_uri("4006381333931", "L-7") == "https://id.gs1.org/01/04006381333931/10/L-7"


@pytest.mark.parametrize("bad", ["4006381333932", "123", "abcdefghijklm", ""])
def test_bad_gtin_names_field(bad: str) -> None:
    with pytest.raises(IdentifierError) as info:
        normalize_gtin(bad, "gtin")
    assert info.value.field == "gtin"
    assert info.value.code == "invalid_identifier"


def test_lot_charset() -> None:
    with pytest.raises(IdentifierError):
        gtin_lot_uri("4006381333931", "lot with space")
    with pytest.raises(IdentifierError):
        gtin_lot_uri("4006381333931", "x" * 21)


def test_gln_and_sgln() -> None:
    assert validate_gln("4012345000009") == "4012345000009"
    assert gln_uri("4012345000009", "C07") == "https://id.gs1.org/414/4012345000009/254/C07"
    with pytest.raises(IdentifierError):
        validate_gln("4012345000008")


def test_parse_gtin_lot_roundtrip() -> None:
    uri = gtin_lot_uri("04006381333931", "2026W48")
    assert parse_gtin_lot(uri) == ("04006381333931", "2026W48")
    assert parse_gtin_lot("/01/04006381333931/10/2026W48") == ("04006381333931", "2026W48")


def test_urn_conversion() -> None:
    assert (
        epc_urn_to_digital_link("urn:epc:id:sgtin:4047023.077551.98")
        == "https://id.gs1.org/01/04047023775511/21/98"
    )
    assert (
        epc_urn_to_digital_link("urn:epc:id:sscc:5200001.0111111146")
        == "https://id.gs1.org/00/052000011111111461"
    )
    assert epc_urn_to_digital_link("urn:example:x") is None


def test_foreign_host_digital_link_is_canonicalised() -> None:
    assert (
        canonical_digital_link("https://shop.example.com/01/4006381333931/10/L1?x=1")
        == "https://id.gs1.org/01/04006381333931/10/L1"
    )
    assert canonical_digital_link("https://example.com/about") is None
