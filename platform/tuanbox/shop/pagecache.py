"""Serve a page's main fragment from the page cache, rendering it on a miss."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tuanbox.db.base import utcnow
from tuanbox.ratelimit.deps import get_redis
from tuanbox.settings import Settings
from tuanbox.shop import i18n
from tuanbox.shop.cache import PageCache
from tuanbox.shop.render import page, render

# What a page builder returns, given the time and the language: the fragment template, its
# context (with the page's "title", already in that language), the instant the content
# changes by the clock (or None), and the status (a missing campaign is a cached 404 too).
Built = tuple[str, dict[str, Any], datetime | None, int]


def cached_page(
    request: Request,
    settings: Settings,
    key: str,
    build: Callable[[datetime, str], Built],
    shell: dict[str, Any],
) -> HTMLResponse:
    """The shell (header, sign-in state, language switch) is rendered for every request; the
    main fragment comes from the cache under ``key`` + language, or from ``build``."""
    locale = i18n.locale_of(request)
    cache = PageCache(get_redis(request), settings.shop_cache_ttl_s, settings.shop_cache_prefix)
    name = f"{key}:{locale}"
    version, entry = cache.get(name) if settings.shop_cache_ttl_s > 0 else ("", None)
    if entry is not None:
        stored = json.loads(entry)
        hit = "hit"
    else:
        now = utcnow()
        template, context, until, status = build(now, locale)
        main = render(locale, template, context)
        stored = {"title": str(context.get("title", "")), "status": status, "main": main}
        cache.put(name, version, json.dumps(stored), now=now, until=until)
        hit = "miss"
    # Our own rendering (autoescaped when made), read back from our own Redis.
    main = Markup(stored["main"])  # noqa: S704
    return page(
        request,
        "shell.html",
        {**shell, "title": stored["title"], "main_html": main},
        status_code=int(stored.get("status", 200)),
        headers={"X-Page-Cache": hit},
    )
