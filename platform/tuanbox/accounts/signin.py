"""Sign-in limits shared by POST /api/v1/auth/token and /ops/login: one implementation.

Windows go per phone and per device first and per IP generously (a carrier NAT puts a whole
neighbourhood behind one address at the start of a sale); the IP window is one bucket for
every grant and for /ops/login. Passwords have a lockout per login: `signin_max_failures`
failures within `signin_failure_window_s` lock the login for `signin_lockout_s`, and ops get
one alert per lockout. Every refused password — wrong, unknown login, disabled, locked, or
right but of a role not admitted here — is the same `InvalidCredentialsError` after the same
single argon2 verification. Redis down is a 503: sign-in fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import cast

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.errors import InvalidCredentialsError
from tuanbox.accounts.models import User
from tuanbox.accounts.services import LOGIN_MAX, check_password
from tuanbox.crypto import derive_key
from tuanbox.errors import DependencyUnavailableError
from tuanbox.ratelimit.limiter import RateLimiter
from tuanbox.settings import Settings

log = logging.getLogger(__name__)

# A device id is the app's own random install id; bounded so it cannot blow up Redis keys.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{8,64}$"
WINDOW_S = 60

# Count a failure; at the threshold start the lockout. Returns 1 only to the request that
# started it (SET NX), so across API replicas there is one alert per lockout.
_FAILED = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 1 end
end
return 0
"""

LOCKOUT_NEXT_STEP = (
    "Ask the account holder whether they mistyped; if not, treat it as an attack: check the "
    "IP, change the password and consider disabling the account (POST /api/v1/users/{id}/disable)."
)


class SignInGuard:
    """The sign-in windows and the password lockout, on the app's Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._prefix = settings.rate_limit_prefix
        self._limiter = RateLimiter(client, settings.rate_limit_prefix)
        self._key = derive_key(settings.secret_key.get_secret_value(), "signin")

    def _digest(self, value: str) -> str:
        # Keyed, so Redis holds neither logins nor device ids in clear.
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def check_phone(self, phone_hash: str) -> None:
        per_min = self._settings.auth_token_per_phone_per_min
        self._limiter.check(f"auth-token:phone:{phone_hash}", per_min, WINDOW_S)

    def check_device(self, device_id: str | None) -> None:
        if device_id is not None:
            per_min = self._settings.auth_token_per_device_per_min
            self._limiter.check(f"auth-token:device:{self._digest(device_id)}", per_min, WINDOW_S)

    def check_ip(self, ip: str) -> None:
        per_min = self._settings.auth_token_per_ip_per_min
        self._limiter.check(f"auth-token:ip:{ip}", per_min, WINDOW_S)

    def _keys(self, login: str) -> tuple[str, str]:
        digest = self._digest(login)
        return f"{self._prefix}signin:fail:{digest}", f"{self._prefix}signin:lock:{digest}"

    def password(
        self,
        session: Session,
        login: str,
        password: str,
        *,
        ip: str,
        roles: frozenset[str] | None = None,
    ) -> User:
        """The user, or InvalidCredentialsError alike for every refusal (see the module)."""
        fail_key, lock_key = self._keys(login)
        try:
            locked = bool(self._client.exists(lock_key))
        except redis.RedisError as exc:
            raise DependencyUnavailableError("sign-in limiter unavailable") from exc
        user = check_password(session, login, password)  # argon2 even when locked: same timing
        if user is not None and not locked and (roles is None or user.role in roles):
            try:
                self._client.delete(fail_key)
            except redis.RedisError as exc:
                raise DependencyUnavailableError("sign-in limiter unavailable") from exc
            return user
        if not locked:
            self._count_failure(session, login, ip, fail_key, lock_key)
        raise InvalidCredentialsError("wrong login or password")

    def _count_failure(
        self, session: Session, login: str, ip: str, fail_key: str, lock_key: str
    ) -> None:
        s = self._settings
        try:
            started = cast(
                int,
                self._client.eval(
                    _FAILED,
                    2,
                    fail_key,
                    lock_key,
                    s.signin_failure_window_s,
                    s.signin_max_failures,
                    s.signin_lockout_s,
                ),
            )
        except redis.RedisError as exc:
            raise DependencyUnavailableError("sign-in limiter unavailable") from exc
        if started == 1:
            self._alert(session, login, ip)

    def _alert(self, session: Session, login: str, ip: str) -> None:
        """One ops alert per lockout of an existing account, committed although the sign-in
        fails (junk logins lock too, silently: an alert each would let anyone flood ops)."""
        from tuanbox.fulfilment.alerts import open_alert

        s = self._settings
        user = None
        if "\x00" not in login and len(login) <= LOGIN_MAX:
            user = session.scalars(select(User).where(User.login == login)).one_or_none()
        log.warning(
            "sign-in locked for a login after %d failures (ip %s)", s.signin_max_failures, ip
        )
        if user is None:
            return
        open_alert(
            session,
            kind="signin_lockout",
            locker_id=None,
            compartment_id=None,
            severity="critical" if user.role in ("ops", "admin") else "warning",
            detail=(
                f"Password sign-in of {user.role} account '{login}' (user {user.id}) locked for "
                f"{s.signin_lockout_s // 60} min after {s.signin_max_failures} failures within "
                f"{s.signin_failure_window_s // 60} min; the last came from IP {ip}."
            ),
            next_step=LOCKOUT_NEXT_STEP,
        )
        session.commit()
