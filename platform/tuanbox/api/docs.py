"""The OpenAPI document and Swagger UI under /api/v1: on unless production, or when enabled."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from tuanbox.api.security import allow_sources, csp_nonce
from tuanbox.settings import Settings

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
# Swagger UI's assets, as FastAPI links them; the page's CSP names exactly these origins.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
FAVICON = "https://fastapi.tiangolo.com/img/favicon.png"


def docs_enabled(settings: Settings) -> bool:
    return settings.api_docs if settings.api_docs is not None else settings.env != "production"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at DOCS_URL; its one inline script carries the response's CSP nonce."""

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER_CDN}/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_CDN}/npm/swagger-ui-dist@5/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )
        allow_sources(request, "script-src", SWAGGER_CDN)
        allow_sources(request, "style-src", SWAGGER_CDN)
        allow_sources(request, "img-src", FAVICON)
        body = (
            bytes(page.body).decode().replace("<script>", f'<script nonce="{csp_nonce(request)}">')
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})
