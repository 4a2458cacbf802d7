"""The campaign form: what staff typed, checked in words, then by the domain itself.

Every kind shares one form: fixed (one price), tiered (members → price rows), pre-sale (a
group-buy whose goods are bought from the supplier after it closes; one row or several)
and flash sale (a price and a stock cap for a short window). The checks here name the
mistake in the staff's language (which tier, which time, how much stock is free); the
domain's own validation (`CampaignSpec.schedule()`, the flash sale's rules) runs last and
stays the authority."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tuanbox.bounds import MAX_GROUP_SIZE, MAX_QTY, MAX_STOCK
from tuanbox.console.forms import Problems
from tuanbox.shop.render import money

KINDS = ("fixed", "tiered", "presale", "flash")
MAX_TIERS = 5
MAX_GROUP_HOURS = 30 * 24
# A start this far in the past is taken as a typo (a form filled in a minute ago is fine).
PAST_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class SkuChoice:
    id: str
    label: str
    free: int
    on_hand: int
    reserved: int
    price_cents: int


@dataclass(frozen=True)
class CampaignWindow:
    id: str
    title: str
    sku_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass
class Draft:
    """The form as typed (strings), so a refused form comes back filled in."""

    kind: str = "tiered"
    title: str = ""
    sku_id: str = ""
    starts_at: str = ""
    ends_at: str = ""
    tiers: list[tuple[str, str]] = field(default_factory=list)
    max_size: str = ""
    group_hours: str = "24"
    per_user_limit: str = "1"
    leader_price: str = ""
    stock_cap: str = ""
    lot_code: str = ""
    price: str = ""
    within: str = ""
    stations: list[str] = field(default_factory=list)

    def as_form(self) -> dict[str, Any]:
        rows = list(self.tiers) + [("", "")] * (MAX_TIERS - len(self.tiers))
        return {**self.__dict__, "tier_rows": rows[:MAX_TIERS]}


@dataclass(frozen=True)
class GroupValues:
    title: str
    sku_id: str
    starts_at: datetime
    ends_at: datetime
    tiers: list[tuple[int, int]]  # (members, price cents) as typed, in row order
    max_size: int
    group_ttl_s: int
    per_user_limit: int
    leader_price_cents: int | None
    stock_cap: int | None
    presale: bool
    lot_code: str | None
    station_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaleValues:
    title: str
    sku_id: str
    starts_at: datetime
    ends_at: datetime
    price_cents: int
    stock_cap: int
    per_user_limit: int


def _clock(at: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def check(
    draft: Draft,
    problems: Problems,
    *,
    skus: dict[str, SkuChoice],
    campaigns: dict[str, CampaignWindow],
    now: datetime,
    tz: str,
    stations: frozenset[str] = frozenset(),
) -> GroupValues | SaleValues | None:
    """The values when every check passes; else None with the problems worded."""
    _ = problems._
    if draft.kind not in KINDS:
        problems.add(_("Kind: choose fixed price, tiered, pre-sale or flash sale."))
        return None
    title = draft.title.strip()
    if not title:
        problems.add(_("Title: shoppers see it on the home page; please write one."))
    sku = skus.get(draft.sku_id)
    if sku is None:
        problems.add(_("SKU: choose one of your SKUs."))
    starts = problems.when(draft.starts_at, _("Starts"), tz)
    ends = problems.when(draft.ends_at, _("Ends"), tz)
    if starts is not None and starts < now - PAST_GRACE:
        problems.add(
            _("Starts: %(at)s has already passed. Choose now or a later time.")
            % {"at": _clock(starts, tz)}
        )
    if starts is not None and ends is not None and ends <= starts:
        problems.add(
            _("Ends: the campaign would end (%(end)s) before it starts (%(start)s).")
            % {"end": _clock(ends, tz), "start": _clock(starts, tz)}
        )
    per_user = problems.whole(draft.per_user_limit, _("Limit per shopper"), 1, MAX_QTY)
    cap = problems.whole(
        draft.stock_cap, _("Stock cap"), 1, MAX_STOCK, required=draft.kind == "flash"
    )
    if cap is not None and sku is not None and cap > sku.free:
        problems.add(
            _(
                "Stock cap: %(cap)s units, but the SKU has only %(free)s free (%(on_hand)s "
                "on hand, %(reserved)s already reserved). Restock it or lower the cap."
            )
            % {"cap": cap, "free": sku.free, "on_hand": sku.on_hand, "reserved": sku.reserved}
        )
    if draft.kind == "flash":
        return _flash(draft, problems, title, sku, starts, ends, per_user, cap, campaigns, tz)
    unknown = [sid for sid in draft.stations if sid not in stations]
    if unknown:
        problems.add(_("Stations: choose stations from the list (or none, for every station)."))
    values = _group(draft, problems, title, sku, starts, ends, per_user, cap)
    if values is None or unknown:
        return None
    from dataclasses import replace

    return replace(values, station_ids=tuple(dict.fromkeys(draft.stations)))


def _flash(
    draft: Draft,
    problems: Problems,
    title: str,
    sku: SkuChoice | None,
    starts: datetime | None,
    ends: datetime | None,
    per_user: int | None,
    cap: int | None,
    campaigns: dict[str, CampaignWindow],
    tz: str,
) -> SaleValues | None:
    _ = problems._
    price = problems.money(draft.price, _("Sale price"))
    if price is not None and sku is not None and price >= sku.price_cents:
        problems.add(
            _(
                "Sale price: %(price)s is not below the SKU's usual %(usual)s; a flash "
                "sale must be a discount."
            )
            % {"price": money(price), "usual": money(sku.price_cents)}
        )
    if draft.within:
        campaign = campaigns.get(draft.within)
        if campaign is None:
            problems.add(_("During campaign: choose one of your campaigns, or none."))
        elif (
            starts is not None
            and ends is not None
            and not (campaign.starts_at <= starts and ends <= campaign.ends_at)
        ):
            problems.add(
                _(
                    "Times: the sale (%(start)s – %(end)s) falls outside the campaign "
                    '"%(title)s" (%(c_start)s – %(c_end)s). Move it inside, or choose '
                    "no campaign."
                )
                % {
                    "start": _clock(starts, tz),
                    "end": _clock(ends, tz),
                    "title": campaign.title,
                    "c_start": _clock(campaign.starts_at, tz),
                    "c_end": _clock(campaign.ends_at, tz),
                }
            )
    if problems or None in (sku, starts, ends, per_user, cap, price):
        return None
    assert sku is not None and starts and ends and per_user and cap and price is not None
    return SaleValues(title, sku.id, starts, ends, price, cap, per_user)


def _group(
    draft: Draft,
    problems: Problems,
    title: str,
    sku: SkuChoice | None,
    starts: datetime | None,
    ends: datetime | None,
    per_user: int | None,
    cap: int | None,
) -> GroupValues | None:
    _ = problems._
    rows = [(m.strip(), p.strip()) for m, p in draft.tiers if m.strip() or p.strip()]
    if draft.kind == "fixed":
        rows = rows[:1]
    numbered: list[tuple[int, int, int]] = []  # (row number, members, price cents)
    for number, (members, price) in enumerate(rows, start=1):
        label = _("Tier %(n)s") % {"n": number}
        m = problems.whole(members, label + " · " + _("members"), 1, MAX_GROUP_SIZE)
        p = problems.money(price, label + " · " + _("price"))
        if m is not None and p is not None:
            numbered.append((number, m, p))
    if not rows:
        problems.add(_("Price: a group-buy needs a group size and a price per unit."))
    elif draft.kind == "tiered" and len(rows) < 2:
        problems.add(
            _(
                "Tiers: a tiered campaign needs at least two tiers (more members, lower "
                "price). For one price, choose fixed price."
            )
        )
    for (n1, m1, p1), (n2, m2, p2) in itertools.pairwise(numbered):
        if m2 <= m1:
            problems.add(
                _(
                    "Tier %(n)s: needs more members than tier %(prev)s (%(m2)s is not more "
                    "than %(m1)s). List tiers from the smallest group up."
                )
                % {"n": n2, "prev": n1, "m1": m1, "m2": m2}
            )
        elif p2 > p1:
            problems.add(
                _(
                    "Tier %(n)s: %(p2)s for %(m2)s members is dearer than tier %(prev)s "
                    "(%(p1)s for %(m1)s). A bigger group must never pay more per unit."
                )
                % {"n": n2, "prev": n1, "m1": m1, "m2": m2, "p1": money(p1), "p2": money(p2)}
            )
    tiers = [(m, p) for _n, m, p in numbered]
    if tiers and sku is not None and tiers[0][1] > sku.price_cents:
        problems.add(
            _(
                "Tier 1: %(p)s is above the SKU's usual price %(usual)s; a group-buy "
                "should be cheaper than buying alone."
            )
            % {"p": money(tiers[0][1]), "usual": money(sku.price_cents)}
        )
    largest = max((m for m, _p in tiers), default=1)
    max_size = problems.whole(draft.max_size or str(largest), _("Largest group"), 1, MAX_GROUP_SIZE)
    if max_size is not None and tiers and largest > max_size:
        problems.add(
            _(
                "Largest group: %(max)s members, but a tier needs %(m)s. Raise the largest "
                "group or lower that tier."
            )
            % {"max": max_size, "m": largest}
        )
    hours = problems.whole(draft.group_hours, _("Hours a group has to fill"), 1, MAX_GROUP_HOURS)
    leader = problems.money(draft.leader_price, _("Leader's price"), required=False)
    if leader is not None and tiers and leader > tiers[-1][1]:
        problems.add(
            _(
                "Leader's price: %(p)s is above every member's price; the leader's price "
                "is a reward and should be lower."
            )
            % {"p": money(leader)}
        )
    lot = draft.lot_code.strip() or None
    if lot is not None and draft.kind != "presale":
        lot = None  # only a pre-sale names the batch it will buy
    if problems or None in (sku, starts, ends, per_user, max_size, hours) or not tiers:
        return None
    assert sku is not None and starts and ends and per_user and max_size and hours
    return GroupValues(
        title,
        sku.id,
        starts,
        ends,
        tiers,
        max_size,
        hours * 3600,
        per_user,
        leader,
        cap,
        draft.kind == "presale",
        lot,
    )
