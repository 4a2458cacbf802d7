"""Products, SKUs, restock, photos and lots in the console: scoped to the staff's merchant,
worded refusals, audited stock changes, the product QR and its label sheet."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient, ConsoleWorld
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Lot, Product, ProductImage, Sku

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63f8cfc0f01f0005000201a5f6c9b80000000049454e44ae426082"
)
GTIN = "09506000134352"
EN = {"Accept-Language": "en"}


def test_product_list_shows_only_this_merchants_products(
    console: ConsoleClient, db_session: Session
) -> None:
    world = console.world
    mine = db_session.get(Product, world.product_id)
    theirs = db_session.get(Product, world.other_product_id)
    assert mine is not None and theirs is not None
    page = console.get("/console/products", headers=EN)
    assert page.status_code == 200
    assert mine.name in page.text and theirs.name not in page.text


def test_create_product_and_refusals_in_words(console: ConsoleClient, db_session: Session) -> None:
    bad = console.post(
        "/console/products",
        data={
            "csrf": console.csrf,
            "name": " ",
            "zone": "warm",
            "size_class": "XL",
            "gtin": "12345678",
        },
        headers=EN,
    )
    assert bad.status_code == 422
    for words in (
        "please give the product a name",
        "choose ambient, chilled or frozen",
        "choose S, M or L",
        "12345678 is not a valid GTIN",
    ):
        assert words in bad.text
    made = console.post(
        "/console/products",
        data={
            "csrf": console.csrf,
            "name": "Strawberries 500 g",
            "zone": "chilled",
            "size_class": "S",
            "gtin": GTIN,
            "returnable": "0",
        },
    )
    assert made.status_code == 303
    product = db_session.scalars(select(Product).where(Product.name == "Strawberries 500 g")).one()
    assert product.merchant_id == console.world.merchant_id and not product.returnable
    assert made.headers["location"] == f"/console/products/{product.id}"


def test_another_merchants_product_is_not_found(console: ConsoleClient) -> None:
    world = console.world
    other = world.other_product_id
    assert console.get(f"/console/products/{other}").status_code == 404
    data = {"csrf": console.csrf, "name": "x", "price": "1", "stock": "1"}
    assert console.post(f"/console/products/{other}/skus", data=data).status_code == 404
    restock = {"csrf": console.csrf, "add": "5"}
    assert (
        console.post(f"/console/skus/{world.other_sku_id}/restock", data=restock).status_code == 404
    )
    assert (
        console.post(
            f"/console/products/{other}/photos",
            data={"csrf": console.csrf},
            files={"photo": ("p.png", PNG, "image/png")},
        ).status_code
        == 404
    )
    assert console.get("/console/products/" + "x" * 500).status_code == 404


def test_add_sku_and_restock_are_audited(console: ConsoleClient, db_session: Session) -> None:
    world = console.world
    bad = console.post(
        f"/console/products/{world.product_id}/skus",
        data={"csrf": console.csrf, "name": "Box", "price": "12.345", "stock": "-1"},
        headers=EN,
    )
    assert bad.status_code == 422
    assert (
        "Price: enter an amount in yuan" in bad.text and "Stock on hand: enter a whole" in bad.text
    )
    ok = console.post(
        f"/console/products/{world.product_id}/skus",
        data={"csrf": console.csrf, "name": "Family box", "price": "¥35.5", "stock": "20"},
    )
    assert ok.status_code == 303
    sku = db_session.scalars(select(Sku).where(Sku.name == "Family box")).one()
    assert (sku.price_cents, sku.stock_on_hand) == (3550, 20)

    refused = console.post(
        f"/console/skus/{sku.id}/restock", data={"csrf": console.csrf, "add": "0"}, headers=EN
    )
    assert refused.status_code == 422 and "Units to add: must be from 1 to" in refused.text
    done = console.post(
        f"/console/skus/{sku.id}/restock",
        data={"csrf": console.csrf, "add": "15", "note": "morning delivery"},
    )
    assert done.status_code == 303
    db_session.refresh(sku)
    assert sku.stock_on_hand == 35
    entry = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "sku.restock", AuditEntry.subject_id == sku.id
        )
    ).one()
    assert entry.actor_id == world.staff.id and entry.reason == "morning delivery"
    assert (entry.before, entry.after) == ({"stock_on_hand": 20}, {"stock_on_hand": 35})
    page = console.get(f"/console/products/{world.product_id}?done=restock", headers=EN)
    assert "Stock was added." in page.text


def test_photo_upload_checks_type_and_size(
    console: ConsoleClient, db_session: Session, client: TestClient
) -> None:
    world = console.world
    url = f"/console/products/{world.product_id}/photos"
    cases = [
        (("x.png", b"", "image/png"), "choose a picture file first"),
        (("x.png", b"<svg onload=alert(1)>", "image/png"), "not a PNG, JPEG, GIF or WebP"),
        (("x.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "image/jpeg"), "larger than 5 MB"),
    ]
    for upload, words in cases:
        refused = console.post(
            url, data={"csrf": console.csrf}, files={"photo": upload}, headers=EN
        )
        assert refused.status_code == 422, words
        assert words in refused.text
    no_token = console.post(url, files={"photo": ("p.png", PNG, "image/png")})
    assert no_token.status_code == 403
    ok = console.post(
        url, data={"csrf": console.csrf}, files={"photo": ("p.png", PNG, "image/png")}
    )
    assert ok.status_code == 303
    image = db_session.scalars(
        select(ProductImage).where(ProductImage.product_id == world.product_id)
    ).one()
    served = client.get(f"/media/{image.filename}")
    assert served.status_code == 200 and served.content == PNG
    assert f"/media/{image.filename}" in console.get(f"/console/products/{world.product_id}").text


def test_lot_page_qr_and_label_sheet(
    console: ConsoleClient, db_session: Session, console_as: Callable[[User], ConsoleClient]
) -> None:
    world = console.world
    product = db_session.get(Product, world.product_id)
    assert product is not None and product.gtin is not None
    bad = console.post(
        f"/console/products/{world.product_id}/lots",
        data={
            "csrf": console.csrf,
            "lot_code": "B 1/2",
            "harvested_at": "2026-12-05T06:00",
            "best_before": "2026-12-01T00:00",
        },
        headers=EN,
    )
    assert bad.status_code == 422
    assert "Lot code: 1 to 20 letters" in bad.text and "must be after the harvest" in bad.text
    ok = console.post(
        f"/console/products/{world.product_id}/lots",
        data={
            "csrf": console.csrf,
            "lot_code": "B2026-12-05",
            "harvested_at": "2026-12-05T06:00",
            "best_before": "2026-12-12T00:00",
            "farm": "Green Valley",
            "quantity": "400",
        },
    )
    assert ok.status_code == 303
    lot = db_session.scalars(select(Lot).where(Lot.lot_code == "B2026-12-05")).one()
    twice = console.post(
        f"/console/products/{world.product_id}/lots",
        data={"csrf": console.csrf, "lot_code": "B2026-12-05"},
        headers=EN,
    )
    assert twice.status_code == 422 and "already recorded" in twice.text

    base = f"/console/lots/{lot.gtin}/{lot.lot_code}"
    page = console.get(base, headers=EN)
    assert page.status_code == 200
    assert (
        "Green Valley" in page.text and "<svg" in page.text and "No provenance events" in page.text
    )
    qr = console.get(base + "/qr.png")
    assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
    pdf = console.get(base + "/labels.pdf?count=25")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.content.count(b"/Type /Page\n") == 2  # 25 labels: two sheets of 21
    assert console.get(base + "/labels.pdf?count=0").status_code == 422
    assert console.get(base + "/labels.pdf?count=999999").status_code == 422

    other = console_as(world.other_staff)
    for path in (base, base + "/qr.png", base + "/labels.pdf"):
        assert other.get(path).status_code == 404, path


def test_lot_page_lists_provenance_events(console: ConsoleClient, db_session: Session) -> None:
    from tuanbox.catalog.services import add_lot
    from tuanbox.trace.services import record_event

    world = console.world
    lot = add_lot(db_session, _actor(world.staff), world.product_id, lot_code="L7")
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-12-01T06:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "quantityList": [
            {"epcClass": f"https://id.gs1.org/01/{GTIN}/10/L7", "quantity": 10, "uom": "KGM"}
        ],
        "ilmd": {"tb:farmName": "Plot 4"},
    }
    record_event(db_session, event, merchant_id=world.merchant_id)
    db_session.flush()
    page = console.get(f"/console/lots/{lot.gtin}/L7", headers=EN)
    assert page.status_code == 200
    assert "ObjectEvent" in page.text and "Plot 4" in page.text


def _actor(user: User) -> Actor:
    return Actor(id=user.id, role=user.role)


def test_shopper_is_refused(
    console_as: Callable[[User], ConsoleClient], console_world: ConsoleWorld
) -> None:
    shopper = console_as(console_world.shopper)
    assert shopper.get("/console/products").status_code == 403
    assert shopper.get(f"/console/products/{console_world.product_id}").status_code == 403
    refused = shopper.post("/console/products", data={"csrf": shopper.csrf, "name": "x"})
    assert refused.status_code == 403


def test_record_provenance_steps_on_the_lot_page(
    console: ConsoleClient, db_session: Session, console_as: Callable[[User], ConsoleClient]
) -> None:
    from tuanbox.catalog.services import add_lot
    from tuanbox.trace.demo import FARM_GLN, HUB_GLN
    from tuanbox.trace.models import TraceEvent

    world = console.world
    lot = add_lot(db_session, _actor(world.staff), world.product_id, lot_code="S1")
    url = f"/console/lots/{lot.gtin}/S1/events"
    bad = console.post(
        url,
        data={"csrf": console.csrf, "step": "shipping", "at": "", "place": "1234567890123"},
        headers=EN,
    )
    assert bad.status_code == 422
    for words in (
        "When: choose a date and time",
        "Place (GLN): 1234567890123 is not a GLN",
        "Destination or origin (GLN): please enter the 13-digit GLN",
    ):
        assert words in bad.text.replace("&#39;", "'"), words
    harvest = {
        "csrf": console.csrf,
        "step": "commissioning",
        "at": "2026-12-01T06:00",
        "place": FARM_GLN,
        "quantity": "120",
        "uom": "KGM",
    }
    assert console.post(url, data=harvest).status_code == 303
    ship = {
        "csrf": console.csrf,
        "step": "shipping",
        "at": "2026-12-01T09:00",
        "place": FARM_GLN,
        "other": HUB_GLN,
    }
    assert console.post(url, data=ship).status_code == 303
    events = db_session.scalars(
        select(TraceEvent).where(TraceEvent.merchant_id == world.merchant_id)
    ).all()
    assert len(events) == 2
    assert sorted((e.biz_step or "").rsplit("-", 1)[-1] for e in events) == [
        "commissioning",
        "shipping",
    ]
    page = console.get(f"/console/lots/{lot.gtin}/S1", headers=EN)
    product = db_session.get(Product, world.product_id)
    assert product is not None
    assert page.text.count("ObjectEvent") == 2 and f"Farm: {product.name}" in page.text
    other = console_as(world.other_staff)
    assert other.post(url, data={**ship, "csrf": other.csrf}).status_code == 404


def test_edit_sku_price_and_take_it_off_sale(
    console: ConsoleClient, db_session: Session, console_as: Callable[[User], ConsoleClient]
) -> None:
    world = console.world
    sku = db_session.get(Sku, world.sku_id)
    assert sku is not None
    url = f"/console/skus/{sku.id}"
    bad = console.post(url, data={"csrf": console.csrf, "price": "free"}, headers=EN)
    assert bad.status_code == 422 and "Price: enter an amount in yuan" in bad.text
    before = sku.price_cents
    ok = console.post(url, data={"csrf": console.csrf, "price": "25.80", "active": "0"})
    assert ok.status_code == 303
    db_session.refresh(sku)
    assert (sku.price_cents, sku.active) == (2580, False)
    entry = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "sku.update", AuditEntry.subject_id == sku.id)
    ).one()
    assert entry.before == {"price_cents": before, "active": True}
    assert entry.after == {"price_cents": 2580, "active": False}
    page = console.get(f"/console/products/{world.product_id}?done=sku_saved", headers=EN)
    assert "The SKU was saved." in page.text and "off sale" in page.text
    other = console_as(world.other_staff)
    assert other.post(url, data={"csrf": other.csrf, "price": "1"}).status_code == 404
