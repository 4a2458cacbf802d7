"""The FastAPI application factory: the composition root of the HTTP process."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from tuanbox.api import health, redis_async
from tuanbox.api.docs import OPENAPI_URL, docs_enabled, install_docs
from tuanbox.api.nul_guard import RefuseNul
from tuanbox.api.problems import install_problem_handlers
from tuanbox.api.security import RequestIdMiddleware, SecurityHeadersMiddleware
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.db.replica import make_read_engine, make_read_session_factory, owns_read_engine
from tuanbox.notifications.services import get_sms_sender
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.api")

# Feature routers are listed here by import path; each feature package exposes `router`.
# Routing tries them in this order, so the burst paths (flash-sale reservations, group
# joins) come first: behind the others, matching cost a flash-sale request ~60 route tests.
FEATURE_ROUTERS: tuple[str, ...] = (
    "tuanbox.flashsale.views",
    "tuanbox.groupbuy.views",
    "tuanbox.accounts.views",
    "tuanbox.catalog.views",
    "tuanbox.orders.views",
    "tuanbox.orders.acceptance_views",
    "tuanbox.payments.views",
    "tuanbox.returns.views",
    "tuanbox.privacy.views",
    "tuanbox.groupbuy.pages",
    "tuanbox.presale.views",
    "tuanbox.ops.views",
    "tuanbox.risk.views",
    "tuanbox.risk.pages",
    "tuanbox.audit.views",
    "tuanbox.fulfilment.views",
    "tuanbox.trace.views",
    "tuanbox.coupons.views",
    "tuanbox.growth.views",
    "tuanbox.growth.pages",
    "tuanbox.membership.views",
    "tuanbox.membership.pages",
    "tuanbox.segments.views",
    "tuanbox.merchant_orders.views",
    "tuanbox.shop.views",
    "tuanbox.console.views",
)
# Routers mounted only when their condition holds for the process's settings. SimPay's
# hosted page marks orders paid without taking money: never in production.
CONDITIONAL_ROUTERS: tuple[tuple[str, Callable[[Settings], bool]], ...] = (
    ("tuanbox.payments.simpay_pages", lambda s: s.simpay_enabled),
)


class TuanboxAPI(FastAPI):
    """FastAPI with the request id and security headers outside Starlette's error middleware,
    so that 500s (and every 404) carry them and the 500's log line has the request id."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        hsts = settings.public_base_url.startswith("https://")
        inner = SecurityHeadersMiddleware(super().build_middleware_stack(), hsts=hsts)
        return RequestIdMiddleware(inner)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app for these settings; tests pass their own settings and engine.

    An engine passed in belongs to the caller; one built here is disposed at shutdown."""
    own_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis_async.open_client(app)
        yield
        await redis_async.close_client(app)
        if own_engine:
            app.state.engine.dispose()
        if owns_read_engine(app.state.read_engine, app.state.engine):
            app.state.read_engine.dispose()

    docs = docs_enabled(settings)
    app = TuanboxAPI(
        lifespan=lifespan,
        title="Tuanbox",
        version="0.1.0",
        summary="Community group-buy fulfilled through smart pickup lockers.",
        openapi_url=OPENAPI_URL if docs else None,
        docs_url=None,  # our own route below, whose inline script carries the CSP nonce
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine, settings)
    # Catalog pages and reports read here: the replica when configured (tuanbox.db.replica).
    app.state.read_engine = make_read_engine(settings, app.state.engine)
    app.state.read_session_factory = make_read_session_factory(app.state.read_engine, settings)
    # Chosen once from the settings (gateway in production); routes get it via SmsSenderDep.
    app.state.sms_sender = get_sms_sender(settings)
    install_problem_handlers(app)
    # Committed changes to what the shopper pages show invalidate their Redis page cache.
    from tuanbox.shop.cache import install as watch_shop_pages

    watch_shop_pages()
    # ...and committed experiment changes, every process's cached experiments.
    from tuanbox.experiments.exposure import install as watch_experiments

    watch_experiments()
    # Before any route or dependency: no NUL from a request reaches PostgreSQL (or a 500).
    app.add_middleware(RefuseNul)
    if docs:
        install_docs(app)

    app.include_router(health.router)
    conditional = tuple(dotted for dotted, wanted in CONDITIONAL_ROUTERS if wanted(settings))
    burst: list[BaseRoute] = []
    for dotted in FEATURE_ROUTERS + conditional:
        module = __import__(dotted, fromlist=["router"])
        app.include_router(module.router)
        burst += getattr(module, "burst_routes", ())
    # Burst endpoints (a module's `burst_routes`) are matched before anything else, inside
    # the same middleware stack: see `tuanbox.api.burst.BurstRoute`.
    app.router.routes[:0] = burst
    # The console's pages send a signed-out browser to its sign-in page, refusals as pages.
    from tuanbox.console.views import install_handlers as install_console_handlers

    install_console_handlers(app)
    if settings.env == "development":
        # The development inbox shows sign-in and pickup codes: it exists only there.
        from tuanbox.notifications import inbox

        app.include_router(inbox.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory tuanbox.api.app:app_from_env` (used by `tuanbox api`)."""
    from tuanbox.logs import configure_logging
    from tuanbox.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    # What is imported and built by now lives as long as the server process: out of the
    # cyclic GC's sight, a full collection under load no longer walks ~150 MB of it (its
    # pauses were the tail of a flash-sale burst). Tests build apps with create_app: unfrozen.
    gc.collect()
    gc.freeze()
    return app
