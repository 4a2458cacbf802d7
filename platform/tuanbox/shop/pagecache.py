"""Serve a page's main fragment from the page cache, rendering it on a miss."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tuanbox.db.base import utcnow
from tuanbox.db.replica import make_read_session_factory, on_replica, primary_lsn, wait_replayed
from tuanbox.ratelimit.deps import get_redis
from tuanbox.settings import Settings
from tuanbox.shop import i18n
from tuanbox.shop.cache import PageCache
from tuanbox.shop.render import page, render

# What a page builder returns, given the time and the language: the fragment template, its
# context (with the page's "title", already in that language), the instant the content
# changes by the clock (or None), and the status (a missing campaign is a cached 404 too).
Built = tuple[str, dict[str, Any], datetime | None, int]
Builder = Callable[[Session, datetime, str], Built]
SessionOpener = Callable[[], AbstractContextManager[Session]]


log = logging.getLogger("tuanbox.shop.pagecache")
# How long a miss served by the replica waits for it to replay the primary's latest commit.
REPLICA_FENCE_S = 0.5


async def get_opener(request: Request) -> SessionOpener:
    """Read sessions (the replica when configured: nothing here is read-your-write), opened
    only on a cache miss (a hit touches no database); tests override it."""
    opener: SessionOpener = request.app.state.read_session_factory
    return opener


OpenerDep = Annotated[SessionOpener, Depends(get_opener)]


def settings_of(request: Request) -> Settings:
    """The app's settings without a dependency (a sync one would cost a thread hop)."""
    settings: Settings = request.app.state.settings
    return settings


def _replica_caught_up(request: Request, db: Session) -> bool:
    """On the replica, wait until it has replayed what the primary had committed when this
    miss began; False if it lags longer than REPLICA_FENCE_S or does not answer.

    The change that bumped the cache version committed before this miss read the version; a
    page rebuilt from a replica that has not replayed it yet would be cached stale under the
    new version until its TTL. One primary round trip per miss; hits pay nothing."""
    if not on_replica(db):
        return True
    with request.app.state.session_factory() as primary:
        lsn = primary_lsn(primary)
    if lsn is None:
        return True
    try:
        if wait_replayed(db, lsn, timeout_s=REPLICA_FENCE_S):
            return True
        log.warning("read replica more than %.1f s behind: page built on the primary",
                    REPLICA_FENCE_S)  # fmt: skip
    except OperationalError as exc:
        db.rollback()
        log.warning("read replica unavailable, page built on the primary: %s", exc.orig)
    return False


def _primary_reads(request: Request) -> sessionmaker[Session]:
    """Read-only sessions on the primary, for misses the replica cannot serve in time."""
    state = request.app.state
    factory: sessionmaker[Session] | None = getattr(state, "primary_read_session_factory", None)
    if factory is None:
        factory = make_read_session_factory(state.engine, state.settings, on_replica=False)
        state.primary_read_session_factory = factory
    return factory


async def cached_page(
    request: Request,
    opener: SessionOpener,
    key: str,
    build: Builder,
    shell: dict[str, Any],
) -> HTMLResponse:
    """The shell (header, sign-in state, language switch) is rendered for every request; the
    main fragment comes from the cache under ``key`` + language, or from ``build``.

    Async on purpose: a hit costs one thread hop (the Redis read) and no database session."""
    settings = settings_of(request)
    locale = i18n.locale_of(request)
    cache = PageCache(get_redis(request), settings.shop_cache_ttl_s, settings.shop_cache_prefix)
    name = f"{key}:{locale}"

    def miss(version: str) -> dict[str, Any]:
        now = utcnow()
        with opener() as db:
            built = build(db, now, locale) if _replica_caught_up(request, db) else None
        if built is None:  # the replica is behind or down: the primary answers, still cached
            with _primary_reads(request)() as db:
                built = build(db, now, locale)
        template, context, until, status = built
        main = render(locale, template, context)
        made = {"title": str(context.get("title", "")), "status": status, "main": main}
        cache.put(name, version, json.dumps(made), now=now, until=until)
        return made

    def lookup() -> tuple[dict[str, Any], str]:
        version, entry = cache.get(name) if settings.shop_cache_ttl_s > 0 else ("", None)
        if entry is not None:
            return json.loads(entry), "hit"
        return miss(version), "miss"

    stored, hit = await run_in_threadpool(lookup)
    # Our own rendering (autoescaped when made), read back from our own Redis.
    main = Markup(stored["main"])  # noqa: S704
    return page(
        request,
        "shell.html",
        {**shell, "title": stored["title"], "main_html": main},
        status_code=int(stored.get("status", 200)),
        headers={"X-Page-Cache": hit},
    )
