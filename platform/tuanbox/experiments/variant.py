"""What the campaign page shows a shopper under a running experiment (the shop calls this)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from starlette.concurrency import run_in_threadpool

from tuanbox.errors import AuthenticationError
from tuanbox.experiments.domain import assign
from tuanbox.experiments.exposure import CACHE_TTL_S, cached, current_version, running_cached
from tuanbox.reports.pageviews import SessionOpener
from tuanbox.settings import Settings

__all__ = ["CACHE_TTL_S", "Variant", "apply", "variant_for"]


@dataclasses.dataclass(frozen=True)
class Variant:
    experiment_id: str
    field: str
    arm: str
    value: str

    @property
    def cache_tag(self) -> str:
        """What the page cache keys this variant's fragment by: the arm and what it shows, so
        an edited arm's value is a new fragment (not the one rendered before the edit)."""
        digest = hashlib.sha256(f"{self.field}\0{self.value}".encode()).hexdigest()[:12]
        return f"{self.experiment_id}:{self.arm}:{digest}"


def shopper_id(request: Any, settings: Settings) -> str | None:
    """The signed-in shopper's id from the access cookie (signature and expiry only: this
    picks a title to show, it grants nothing)."""
    from tuanbox.accounts.tokens import decode_access_token
    from tuanbox.shop.session import ACCESS

    token = request.cookies.get(ACCESS)
    if not token or len(token) > 4096:
        return None
    try:
        return decode_access_token(settings, token).id
    except AuthenticationError:
        return None


async def variant_for(
    request: Any, settings: Settings, opener: SessionOpener, campaign_id: str
) -> Variant | None:
    """The shopper's arm of the campaign's running experiment; None when there is none or
    the visitor is not signed in (assignment is by user; visitors see the campaign as is)."""
    user_id = shopper_id(request, settings)
    if user_id is None:
        return None
    import time

    version = await current_version(request)
    known, found = cached(campaign_id, version, time.monotonic())
    if not known:
        found = await run_in_threadpool(running_cached, opener, campaign_id, None, version)
    if found is None:
        return None
    experiment_id, field, arms = found
    arm = assign(experiment_id, user_id, arms)
    value = next(str(a["value"]) for a in arms if a["key"] == arm)
    return Variant(experiment_id=experiment_id, field=field, arm=arm, value=value)


def apply(view: Any, variant: Variant | None) -> Any:
    """The campaign view with the arm's title or main image."""
    if variant is None:
        return view
    if variant.field == "title":
        return dataclasses.replace(view, title=variant.value)
    if variant.field == "price":
        cap = int(variant.value)
        tiers = [[n, min(int(p), cap)] for n, p in view.tiers]
        return dataclasses.replace(view, tiers=tiers, price_cents=min(view.price_cents, cap))
    return dataclasses.replace(view, images=[variant.value, *view.images[1:]])
