"""The burst paths' HMAC check of access tokens agrees with PyJWT: it accepts the tokens this
process issues, and everything else (forged, expired, another issuer, another header, a
non-canonical encoding) is left to PyJWT, which refuses it the same way as before."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest

from tests.conftest import make_settings
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.errors import TokenInvalidError
from tuanbox.accounts.tokens import (
    VerifiedAccessTokens,
    _accepted_access_claims,
    _key,
    decode_access_token,
    issue_access_token,
)
from tuanbox.db.base import utcnow
from tuanbox.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def _claims(**changes: object) -> dict[str, object]:
    now = int(utcnow().timestamp())
    claims: dict[str, object] = {
        "iss": "tuanbox",
        "sub": "user-1",
        "role": "shopper",
        "mid": None,
        "typ": "access",
        "ver": 3,
        "iat": now - 5,
        "exp": now + 600,
        "jti": "a" * 32,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


def _sign(settings: Settings, claims: dict[str, object], **kw: object) -> str:
    return jwt.encode(claims, _key(settings), algorithm="HS256", **kw)  # type: ignore[arg-type]


def _outcome(settings: Settings, token: str) -> Principal | str:
    try:
        return decode_access_token(settings, token)
    except TokenInvalidError as exc:
        return f"refused: {exc}"


def _flip_last_char(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def test_issued_tokens_take_the_fast_path_with_the_same_principal(settings: Settings) -> None:
    for principal in (
        Principal("u-1", "shopper"),
        Principal("u-2", "merchant_staff", "m-1", 7),
        Principal("用户-3", "ops"),
    ):
        token = issue_access_token(settings, principal)
        claims = _accepted_access_claims(settings, token)
        assert claims is not None, principal
        assert claims == jwt.decode(token, _key(settings), algorithms=["HS256"], issuer="tuanbox")
        assert VerifiedAccessTokens(settings).decode(token) == principal


def test_anything_else_is_left_to_pyjwt_which_decides_as_before(settings: Settings) -> None:
    other = make_settings(secret_key="another-secret-key-" + "z" * 32)
    good = issue_access_token(settings, Principal("u-1", "shopper"))
    header, payload, signature = good.split(".")
    now = int(utcnow().timestamp())
    cases = {
        "signed with another key": issue_access_token(other, Principal("u-1", "shopper")),
        "signature flipped": _flip_last_char(good),
        "payload swapped": f"{header}.{_sign(settings, _claims(sub='u-2')).split('.')[1]}."
        f"{signature}",
        "expired": _sign(settings, _claims(exp=now - 1)),
        "expires now": _sign(settings, _claims(exp=now)),
        "issued in the future": _sign(settings, _claims(iat=now + 120)),
        "another issuer": _sign(settings, _claims(iss="someone")),
        "refresh token": _sign(settings, _claims(typ="refresh")),
        "no subject": _sign(settings, _claims(sub=...)),
        "no expiry": _sign(settings, _claims(exp=...)),
        "with an audience": _sign(settings, _claims(aud="elsewhere")),
        "not before later": _sign(settings, _claims(nbf=now + 600)),
        "alg none": jwt.encode(_claims(), None, algorithm="none"),  # type: ignore[arg-type]
        "HS512": jwt.encode(_claims(), _key(settings) * 2, algorithm="HS512"),
        "stray character in the signature": f"{header}.{payload}.{signature[:5]}!{signature[5:]}",
        "two parts": f"{header}.{payload}",
        "garbage": "not.a.token",
        "payload not JSON": (
            f"{header}.{base64.urlsafe_b64encode(b'[1,').decode().rstrip('=')}.{signature}"
        ),
    }
    for name, token in cases.items():
        assert _accepted_access_claims(settings, token) is None, name
        assert isinstance(_outcome(settings, token), str), name  # PyJWT refuses all of these


def test_fast_path_and_pyjwt_agree_on_tokens_pyjwt_accepts(settings: Settings) -> None:
    """Tokens PyJWT accepts that the fast path does not: the same principal either way."""
    good = issue_access_token(settings, Principal("u-1", "shopper"))
    header, payload, signature = good.split(".")
    tokens = [
        f"{header}.{payload}.{signature}=",  # the same signature, padded
        _sign(settings, _claims(aud=...)),
        _sign(settings, _claims(exp=str(int(utcnow().timestamp()) + 600))),  # int() reads it
        _sign(settings, _claims(), headers={"kid": "k1"}),  # another header: PyJWT's path
        _sign(settings, _claims(nbf=int(utcnow().timestamp()) - 60)),
    ]
    assert _accepted_access_claims(settings, tokens[0]) is None  # only the canonical form
    assert _accepted_access_claims(settings, tokens[2]) is None
    for token in tokens:
        fast = _accepted_access_claims(settings, token)
        principal = VerifiedAccessTokens(settings).decode(token)
        assert principal == decode_access_token(settings, token)
        if fast is not None:
            assert fast == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())


def test_the_cache_forgets_a_token_once_it_expires(settings: Settings) -> None:
    issued = utcnow() - timedelta(seconds=settings.access_token_ttl_s) + timedelta(seconds=2)
    token = issue_access_token(settings, Principal("u-1", "shopper"), now=issued)
    tokens = VerifiedAccessTokens(settings)
    assert tokens.decode(token).id == "u-1"
    time.sleep(2.1)  # past its expiry (whole seconds)
    with pytest.raises(TokenInvalidError):
        tokens.decode(token)
