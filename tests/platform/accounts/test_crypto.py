"""PII cipher: round trips, key rotation through key ids, tamper detection, blind index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_settings
from tuanbox.crypto import PiiCipher, PiiDecryptError

OLD = make_settings(pii_key="old-pii-secret-" + "a" * 32, pii_key_id="k0")
NEW = make_settings(
    pii_key="new-pii-secret-" + "b" * 32,
    pii_key_id="k1",
    pii_keys={"k0": "old-pii-secret-" + "a" * 32},
)


@given(st.text(max_size=200))
def test_round_trip(text: str) -> None:
    cipher = PiiCipher(NEW)
    token = cipher.encrypt(text, context="phone")
    assert cipher.decrypt(token, context="phone") == text


def test_same_plaintext_encrypts_differently() -> None:
    cipher = PiiCipher(NEW)
    assert cipher.encrypt("+8613800138000") != cipher.encrypt("+8613800138000")


def test_rotation_reads_old_ciphertext_and_writes_new_key() -> None:
    old_token = PiiCipher(OLD).encrypt("+8613800138000", context="phone")
    assert old_token.startswith("k0:")
    cipher = PiiCipher(NEW)
    assert cipher.decrypt(old_token, context="phone") == "+8613800138000"
    assert cipher.needs_rotation(old_token)
    assert cipher.encrypt("x").startswith("k1:")
    # Without the old key configured, the old ciphertext cannot be read.
    with pytest.raises(PiiDecryptError):
        PiiCipher(make_settings(pii_key="new-pii-secret-" + "b" * 32, pii_key_id="k1")).decrypt(
            old_token, context="phone"
        )


def test_tampering_and_wrong_context_are_detected() -> None:
    cipher = PiiCipher(NEW)
    token = cipher.encrypt("secret", context="phone")
    kid, nonce, ct = token.split(":")
    flipped = ct[:-2] + ("A" if ct[-2] != "A" else "B") + ct[-1]
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(f"{kid}:{nonce}:{flipped}", context="phone")
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(token, context="address:someone")
    with pytest.raises(PiiDecryptError):
        cipher.decrypt("garbage", context="phone")


def test_blind_index_is_keyed_and_normalised() -> None:
    a, b = PiiCipher(NEW), PiiCipher(OLD)
    assert a.blind_index("+86 138 0013 8000") == a.blind_index("+8613800138000")
    assert a.blind_index("+8613800138000") != b.blind_index("+8613800138000")
    assert len(a.blind_index("x")) == 64
