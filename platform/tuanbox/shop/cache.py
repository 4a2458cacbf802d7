"""The Redis page cache of the home and campaign pages, and its invalidation on change.

A cached entry is the page's main fragment, rendered for one language and station, holding
nothing about the shopper and no CSP nonce (pages load only same-origin files). It is
stored as ``{version}\\n{html}``; one MGET reads the current version and the entry, and an
entry of an older version is a miss. Any committed change to what the pages show
(campaigns, groups, flash sales, products, images, merchants, stations, reviews) bumps the
version (see ``install``), so every page is rebuilt on its next request. An entry also
expires at the next moment its content changes by the clock (a sale starts, a group's
deadline passes) and after ``shop_cache_ttl_s`` at most.

Redis trouble never fails a page: the page is rendered from the database instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis

from tuanbox.db.bump import BumpOnCommit, redis_client

log = logging.getLogger("tuanbox.shop.cache")
VERSION = "version"
PAGE = "page:"


class PageCache:
    def __init__(self, client: redis.Redis, ttl_s: int, prefix: str) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix

    def get(self, name: str) -> tuple[str, str | None]:
        """(the current version, the cached fragment or None); ("", None) when Redis fails."""
        try:
            version, entry = self._client.mget(
                [prefix_of(self._prefix, VERSION), prefix_of(self._prefix, PAGE + name)]
            )
        except redis.RedisError as exc:
            log.warning("page cache unavailable: %s", exc)
            return "", None
        current = (version or b"0").decode()
        if entry is None:
            return current, None
        stored, _, html = entry.decode().partition("\n")
        return current, html if stored == current else None

    def put(self, name: str, version: str, html: str, *, now: datetime,
            until: datetime | None) -> None:  # fmt: skip
        """Keep ``html`` rendered from data read at ``version`` (read before the data)."""
        if not version:
            return
        ttl = self._ttl_s
        if until is not None:
            ttl = min(ttl, int((until - now).total_seconds()))
        if ttl < 1:
            return
        try:
            self._client.set(prefix_of(self._prefix, PAGE + name), f"{version}\n{html}", ex=ttl)
        except redis.RedisError as exc:
            log.warning("page cache unavailable: %s", exc)


def prefix_of(prefix: str, key: str) -> str:
    return prefix + key


def bump(client: redis.Redis, prefix: str) -> int:
    """Every cached page is stale from now on."""
    return int(client.incr(prefix_of(prefix, VERSION)))


# --- invalidation ------------------------------------------------------------------------


def _watched() -> tuple[type, ...]:
    from tuanbox.catalog.models import Merchant, Product, ProductImage, Sku
    from tuanbox.flashsale.models import FlashSale
    from tuanbox.groupbuy.models import Campaign, Group
    from tuanbox.lockers.models import Station
    from tuanbox.reviews.models import Review

    return (Campaign, Group, FlashSale, Sku, Product, ProductImage, Merchant, Station, Review)


def _stock_only(obj: Any) -> bool:
    """A flash sale whose only change is its remaining stock: pages poll that live
    (/shop/live.json), so an admission does not throw away every cached page."""
    from sqlalchemy import inspect

    from tuanbox.flashsale.models import FlashSale

    if not isinstance(obj, FlashSale):
        return False
    state = inspect(obj)
    changed = {a.key for a in state.attrs if a.history.has_changes()}
    return changed <= {"remaining", "updated_at"}


def _shown(touched: Sequence[object]) -> bool:
    watched = _watched()
    return any(isinstance(o, watched) and not _stock_only(o) for o in touched)


_invalidation = BumpOnCommit(
    "page cache",
    _shown,
    lambda settings: bump(redis_client(settings.redis_url), settings.shop_cache_prefix),
)


def install() -> None:
    """Watch every session of this process (API, worker) for changes the pages show."""
    _invalidation.install()
