"""The OpenAPI document and Swagger UI under /api/v1: on unless production, or when enabled.

Swagger UI's assets come from the app itself (the ``swagger-ui-dist`` npm package pinned in
package.json, installed by ``make deps``), never from a CDN: the page names no other origin.
Where the package is not installed (the Docker image has no node_modules) the page still
answers, with a link to the OpenAPI document instead of the interactive UI."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from tuanbox.api.security import csp_nonce
from tuanbox.settings import Settings

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
ASSETS_URL = "/api/v1/docs/assets"
# node_modules of the checkout (platform/tuanbox/api/docs.py → repository root).
SWAGGER_DIR = Path(__file__).resolve().parents[3] / "node_modules" / "swagger-ui-dist"
# The only files served from it, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def docs_enabled(settings: Settings) -> bool:
    return settings.api_docs if settings.api_docs is not None else settings.env != "production"


def swagger_installed(directory: Path = SWAGGER_DIR) -> bool:
    return all((directory / name).is_file() for name in ASSETS)


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at DOCS_URL; its one inline script carries the response's CSP nonce."""

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        title = f"{app.title} API"
        if swagger_installed():
            page = get_swagger_ui_html(
                openapi_url=OPENAPI_URL,
                title=title,
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
                # No badge fetched from validator.swagger.io.
                swagger_ui_parameters={"validatorUrl": None},
            )
            body = bytes(page.body).decode()
            body = body.replace("<script>", f'<script nonce="{csp_nonce(request)}">')
        else:
            body = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
                f'<p><a href="{OPENAPI_URL}">OpenAPI document (JSON)</a></p>'
                "<p>Swagger UI is not installed here (make deps installs it).</p></body></html>"
            )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None or not swagger_installed():
            raise HTTPException(404, "No such docs asset.")
        return FileResponse(
            SWAGGER_DIR / name, media_type=media_type, headers={"Cache-Control": "max-age=3600"}
        )
