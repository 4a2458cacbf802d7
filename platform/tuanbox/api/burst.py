"""Shared by the burst paths (flash-sale reservations, group joins): inputs and caller, cheaply.

These routes take only the `Request`: FastAPI's per-request dependency solving (sync
dependencies such as `Shopper` or `SessionDep` each cost a thread hop, and even async ones
cost more than the rest of a refused request) is replaced by `BurstInputs`, which checks
the same things with the same pydantic types, answers the same 422 problems and describes
itself to OpenAPI. The token's signature is verified once per token and process
(`VerifiedAccessTokens`); revocation is left to the route's own Redis round trip.

Each burst endpoint is also served by a `BurstRoute` placed first in the app's router: one
regex and a method test, then the endpoint, inside the same middleware stack as every other
route (request id, security headers, NUL guard, error handlers). FastAPI's own route for the
same path stays, documenting it in OpenAPI; reached through the included routers it cost a
refused reservation about a sixth of its CPU (matching every router's routes twice, the
per-request exit stacks and dependency solving).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path, get_route_path
from starlette.types import Receive, Scope, Send

from tuanbox.accounts.deps import Principal
from tuanbox.accounts.errors import TokenRevokedError
from tuanbox.accounts.revocation import PREFIX as REVOKED_PREFIX
from tuanbox.accounts.tokens import VerifiedAccessTokens
from tuanbox.api.problems import PROBLEM_JSON
from tuanbox.api.redis_async import AsyncRedis
from tuanbox.bounds import MAX_ID_CHARS
from tuanbox.errors import (
    AuthenticationError,
    DependencyUnavailableError,
    PermissionDeniedError,
    RateLimitedError,
    TuanboxError,
)
from tuanbox.ratelimit import lua as ratelimit_lua
from tuanbox.ratelimit.deps import client_ip


def burst_shopper(request: Request) -> Principal:
    """The calling shopper (401 without a valid bearer token, 403 for another role); the
    caller must still check revocation."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("a bearer access token is required")
    tokens: VerifiedAccessTokens | None = getattr(request.app.state, "verified_tokens", None)
    if tokens is None:
        tokens = request.app.state.verified_tokens = VerifiedAccessTokens(
            request.app.state.settings
        )
    principal = tokens.decode(token.strip())
    if principal.role != "shopper":
        raise PermissionDeniedError("this action needs one of the roles: shopper")
    request.state.principal = principal
    return principal


BurstEndpoint = Callable[[Request], Awaitable[Response]]


class BurstRoute(BaseRoute):
    """Serves one burst endpoint (`async def endpoint(request) -> Response`) ahead of the
    app's included routers. Only a full match (path and method) is taken: anything else
    falls through to FastAPI's routing, whose route for the same path answers 405 and the
    rest as before. Exceptions rise to the app's handlers like any route's."""

    def __init__(self, path: str, endpoint: BurstEndpoint, methods: tuple[str, ...]) -> None:
        self.path = path
        self.endpoint = endpoint
        self.methods = frozenset(methods)
        self.name = endpoint.__name__
        self.include_in_schema = False  # the FastAPI route of the same path documents it
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            return Match.NONE, {}
        found = self.path_regex.match(get_route_path(scope))
        if found is None:
            return Match.NONE, {}
        params = {k: self.param_convertors[k].convert(v) for k, v in found.groupdict().items()}
        return Match.FULL, {"endpoint": self.endpoint, "path_params": params}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)  # url_for finds the FastAPI route instead


def problem(exc: TuanboxError, path: str) -> Response:
    """The same RFC 9457 answer the app's handler gives for a 4xx `exc`, without raising it
    through the middleware stack (most burst answers are refusals: sold out, full, 429)."""
    body = exc.problem(path)
    try:
        content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        content = json.dumps(jsonable_encoder(body), ensure_ascii=False, separators=(",", ":"))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
    return Response(content.encode(), exc.status, headers=headers, media_type=PROBLEM_JSON)


M = TypeVar("M", bound=BaseModel)
_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}


@dataclass(frozen=True)
class HeaderSpec:
    """A request header, checked like FastAPI's `Header(min_length, max_length)`."""

    alias: str
    min_length: int
    max_length: int
    description: str
    example: str
    required: bool = True
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        return schema


