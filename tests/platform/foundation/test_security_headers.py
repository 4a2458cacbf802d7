"""Security headers on every response, a validated X-Request-ID, and API docs gated by settings."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.requests import Request

from tests.conftest import make_settings
from tuanbox.api.app import create_app
from tuanbox.api.docs import docs_enabled
from tuanbox.api.security import allow_sources, page_policy
from tuanbox.logs import request_id

FRESH_ID = re.compile(r"[0-9a-f]{32}")


class _Thing(BaseModel):
    qty: int


def _app(engine: Engine, **overrides: object) -> FastAPI:
    app = create_app(make_settings(**overrides), engine=engine)
    router = APIRouter()

    @router.get("/probe/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    @router.post("/probe/things")
    def things(thing: _Thing) -> _Thing:
        return thing

    @router.get("/probe/rid")
    def rid() -> dict[str, str | None]:
        return {"rid": request_id.get()}

    app.include_router(router)
    return app


def _client(engine: Engine, **overrides: object) -> TestClient:
    return TestClient(_app(engine, **overrides), raise_server_exceptions=False)


# Every kind of response: JSON, problems (404, 405, 422, 500), pages, redirects, static files.
ROUTES = [
    ("GET", "/healthz", 200, "application/json"),
    ("GET", "/nowhere", 404, "application/problem+json"),
    ("GET", "/g/no-such-group", 404, "application/problem+json"),
    ("POST", "/healthz", 405, "application/problem+json"),
    ("POST", "/probe/things", 422, "application/problem+json"),
    ("GET", "/probe/boom", 500, "application/problem+json"),
    ("GET", "/ops/login", 200, "text/html"),
    ("GET", "/ops", 303, None),
    ("GET", "/ops/static/ops.css", 200, "text/css"),
    ("GET", "/ops/static/ops.js", 200, "text/javascript"),
    ("GET", "/g/static/group.js", 200, "text/javascript"),
    ("GET", "/trace/static/trace.js", 200, "text/javascript"),
    ("GET", "/g/static/nope.js", 404, "application/problem+json"),
    ("GET", "/api/v1/openapi.json", 200, "application/json"),
    ("GET", "/api/v1/docs", 200, "text/html"),
]


@pytest.mark.parametrize(("method", "path", "status", "media"), ROUTES)
def test_every_response_carries_the_security_headers(
    engine: Engine, method: str, path: str, status: int, media: str | None
) -> None:
    r = _client(engine).request(method, path, json={} if method == "POST" else None,
                                follow_redirects=False)  # fmt: skip
    assert r.status_code == status, r.text
    if media:
        assert r.headers["content-type"].startswith(media)
    for name, value in {
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "permissions-policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
    }.items():
        assert r.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in r.headers  # the public URL is http here
    assert FRESH_ID.fullmatch(r.headers["x-request-id"])
    [csp] = r.headers.get_list("content-security-policy")
    assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    if (media or "").startswith("text/html"):
        directives = dict(d.split(" ", 1) for d in csp.split("; "))
        assert directives["default-src"] == "'self'"
        assert re.fullmatch(r"'self' 'nonce-[\w-]{22}'",
                            directives["script-src"])  # fmt: skip
        assert "unsafe-inline" not in csp
        assert directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"
    else:
        assert csp.startswith("default-src 'none';")


def test_each_page_has_its_own_nonce_and_its_inline_elements_carry_it(engine: Engine) -> None:
    client = _client(engine)
    nonces = []
    for _ in range(2):
        r = client.get("/api/v1/docs")
        [nonce] = set(re.findall(r"'nonce-([\w-]+)'", r.headers["content-security-policy"]))
        assert f'<script nonce="{nonce}">' in r.text
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


INLINE = re.compile(r"<(style|script)\b([^>]*)>", re.IGNORECASE)


@pytest.mark.parametrize(
    ("env", "path"),
    [("test", "/ops/login"), ("test", "/api/v1/docs"), ("development", "/dev/inbox")],
)
def test_pages_inline_only_what_carries_the_nonce(engine: Engine, env: str, path: str) -> None:
    """What the CSP would block: an inline <style>/<script> without this response's nonce,
    a style= attribute or an on…= handler. (The group and trace pages are checked in
    Chromium by their browser tests.)"""
    r = _client(engine, env=env).get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    [nonce] = set(re.findall(r"'nonce-([\w-]+)'", r.headers["content-security-policy"]))
    for tag, attributes in INLINE.findall(r.text):
        if "src=" in attributes or 'type="application/json"' in attributes:
            continue
        assert f'nonce="{nonce}"' in attributes, f"<{tag}{attributes}>"
    assert not re.search(r"\sstyle=|\son[a-z]+=", r.text), path


def test_hsts_when_the_public_url_is_https(engine: Engine) -> None:
    client = _client(engine, public_base_url="https://tuanbox.example")
    for path in ("/healthz", "/nowhere", "/probe/boom", "/ops/login"):
        assert client.get(path).headers.get_list("strict-transport-security") == [
            "max-age=31536000"
        ], path


def _asgi_get(
    app: FastAPI, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One raw ASGI request: bytes no HTTP client would send (CR LF, NUL) reach the app."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/probe/rid", "raw_path": b"/probe/rid", "root_path": "",
        "query_string": b"", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"a" * 65,
        b"x" * 10_000,
        b"evil\r\nSet-Cookie: tuanbox_ops=stolen",
        b"ab\x00cd",
        "司机-1".encode(),
        b"has space",
        b"../../etc/passwd",
        b'{"json":1}',
    ],
    ids=["empty", "65", "10k", "crlf", "nul", "unicode", "space", "slash", "json"],
)
def test_a_hostile_request_id_is_replaced_by_a_fresh_one(engine: Engine, raw: bytes) -> None:
    status, headers, body = _asgi_get(_app(engine), [(b"x-request-id", raw)])
    rid = headers[b"x-request-id"].decode()
    assert FRESH_ID.fullmatch(rid)
    if status == 200:  # what the logs see is the same fresh id
        assert body == f'{{"rid":"{rid}"}}'.encode()


@pytest.mark.parametrize("good", [b"abc123", b"req-2026.11.28_0001", b"a" * 64])
def test_a_well_formed_request_id_is_kept(engine: Engine, good: bytes) -> None:
    status, headers, body = _asgi_get(_app(engine), [(b"x-request-id", good)])
    assert status == 200 and headers[b"x-request-id"] == good
    assert body == b'{"rid":"' + good + b'"}'


def test_a_500_keeps_the_request_id(engine: Engine) -> None:
    r = _client(engine).get("/probe/boom", headers={"X-Request-ID": "trace-me-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "trace-me-1"


@pytest.mark.parametrize(("api_docs", "served"), [(None, True), (False, False), (True, True)])
def test_api_docs_are_served_as_the_settings_say(
    engine: Engine, api_docs: bool | None, served: bool
) -> None:
    client = _client(engine, api_docs=api_docs)
    for path in ("/api/v1/openapi.json", "/api/v1/docs"):
        r = client.get(path)
        assert r.status_code == (200 if served else 404), path
        assert "x-frame-options" in r.headers
    for path in ("/docs", "/redoc", "/api/v1/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    ("env", "api_docs", "enabled"),
    [
        ("test", None, True),
        ("development", None, True),
        ("production", None, False),
        ("production", False, False),
        ("production", True, True),
    ],
)
def test_api_docs_are_off_in_production_unless_enabled(
    env: str, api_docs: bool | None, enabled: bool
) -> None:
    # Only the env differs from test settings (a full production configuration needs payment
    # and SMS gateways, which is not the point here).
    settings = make_settings(api_docs=api_docs).model_copy(update={"env": env})
    assert docs_enabled(settings) is enabled


def _request() -> Request:
    return Request({"type": "http", "headers": [], "state": {}})


def test_a_view_adds_only_the_origin_of_a_url_to_one_directive() -> None:
    request = _request()
    allow_sources(request, "connect-src", "https://user:pw@rpc.example:8443/v3/KEY?x=1")
    allow_sources(request, "connect-src", "http://127.0.0.1:8545", "http://127.0.0.1:8545/")
    policy = page_policy("n0nce", request.scope["state"]["csp_sources"])
    assert "connect-src 'self' https://rpc.example:8443 http://127.0.0.1:8545;" in policy
    assert "KEY" not in policy and "pw" not in policy


@pytest.mark.parametrize(
    ("directive", "url"),
    [
        ("connect-src", "javascript:alert(1)"),
        ("connect-src", "https://a.example; script-src *"),
        ("connect-src", "https://a.example,evil.example"),
        ("connect-src", "https://a b.example"),
        ("connect-src", "ftp://files.example"),
        ("connect-src", "data:text/html,hi"),
        ("connect-src", "https://"),
        ("default-src", "https://a.example"),
        ("frame-ancestors", "https://a.example"),
    ],
)
def test_allow_sources_refuses_what_is_not_a_plain_origin(directive: str, url: str) -> None:
    with pytest.raises(ValueError, match=r"origin|cannot be extended"):
        allow_sources(_request(), directive, url)


URL_ATTRIBUTE = re.compile(r"""\b(?:src|href|url)\s*[=:(]\s*['"]?([^'"\s)>]+)""", re.IGNORECASE)


def test_the_docs_page_references_no_external_origin_and_its_assets_are_served(
    engine: Engine,
) -> None:
    """No CDN: every URL the Swagger UI page names is on this app and answers 200; the
    page's CSP lists no other origin."""
    client = _client(engine)
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert not re.search(r"https?://", r.text), "the page names another origin"
    assert not re.search(r"https?://", r.headers["content-security-policy"])
    urls = set(URL_ATTRIBUTE.findall(r.text))
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in urls, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url
    assert "SwaggerUIBundle" in client.get("/api/v1/docs/assets/swagger-ui-bundle.js").text
    for path in ("/api/v1/docs/assets/package.json", "/api/v1/docs/assets/..%2Fpackage.json"):
        assert client.get(path).status_code == 404, path
