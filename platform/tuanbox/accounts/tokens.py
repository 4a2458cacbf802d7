"""JWT access tokens (short-lived, stateless) and refresh tokens (rotated, tracked in the DB)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from functools import lru_cache

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import Principal
from tuanbox.accounts.errors import TokenInvalidError, TokenReusedError
from tuanbox.accounts.models import RefreshToken, User
from tuanbox.crypto import derive_key
from tuanbox.db.base import utcnow
from tuanbox.settings import Settings

ALGORITHM = "HS256"
ISSUER = "tuanbox"


def _key(settings: Settings) -> bytes:
    return derive_key(settings.secret_key.get_secret_value(), "jwt")


@lru_cache(maxsize=8)
def _verifying_key(secret: str) -> jwt.PyJWK:
    """The HS256 key, prepared once: given raw bytes, PyJWT checks on every decode that they
    are no PEM, SSH, DER or JWK key (failed X.509 parses), a cost on every request."""
    raw = derive_key(secret, "jwt")
    k = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return jwt.PyJWK({"kty": "oct", "k": k}, algorithm=ALGORITHM)


def issue_access_token(
    settings: Settings, principal: Principal, *, now: datetime | None = None
) -> str:
    """A signed access token for this principal; every engineer's tests mint tokens here."""
    issued = now or utcnow()
    claims = {
        "iss": ISSUER,
        "sub": principal.id,
        "role": principal.role,
        "mid": principal.merchant_id,
        "typ": "access",
        "ver": principal.token_version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=settings.access_token_ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The token's principal if its signature, issuer, type and expiry hold; revocation is
    checked apart (`accounts.revocation.ensure_current`), since it needs Redis."""
    return _principal(_decode(settings, token, "access"))


def _principal(claims: dict[str, str]) -> Principal:
    return Principal(
        id=claims["sub"],
        role=claims["role"],
        merchant_id=claims.get("mid"),
        token_version=int(claims.get("ver", 0)),
    )


class VerifiedAccessTokens:
    """Principals of access tokens this process has verified, by the token's exact text,
    until the token expires: on a burst path (shoppers retrying a flash sale) each token's
    signature is checked once, not per request. Bounded (least recently used goes first);
    revocation is still checked per request (`accounts.revocation`)."""

    def __init__(self, settings: Settings, size: int = 10_000) -> None:
        self._settings = settings
        self._size = size
        self._seen: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def decode(self, token: str) -> Principal:
        hit = self._seen.get(token)
        if hit is not None and hit[0] > time.time():
            self._seen.move_to_end(token)
            return hit[1]
        claims = _accepted_access_claims(self._settings, token)
        if claims is None:  # not the shape this process issues: PyJWT decides (and words it)
            claims = _decode(self._settings, token, "access")
        principal = _principal(claims)
        self._seen[token] = (float(claims["exp"]), principal)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return principal


# The one header `issue_access_token` writes (PyJWT sorts its keys and drops the spaces).
_HS256_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()


@lru_cache(maxsize=8)
def _mac_key(secret: str) -> bytes:
    return derive_key(secret, "jwt")


def _accepted_access_claims(settings: Settings, token: str) -> dict[str, str] | None:
    """The claims of an access token of exactly the form `issue_access_token` writes, checked
    with one HMAC-SHA256 and the same claim rules as `_decode` (about a tenth of PyJWT's
    cost, which a burst pays once per shopper and process); None for anything else, which
    `_decode` then accepts or refuses. It only ever accepts: a token it lets through is one
    PyJWT would accept too (tests/platform/accounts/test_token_fast_path.py)."""
    header, dot, rest = token.partition(".")
    payload, dot2, signature = rest.partition(".")
    if header != _HS256_HEADER or not dot or not dot2:
        return None
    mac = hmac.new(
        _mac_key(settings.secret_key.get_secret_value()),
        f"{header}.{payload}".encode(),
        hashlib.sha256,
    ).digest()
    # Only the canonical (unpadded) encoding: base64's decoder skips stray characters.
    expected = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict) or "nbf" in claims or "aud" in claims:
        return None
    exp, iat, now = claims.get("exp"), claims.get("iat"), time.time()
    if type(exp) is not int or type(iat) is not int or not iat <= now < exp:
        return None
    if claims.get("iss") != ISSUER or claims.get("typ") != "access":
        return None
    if not all(isinstance(claims.get(k), str) for k in ("sub", "role")):
        return None
    if not isinstance(claims.get("jti", ""), str) or type(claims.get("ver", 0)) is not int:
        return None
    return claims


def _decode(settings: Settings, token: str, typ: str) -> dict[str, str]:
    try:
        claims: dict[str, str] = jwt.decode(
            token,
            _verifying_key(settings.secret_key.get_secret_value()),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenInvalidError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalidError("token invalid") from exc
    if claims.get("typ") != typ:
        raise TokenInvalidError(f"not an {typ} token")
    return claims


def issue_refresh_token(
    session: Session, settings: Settings, user: User, *, family_id: str | None = None
) -> str:
    now = utcnow()
    row = RefreshToken(
        user_id=user.id,
        family_id=family_id or str(uuid.uuid4()),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    session.add(row)
    session.flush()
    claims = {
        "iss": ISSUER,
        "sub": user.id,
        "typ": "refresh",
        "jti": row.id,
        "iat": int(now.timestamp()),
        "exp": int(row.expires_at.timestamp()),
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def rotate_refresh_token(session: Session, settings: Settings, token: str) -> tuple[User, str]:
    """Spend a refresh token and return its user and a new one in the same family.

    Presenting an already spent token revokes the family and commits that revocation even
    though the request fails: whoever holds the newer token is then signed out too.
    """
    claims = _decode(settings, token, "refresh")
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.id == claims["jti"]).with_for_update()
    ).one_or_none()
    if row is None or row.user_id != claims["sub"]:
        raise TokenInvalidError("unknown refresh token")
    now = utcnow()
    if row.used_at is not None or row.revoked_at is not None:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        session.commit()
        raise TokenReusedError("refresh token already used; sign in again")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise TokenInvalidError("account disabled")
    row.used_at = now
    return user, issue_refresh_token(session, settings, user, family_id=row.family_id)


def revoke_refresh_family(session: Session, settings: Settings, token: str) -> int:
    """Sign out: revoke the refresh token's whole family (this device's chain of tokens)."""
    claims = _decode(settings, token, "refresh")
    row = session.get(RefreshToken, claims["jti"])
    if row is None or row.user_id != claims["sub"]:
        raise TokenInvalidError("unknown refresh token")
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