@dataclass(frozen=True)
class BurstInputs(Generic[M]):
    """A burst route's inputs: id path parameters, required headers, a JSON body model."""

    body: type[M]
    path: tuple[str, ...] = ()
    headers: tuple[HeaderSpec, ...] = ()

    async def parse(self, request: Request) -> tuple[dict[str, str], dict[str, str], M]:
        """(path values, header values, body), or RequestValidationError (the app's 422)."""
        errors: list[dict[str, Any]] = []
        path: dict[str, str] = {}
        for name in self.path:
            value = str(request.path_params.get(name, ""))
            if not 1 <= len(value) <= MAX_ID_CHARS:
                kind = "string_too_short" if not value else "string_too_long"
                errors.append(
                    _error(
                        ("path", name), kind, f"{name} must be 1-{MAX_ID_CHARS} characters", value
                    )
                )
            path[name] = value
        headers: dict[str, str] = {}
        for h in self.headers:
            given = request.headers.get(h.alias.lower())
            if given is None and not h.required:
                continue
            if given is None:
                errors.append(_error(("header", h.alias), "missing", "Field required", None))
            elif not h.min_length <= len(given) <= h.max_length:
                errors.append(
                    _error(
                        ("header", h.alias),
                        "string_too_short" if len(given) < h.min_length else "string_too_long",
                        f"String should have {h.min_length}-{h.max_length} characters",
                        given,
                    )
                )
            elif h.pattern is not None and re.search(h.pattern, given) is None:
                errors.append(
                    _error(
                        ("header", h.alias),
                        "string_pattern_mismatch",
                        f"String should match pattern '{h.pattern}'",
                        given,
                    )
                )
            else:
                headers[h.alias] = given
        body: M | None = None
        raw = await request.body()
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if not raw:
            errors.append(_error(("body",), "missing", "Field required", None))
        elif media != "application/json" and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            errors.append(
                _error(
                    ("body",),
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from",
                    None,
                )
            )
        else:
            try:
                body = self.body.model_validate_json(raw)
            except ValidationError as exc:
                errors += [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        if errors:
            raise RequestValidationError(errors)
        assert body is not None
        return path, headers, body

    def openapi(self) -> dict[str, Any]:
        """The operation's documented inputs, for the route's `openapi_extra`."""
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": dict(_ID_SCHEMA)}
            for name in self.path
        ]
        parameters += [
            {
                "name": h.alias,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": h.schema(),
                "example": h.example,
            }
            for h in self.headers
        ]
        schema = self.body.model_json_schema()
        return {
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "security": [{"HTTPBearer": []}],
        }


def _error(loc: tuple[str, ...], kind: str, msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


# Token revocation, then the per-user and per-IP sliding windows (the same algorithm and
# keys as `tuanbox.ratelimit`, clocked by Redis TIME; only admitted requests are logged), in
# one round trip (`ratelimit.lua`; the group seats' admission script runs the same Lua first).
# KEYS: revocation marker, per-user window, per-IP window.
# ARGV: token version, user limit, user window (us), IP limit, IP window (us), nonce.
# Returns {0} admitted, {-6} revoked, {-4, window (1 user, 2 IP), microseconds to wait}.
CHECKS = (
    "local t = redis.call('TIME')"
    + ratelimit_lua.caller_checks(key=1, arg=1, limited=-4)
    + "return {0}\n"
)
_CHECKS_SHA = hashlib.sha1(CHECKS.encode()).hexdigest()  # noqa: S324 - how Redis names scripts


def caller_checks(
    request: Request,
    principal: Principal,
    name: str,
    *,
    per_user: tuple[int, float],
    per_ip: tuple[int, float],
) -> tuple[tuple[str, str, str], tuple[int, int, int, int, int, str]]:
    """CHECKS' KEYS and ARGV for this caller and the windows of `name` (limit, seconds); the
    group seats' admission script reads the same ones (`groupbuy.seatlua.ADMIT`)."""
    prefix = request.app.state.settings.rate_limit_prefix
    keys = (
        REVOKED_PREFIX + principal.id,
        f"{prefix}{name}:user:{principal.id}",
        f"{prefix}{name}:ip:{client_ip(request)}",
    )
    args = (
        principal.token_version,
        per_user[0],
        int(per_user[1] * 1_000_000),
        per_ip[0],
        int(per_ip[1] * 1_000_000),
        secrets.token_hex(8),
    )
    return keys, args


def caller_refused(name: str, *, revoked: bool, wait_us: int = 0) -> TuanboxError:
    """401 TOKEN_REVOKED, or 429 with `Retry-After` in whole seconds (at least 1)."""
    if revoked:
        return TokenRevokedError("this account's access was revoked; sign in again")
    retry_after = max(1, -(-wait_us // 1_000_000))
    return RateLimitedError(
        f"rate limit exceeded for {name}; retry in {retry_after} s", retry_after=retry_after
    )


async def check_caller(
    request: Request,
    client: AsyncRedis,
    principal: Principal,
    name: str,
    *,
    per_user: tuple[int, float],
    per_ip: tuple[int, float],
) -> None:
    """401 TOKEN_REVOKED for a revoked token, 429 past the per-user then per-IP window of
    `name` (limit, seconds): one Redis round trip, on the loop."""
    keys, args = caller_checks(request, principal, name, per_user=per_user, per_ip=per_ip)
    try:
        try:
            raw = await client.call("EVALSHA", _CHECKS_SHA, 3, *keys, *args)
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            raw = await client.call("EVAL", CHECKS, 3, *keys, *args)
    except redis.RedisError as exc:
        raise DependencyUnavailableError("rate limiter unavailable") from exc
    if int(raw[0]) == -6:
        raise caller_refused(name, revoked=True)
    if int(raw[0]) == -4:
        raise caller_refused(name, revoked=False, wait_us=int(raw[2]))
