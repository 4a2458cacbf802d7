"""Field-level encryption of personal data (AES-256-GCM with key ids) and blind indexes for lookup.

Ciphertext is stored as ``{key_id}:{nonce_b64}:{ct_b64}`` so the current key can change
(``TUANBOX_PII_KEY`` / ``TUANBOX_PII_KEY_ID``) while values written under an older key still
decrypt through ``TUANBOX_PII_KEYS``. The blind index is a keyed HMAC of the normalised value,
so a phone number can be looked up without ever being stored in plaintext.

Each key id has its own index key (derived from that key's secret), so rotating the key after
a leak also rotates the index: a leaked index key lets anyone test every phone number. A
value indexed under an older key still matches through ``blind_indexes`` (lookups ask for all
of them) until the background rotation (``tuanbox.privacy.rotation``) re-indexes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tuanbox.errors import TuanboxError
from tuanbox.settings import Settings

__all__ = ["PiiCipher", "PiiDecryptError", "blind_index", "derive_key"]


class PiiDecryptError(TuanboxError):
    code = "PII_DECRYPT_FAILED"


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose from a configured secret (secrets are arbitrary strings)."""
    return hmac.new(secret.encode(), b"tuanbox/" + purpose.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PiiCipher:
    """Encrypts and decrypts personal fields; the key id travels with each ciphertext."""

    def __init__(self, settings: Settings) -> None:
        self.key_id = settings.pii_key_id
        if ":" in self.key_id:
            raise ValueError("TUANBOX_PII_KEY_ID must not contain ':'")
        secrets = {kid: secret.get_secret_value() for kid, secret in settings.pii_keys.items()}
        secrets[self.key_id] = settings.pii_key.get_secret_value()
        self._keys = {kid: derive_key(secret, "pii-aes") for kid, secret in secrets.items()}
        self._index_key = derive_key(secrets[self.key_id], "pii-index")
        # The current key's index first; an older key id sharing its secret adds nothing.
        older = [derive_key(s, "pii-index") for kid, s in secrets.items() if kid != self.key_id]
        self._index_keys = list(dict.fromkeys([self._index_key, *older]))

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self._keys[self.key_id]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.key_id}:{_b64(nonce)}:{_b64(ct)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        try:
            kid, nonce, ct = token.split(":")
            key = self._keys[kid]
            return AESGCM(key).decrypt(_unb64(nonce), _unb64(ct), context.encode()).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise PiiDecryptError("stored personal data could not be decrypted") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(self.key_id + ":")

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this cipher can read (the current one and the configured older ones)."""
        return frozenset(self._keys)

    def blind_index(self, value: str) -> str:
        """The index under the current key: what is written."""
        return blind_index(self._index_key, value)

    def blind_indexes(self, value: str) -> list[str]:
        """The index under every configured key, current first: what a lookup matches, so a
        row not yet re-indexed by the rotation is still found."""
        return [blind_index(key, value) for key in self._index_keys]


def normalise(value: str) -> str:
    return "".join(value.split()).lower()


def blind_index(key: bytes, value: str) -> str:
    """Keyed HMAC-SHA256 of the normalised value, hex; equal inputs give equal indexes."""
    return hmac.new(key, normalise(value).encode(), hashlib.sha256).hexdigest()
