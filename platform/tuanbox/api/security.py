"""Outermost ASGI layers: a validated request id and the security headers of every response.

Both wrap the whole app, Starlette's error middleware included, so 404s and 500s carry them.

Pages get a Content-Security-Policy that allows scripts and styles from our own origin only,
plus inline ``<style>``/``<script>`` elements carrying this response's nonce
(``nonce="{{ request.state.csp_nonce }}"`` in a template). A view that must reach another
origin (the trace page's chain RPC) says so with :func:`allow_sources` for that response.
Every other response (JSON, problems, SVG charts, static files) gets a policy that allows
nothing but inline style, which is what an SVG opened on its own needs.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuanbox.logs import client_ip, request_id

# A client's X-Request-ID is kept only in this shape; anything else gets a fresh id, so no
# attacker bytes (CR/LF, NUL, megabytes) reach our logs or response headers.
REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
NONCE_KEY = "csp_nonce"
SOURCES_KEY = "csp_sources"

# Directives whose source lists a view may extend for one response.
EXTENSIBLE = frozenset(
    {"connect-src", "img-src", "script-src", "style-src", "font-src", "form-action"}
)
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)

# The camera stays usable by our own pages (a pickup page may scan a QR); nothing else is.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
NON_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


def page_policy(nonce: str, extra: dict[str, list[str]] | None = None) -> str:
    """The Content-Security-Policy of an HTML page with this nonce and these added sources."""
    extra = extra or {}

    def src(directive: str, *base: str) -> str:
        return " ".join((directive, *base, *extra.get(directive, ())))

    return "; ".join(
        (
            "default-src 'self'",
            src("script-src", "'self'", f"'nonce-{nonce}'"),
            src("style-src", "'self'", f"'nonce-{nonce}'"),
            src("img-src", "'self'", "data:"),
            src("connect-src", "'self'"),
            src("font-src", "'self'"),
            "object-src 'none'",
            "base-uri 'self'",
            src("form-action", "'self'"),
            "frame-ancestors 'none'",
        )
    )


def csp_nonce(request: Request) -> str:
    """This response's nonce for an inline ``<script>`` or ``<style>`` element."""
    nonce: str = request.state.csp_nonce
    return nonce


def allow_sources(request: Request, directive: str, *urls: str) -> None:
    """Let this response's page reach the origins of ``urls`` under ``directive``.

    Only the origin (scheme, host, port) of each URL is added; a URL that is not plain
    http(s) is refused rather than written into the header."""
    if directive not in EXTENSIBLE:
        raise ValueError(f"{directive} cannot be extended per response")
    sources: dict[str, list[str]] = request.scope.setdefault("state", {}).setdefault(
        SOURCES_KEY, {}
    )
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"not an http(s) origin: {url!r}")
        listed = sources.setdefault(directive, [])
        if origin not in listed:
            listed.append(origin)


class RequestIdMiddleware:
    """Sets ``request_id`` (logs) for the request and echoes it as ``X-Request-ID``; sets
    ``client_ip`` (the audit log's IP) from the ASGI client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = raw.decode("ascii") if REQUEST_ID.fullmatch(raw) else uuid.uuid4().hex
        header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id.set(rid)
        client = scope.get("client")
        ip_token = client_ip.set(str(client[0]) if client else None)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client_ip.reset(ip_token)
            request_id.reset(token)


class SecurityHeadersMiddleware:
    """CSP, X-Frame-Options, nosniff, Referrer-Policy, Permissions-Policy (and HSTS when the
    public URL is https) on every HTTP response; a header the app already set is kept."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        fixed = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            # same-origin, not no-referrer: browsers send `Origin: null` on a form POST under
            # no-referrer, which the /ops same-origin check must refuse. Other origins still
            # get no Referer at all, so no URL (nor its query) leaks to them.
            (b"referrer-policy", b"same-origin"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        ]
        if hsts:
            fixed.append((b"strict-transport-security", b"max-age=31536000"))
        self.fixed = fixed
        self.non_page = NON_PAGE_POLICY.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        nonce = secrets.token_urlsafe(16)
        state[NONCE_KEY] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if b"content-security-policy" not in present:
                    policy = (
                        page_policy(nonce, state.get(SOURCES_KEY)).encode()
                        if content_type.startswith(b"text/html")
                        else self.non_page
                    )
                    headers.append((b"content-security-policy", policy))
                headers.extend(h for h in self.fixed if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
