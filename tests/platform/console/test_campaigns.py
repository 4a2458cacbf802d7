"""Campaigns in the console: every kind through the form, refusals that explain themselves,
pause / resume / end early (audited, scoped), and a created campaign on the shop's home."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient, ConsoleWorld
from tests.platform.factories import make_user
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.catalog.models import Sku
from tuanbox.console.forms import local_input
from tuanbox.db.base import utcnow
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.domain import CampaignNotActiveError
from tuanbox.groupbuy.models import Campaign
from tuanbox.groupbuy.services import open_group
from tuanbox.settings import Settings

EN = {"Accept-Language": "en"}


def form(console: ConsoleClient, settings: Settings, **fields: Any) -> dict[str, Any]:
    tz = settings.station_timezone
    now = utcnow()
    values: dict[str, Any] = {
        "csrf": console.csrf,
        "kind": "tiered",
        "title": "Blueberries for the block",
        "sku_id": console.world.sku_id,
        "starts_at": local_input(now, tz),
        "ends_at": local_input(now + timedelta(days=2), tz),
        "tier_members": ["3", "5", "", "", ""],
        "tier_price": ["9.90", "8.50", "", "", ""],
        "max_size": "",
        "group_hours": "24",
        "per_user_limit": "2",
        "leader_price": "",
        "stock_cap": "",
    }
    values.update(fields)
    return values


def test_new_campaign_form_for_every_kind(console: ConsoleClient) -> None:
    for kind in ("fixed", "tiered", "presale", "flash"):
        page = console.get(f"/console/campaigns/new?kind={kind}", headers=EN)
        assert page.status_code == 200
        assert 'name="csrf"' in page.text and 'aria-current="page"' in page.text
    assert 'name="price"' in console.get("/console/campaigns/new?kind=flash").text
    assert 'name="lot_code"' in console.get("/console/campaigns/new?kind=presale").text


def test_create_tiered_campaign_shows_on_the_shop_home(
    console: ConsoleClient, settings: Settings, db_session: Session, client: TestClient
) -> None:
    made = console.post("/console/campaigns", data=form(console, settings, title="Berry block"))
    assert made.status_code == 303, made.text
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Berry block")).one()
    assert campaign.merchant_id == console.world.merchant_id
    assert campaign.kind == "tiered" and campaign.tiers == [[3, 990], [5, 850]]
    assert (campaign.min_size, campaign.max_size, campaign.per_user_limit) == (3, 5, 2)
    audit = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "campaign.create", AuditEntry.subject_id == campaign.id
        )
    ).one()
    assert audit.actor_id == console.world.staff.id
    listing = console.get("/console/campaigns", headers=EN)
    assert "Berry block" in listing.text and "Running" in listing.text
    assert "Berry block" in client.get("/", headers=EN).text


def test_fixed_presale_and_flash_sale(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    fixed = form(
        console, settings, kind="fixed", title="One price", tier_members=["4"], tier_price=["10"]
    )
    assert console.post("/console/campaigns", data=fixed).status_code == 303
    presale = form(
        console,
        settings,
        kind="presale",
        title="Spring lamb pre-sale",
        tier_members=["10", ""],
        tier_price=["15", ""],
    )
    assert console.post("/console/campaigns", data=presale).status_code == 303
    rows = {c.title: c for c in db_session.scalars(select(Campaign))}
    assert rows["One price"].kind == "fixed" and not rows["One price"].presale
    assert rows["Spring lamb pre-sale"].presale
    now = utcnow()
    tz = settings.station_timezone
    flash = {
        "csrf": console.csrf,
        "kind": "flash",
        "title": "Noon flash",
        "sku_id": console.world.sku_id,
        "starts_at": local_input(now + timedelta(hours=1), tz),
        "ends_at": local_input(now + timedelta(hours=2), tz),
        "price": "5",
        "stock_cap": "10",
        "per_user_limit": "1",
    }
    assert console.post("/console/campaigns", data=flash).status_code == 303
    sale = db_session.scalars(select(FlashSale).where(FlashSale.title == "Noon flash")).one()
    assert (sale.price_cents, sale.stock_cap, sale.merchant_id) == (
        500,
        10,
        console.world.merchant_id,
    )
    sku = db_session.get(Sku, console.world.sku_id)
    assert sku is not None
    db_session.refresh(sku)
    assert sku.stock_reserved == 10  # the sale's cap is set aside on the SKU
    listing = console.get("/console/campaigns", headers=EN)
    assert "Noon flash" in listing.text and "Scheduled" in listing.text
    assert f"/console/flash-sales/{sale.id}/cancel" in listing.text
    cancelled = console.post(
        f"/console/flash-sales/{sale.id}/cancel",
        data={"csrf": console.csrf, "reason": "supplier late"},
    )
    assert cancelled.status_code == 303
    db_session.refresh(sale)
    assert sale.ends_at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"tier_members": ["3", "5"], "tier_price": ["8", "9"]},
            "Tier 2: ¥9.00 for 5 members is dearer than tier 1 (¥8.00 for 3)",
        ),
        (
            {"tier_members": ["5", "3"], "tier_price": ["9", "8"]},
            "Tier 2: needs more members than tier 1",
        ),
        ({"tier_members": ["3"], "tier_price": ["9"]}, "needs at least two tiers"),
        ({"stock_cap": "51"}, "Stock cap: 51 units, but the SKU has only 50 free (50 on hand, 0"),
        ({"max_size": "4"}, "Largest group: 4 members, but a tier needs 5"),
        ({"tier_price": ["abc", "8"]}, "Tier 1 · price: enter an amount in yuan"),
        ({"title": ""}, "Title: shoppers see it on the home page"),
        ({"sku_id": "not-mine"}, "SKU: choose one of your SKUs."),
    ],
)
def test_refusals_explain_themselves(
    console: ConsoleClient, settings: Settings, fields: dict[str, Any], words: str
) -> None:
    refused = console.post("/console/campaigns", data=form(console, settings, **fields), headers=EN)
    assert refused.status_code == 422
    assert words in refused.text.replace("&#39;", "'").replace("&#34;", '"'), refused.text[-3000:]
    assert 'value="Blueberries for the block"' in refused.text or not fields.get("title", 1)


def test_window_refusals(console: ConsoleClient, settings: Settings) -> None:
    tz = settings.station_timezone
    now = utcnow()
    backwards = form(
        console,
        settings,
        starts_at=local_input(now + timedelta(days=2), tz),
        ends_at=local_input(now + timedelta(days=1), tz),
    )
    text = console.post("/console/campaigns", data=backwards, headers=EN).text
    assert "Ends: the campaign would end" in text and "before it starts" in text
    past = form(console, settings, starts_at=local_input(now - timedelta(days=1), tz))
    assert "has already passed" in console.post("/console/campaigns", data=past, headers=EN).text


def test_flash_sale_outside_the_campaign_window(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    assert (
        console.post("/console/campaigns", data=form(console, settings, title="Host")).status_code
        == 303
    )
    host = db_session.scalars(select(Campaign).where(Campaign.title == "Host")).one()
    tz = settings.station_timezone
    now = utcnow()
    sale = {
        "csrf": console.csrf,
        "kind": "flash",
        "title": "Late flash",
        "sku_id": console.world.sku_id,
        "starts_at": local_input(now + timedelta(days=3), tz),
        "ends_at": local_input(now + timedelta(days=3, hours=1), tz),
        "price": "5",
        "stock_cap": "60",
        "per_user_limit": "1",
        "within": host.id,
    }
    refused = console.post("/console/campaigns", data=sale, headers=EN)
    assert refused.status_code == 422
    text = refused.text.replace("&#34;", '"')
    assert 'falls outside the campaign "Host"' in text
    assert "Stock cap: 60 units, but the SKU has only 50 free" in text


def test_pause_resume_and_end_early(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    assert (
        console.post(
            "/console/campaigns", data=form(console, settings, title="Pausable")
        ).status_code
        == 303
    )
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Pausable")).one()
    shopper = make_user(db_session)
    no_token = console.post(f"/console/campaigns/{campaign.id}/pause")
    assert no_token.status_code == 403
    assert (
        console.post(
            f"/console/campaigns/{campaign.id}/pause", data={"csrf": console.csrf}
        ).status_code
        == 303
    )
    db_session.refresh(campaign)
    assert campaign.paused_at is not None
    with pytest.raises(CampaignNotActiveError):
        open_group(db_session, campaign_id=campaign.id, user_id=shopper.id, now=utcnow())
    assert "Paused" in console.get("/console/campaigns", headers=EN).text
    again = console.post(
        f"/console/campaigns/{campaign.id}/pause",
        data={"csrf": console.csrf},
        headers={**EN, "Accept": "text/html"},
    )
    assert again.status_code == 409 and "cannot be paused" in again.text
    assert (
        console.post(
            f"/console/campaigns/{campaign.id}/resume", data={"csrf": console.csrf}
        ).status_code
        == 303
    )
    db_session.refresh(campaign)
    assert campaign.paused_at is None
    open_group(db_session, campaign_id=campaign.id, user_id=shopper.id, now=utcnow())
    assert (
        console.post(
            f"/console/campaigns/{campaign.id}/end",
            data={"csrf": console.csrf, "reason": "sold elsewhere"},
        ).status_code
        == 303
    )
    db_session.refresh(campaign)
    assert campaign.ends_at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None)
    actions = [
        e.action
        for e in db_session.scalars(
            select(AuditEntry).where(AuditEntry.subject_id == campaign.id).order_by(AuditEntry.at)
        )
    ]
    assert actions[-3:] == ["campaign.pause", "campaign.resume", "campaign.end_early"]
    assert "Ended" in console.get("/console/campaigns", headers=EN).text


def test_other_merchant_and_shoppers_are_refused(
    console: ConsoleClient,
    settings: Settings,
    db_session: Session,
    console_as: Callable[[User], ConsoleClient],
    console_world: ConsoleWorld,
) -> None:
    assert (
        console.post(
            "/console/campaigns", data=form(console, settings, title="Mine only")
        ).status_code
        == 303
    )
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Mine only")).one()
    other = console_as(console_world.other_staff)
    assert "Mine only" not in other.get("/console/campaigns").text
    for action in ("pause", "resume", "end"):
        response = other.post(
            f"/console/campaigns/{campaign.id}/{action}", data={"csrf": other.csrf}
        )
        assert response.status_code == 404, action
    theirs = form(other, settings, sku_id=console_world.sku_id)
    refused = other.post("/console/campaigns", data=theirs, headers=EN)
    assert refused.status_code == 422 and "SKU: choose one of your SKUs." in refused.text
    shopper = console_as(console_world.shopper)
    assert shopper.get("/console/campaigns").status_code == 403
    assert shopper.post("/console/campaigns", data=form(shopper, settings)).status_code == 403


def test_state_refusals_are_worded(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    assert (
        console.post("/console/campaigns", data=form(console, settings, title="Short")).status_code
        == 303
    )
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Short")).one()
    url = f"/console/campaigns/{campaign.id}"
    assert console.post(f"{url}/end", data={"csrf": console.csrf}).status_code == 303
    for action, words in (
        ("pause", "Only a scheduled or running campaign can be paused"),
        ("resume", "Only a paused campaign can be resumed"),
        ("end", "This campaign has already ended."),
    ):
        refused = console.post(f"{url}/{action}", data={"csrf": console.csrf}, headers=EN)
        assert refused.status_code == 409 and words in refused.text, action
    zh = console.post(f"{url}/pause", data={"csrf": console.csrf})
    assert zh.status_code == 409 and "只有未开始或进行中的活动才能暂停" in zh.text
    now = utcnow()
    tz = settings.station_timezone
    soon = {
        "csrf": console.csrf,
        "kind": "flash",
        "title": "Starting soon",
        "sku_id": console.world.sku_id,
        "starts_at": local_input(now, tz),
        "ends_at": local_input(now + timedelta(hours=1), tz),
        "price": "5",
        "stock_cap": "3",
        "per_user_limit": "1",
    }
    assert console.post("/console/campaigns", data=soon).status_code == 303
    sale = db_session.scalars(select(FlashSale).where(FlashSale.title == "Starting soon")).one()
    late = console.post(
        f"/console/flash-sales/{sale.id}/cancel", data={"csrf": console.csrf}, headers=EN
    )
    assert late.status_code == 409 and "only until 2 minutes before it starts" in late.text


def test_campaign_offered_at_chosen_stations(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    from tuanbox.lockers.services import create_station

    station = create_station(
        db_session, id="st-console-1", name="Lobby C", address="3 C Road", lat=31.2, lon=121.4
    )
    page = console.get("/console/campaigns/new?kind=tiered")
    assert "Lobby C" in page.text
    bad = form(console, settings, title="Somewhere", station_ids=["st-nowhere"])
    refused = console.post("/console/campaigns", data=bad, headers=EN)
    assert refused.status_code == 422 and "Stations: choose stations from the list" in refused.text
    good = form(console, settings, title="Lobby C only", station_ids=[station.id])
    assert console.post("/console/campaigns", data=good).status_code == 303
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Lobby C only")).one()
    assert campaign.station_ids == [station.id]


def test_an_overlong_id_is_refused_not_cut_down_to_a_real_one(
    console: ConsoleClient, settings: Settings, db_session: Session
) -> None:
    form_data = form(console, settings, title="Long id")
    assert console.post("/console/campaigns", data=form_data).status_code == 303
    campaign = db_session.scalars(select(Campaign).where(Campaign.title == "Long id")).one()
    for action in ("pause", "end"):
        refused = console.post(
            f"/console/campaigns/{campaign.id}XYZ/{action}", data={"csrf": console.csrf}
        )
        assert refused.status_code == 422, (action, refused.status_code)
    db_session.refresh(campaign)
    assert campaign.paused_at is None
