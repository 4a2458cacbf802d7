"""The FastAPI application factory: the composition root of the HTTP process."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine

from tuanbox.api import health
from tuanbox.api.problems import install_problem_handlers
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.logs import request_id
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.api")

# Feature routers are listed here by import path; each feature package exposes `router`.
FEATURE_ROUTERS: tuple[str, ...] = (
    "tuanbox.accounts.views",
    "tuanbox.catalog.views",
    "tuanbox.orders.views",
    "tuanbox.payments.views",
    "tuanbox.returns.views",
    "tuanbox.groupbuy.views",
    "tuanbox.groupbuy.pages",
    "tuanbox.flashsale.views",
    "tuanbox.presale.views",
    "tuanbox.ops.views",
    "tuanbox.fulfilment.views",
    "tuanbox.trace.views",
)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app for these settings; tests pass their own settings and engine.

    An engine passed in belongs to the caller; one built here is disposed at shutdown."""
    own_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_engine:
            app.state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="Tuanbox",
        version="0.1.0",
        summary="Community group-buy fulfilled through smart pickup lockers.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine)
    install_problem_handlers(app)

    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            response = await call_next(request)
        finally:
            request_id.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    app.include_router(health.router)
    for dotted in FEATURE_ROUTERS:
        module = __import__(dotted, fromlist=["router"])
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory tuanbox.api.app:app_from_env` (used by `tuanbox api`)."""
    from tuanbox.logs import configure_logging
    from tuanbox.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
