"""Tests of pickup QR tokens: signing, offline verification, forgery and tampering."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from edge.protocol.errors import TokenError
from edge.protocol.token import (
    PickupToken,
    check_compartment,
    generate_keypair,
    new_fallback_code,
    private_key_from_b64,
    private_key_to_b64,
    public_key_from_b64,
    public_key_to_b64,
    sign_token,
    verify_token,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
T0 = int(NOW.timestamp())
TOKEN = PickupToken(tid="tok-1", lid="L1", cmp="0-3", oid="ord-9", exp=T0 + 3600, iat=T0)


@pytest.fixture(scope="module")
def keys() -> tuple[object, object]:
    return generate_keypair()


def _code(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(TokenError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


def test_sign_and_verify(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, TOKEN)
    assert text.startswith("TBX1.")
    assert text.count(".") == 2
    assert "=" not in text  # unpadded base64url keeps the QR small and URL-safe
    assert verify_token(text, public, locker_id="L1", now=NOW) == TOKEN
    assert verify_token(f"  {text}\r\n", public, locker_id="L1", now=float(T0)) == TOKEN


def test_expired_and_wrong_locker(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, TOKEN)
    assert _code(verify_token, text, public, locker_id="L1", now=float(T0 + 3600)) == (
        "TOKEN_EXPIRED"
    )
    assert _code(verify_token, text, public, locker_id="L2", now=NOW) == "TOKEN_WRONG_LOCKER"


def test_forged_with_another_key(keys: tuple) -> None:
    _, public = keys
    forger, _ = generate_keypair()
    text = sign_token(forger, TOKEN)
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_SIGNATURE"


def test_tampered_payload_is_rejected(keys: tuple) -> None:
    private, public = keys
    prefix, payload, signature = sign_token(private, TOKEN).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["cmp"] = "0-4"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    text = f"{prefix}.{forged}.{signature}"
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_SIGNATURE"
    # Changing the version tag breaks the signature too, since it is signed.
    assert _code(verify_token, f"TBX1.{payload}.{signature}x", public, locker_id="L1", now=NOW) in (
        "TOKEN_SIGNATURE",
        "TOKEN_MALFORMED",
    )


def test_every_single_character_flip_is_rejected(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, TOKEN)
    for index in range(len(text)):
        flipped = "A" if text[index] != "A" else "B"
        mutated = text[:index] + flipped + text[index + 1 :]
        with pytest.raises(TokenError):
            verify_token(mutated, public, locker_id="L1", now=NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "TBX1",
        "TBX1..",
        "TBX2.e30.AAAA",
        "TBX1.e30",
        "TBX1.e30.AA.AA",
        "TBX1.e3+0.AAAA",
        "x" * 2000,
    ],
)
def test_malformed(keys: tuple, text: str) -> None:
    _, public = keys
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_MALFORMED"


def test_validly_signed_garbage_payload_is_malformed(keys: tuple) -> None:
    private, public = keys
    payload = base64.urlsafe_b64encode(b'{"tid":"x"}').rstrip(b"=").decode()
    signature = private.sign(f"TBX1.{payload}".encode())
    text = f"TBX1.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_MALFORMED"


def test_naive_now_is_refused(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, TOKEN)
    naive = datetime(2026, 11, 30, 8)
    assert _code(verify_token, text, public, locker_id="L1", now=naive) == "TOKEN_MALFORMED"


def test_check_compartment() -> None:
    check_compartment(TOKEN, "0-3")
    assert _code(check_compartment, TOKEN, "0-4") == "TOKEN_WRONG_COMPARTMENT"


def test_key_helpers_round_trip(keys: tuple) -> None:
    private, public = keys
    public_b64 = public_key_to_b64(public)
    assert len(base64.b64decode(public_b64)) == 32
    assert public_key_to_b64(public_key_from_b64(public_b64)) == public_b64
    restored = private_key_from_b64(private_key_to_b64(private))
    text = sign_token(restored, TOKEN)
    assert verify_token(text, public, locker_id="L1", now=NOW) == TOKEN
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        assert _code(public_key_from_b64, bad) == "BAD_KEY"
        assert _code(private_key_from_b64, bad) == "BAD_KEY"


def test_fallback_codes() -> None:
    codes = {new_fallback_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150  # random, not a counter or a constant
    assert len(new_fallback_code(8)) == 8
    with pytest.raises(ValueError, match="digits"):
        new_fallback_code(2)


def test_non_canonical_base64_is_malformed(keys: tuple) -> None:
    private, public = keys
    prefix, payload, signature = sign_token(private, TOKEN).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    # 64 bytes leave 4 unused bits in the last character; setting one keeps the same bytes.
    twin = signature[:-1] + alphabet[last ^ 0b0001]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(signature + "==")
    text = f"{prefix}.{payload}.{twin}"
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_MALFORMED"


SPLIT = PickupToken(tid="tok-2", lid="L1", cmp="0-13", oid="ord-7", exp=T0 + 3600, iat=T0,
                    more=("0-14", "1-2"))  # fmt: skip


def _payload(text: str) -> dict[str, object]:
    part = text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def test_a_one_compartment_token_carries_no_more_field(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, TOKEN)
    # Byte for byte the format agents read before split orders: exactly these fields.
    assert sorted(_payload(text)) == ["cmp", "exp", "iat", "lid", "oid", "tid"]
    assert verify_token(text, public, locker_id="L1", now=NOW).compartments == ("0-3",)


def test_a_split_order_token_opens_its_compartments_in_order(keys: tuple) -> None:
    private, public = keys
    text = sign_token(private, SPLIT)
    assert _payload(text)["more"] == ["0-14", "1-2"]
    token = verify_token(text, public, locker_id="L1", now=NOW)
    assert token == SPLIT
    assert token.compartments == ("0-13", "0-14", "1-2")
    for label in token.compartments:
        check_compartment(token, label)
    assert _code(check_compartment, token, "0-15") == "TOKEN_WRONG_COMPARTMENT"


@pytest.mark.parametrize(
    "more", [("0-13",), ("0-14", "0-14"), tuple(f"1-{i}" for i in range(1, 9)), ("0-x",)]
)
def test_a_signed_token_with_a_bad_compartment_list_is_refused(keys: tuple, more: tuple) -> None:
    private, public = keys
    body = {**TOKEN.payload(), "cmp": "0-13", "more": list(more)}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    signature = private.sign(f"TBX1.{payload}".encode())
    text = f"TBX1.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert _code(verify_token, text, public, locker_id="L1", now=NOW) == "TOKEN_MALFORMED"
