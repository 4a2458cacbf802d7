"""Catalog API: who may create what, validation, lots, images with cache headers, pages."""

from __future__ import annotations

import struct
import zlib

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_merchant, make_product, make_user
from tuanbox.settings import Settings

GTIN = "09506000134352"


def _png(seed: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = zlib.compress(bytes([0, seed % 256, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")


def test_merchant_product_sku_lot_flow_and_permissions(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = make_user(db_session, "admin")
    shopper = make_user(db_session)
    body = {"name": "绿源农场", "licence_number": "91310000MA1FL0XX1X"}
    assert client.post("/api/v1/merchants", json=body).status_code == 401
    assert (
        client.post(
            "/api/v1/merchants", json=body, headers=auth_header(settings, shopper)
        ).status_code
        == 403
    )
    r = client.post("/api/v1/merchants", json=body, headers=auth_header(settings, admin))
    assert r.status_code == 201, r.text
    merchant = r.json()
    assert merchant["verified"] is False
    dup = client.post("/api/v1/merchants", json=body, headers=auth_header(settings, admin))
    assert dup.status_code == 409

    v = client.put(
        f"/api/v1/merchants/{merchant['id']}/verification",
        json={"verified": True, "reason": "licence checked"},
        headers=auth_header(settings, admin),
    )
    assert v.status_code == 200 and v.json()["verified"] is True
    public = client.get(f"/api/v1/merchants/{merchant['id']}").json()
    assert public["licence_number"] == body["licence_number"] and public["verified"] is True

    staff = make_user(db_session, "merchant_staff", merchant["id"])
    other_staff = make_user(db_session, "merchant_staff", make_merchant(db_session).id)
    product = {"name": "有机草莓 500g", "zone": "chilled", "size_class": "S", "gtin": GTIN}
    url = f"/api/v1/merchants/{merchant['id']}/products"
    assert (
        client.post(url, json=product, headers=auth_header(settings, other_staff)).status_code
        == 403
    )
    assert client.post(url, json=product, headers=auth_header(settings, shopper)).status_code == 403
    r = client.post(url, json=product, headers=auth_header(settings, staff))
    assert r.status_code == 201, r.text
    product_id = r.json()["id"]

    bad = client.post(
        f"/api/v1/products/{product_id}/skus",
        json={"name": "", "price_cents": -1},
        headers=auth_header(settings, staff),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "price_cents"}
    sku = client.post(
        f"/api/v1/products/{product_id}/skus",
        json={"name": "500g", "price_cents": 2990, "stock_on_hand": 10},
        headers=auth_header(settings, staff),
    )
    assert sku.status_code == 201
    restocked = client.post(
        f"/api/v1/skus/{sku.json()['id']}/restock",
        json={"add": 5},
        headers=auth_header(settings, staff),
    )
    assert restocked.json()["stock_on_hand"] == 15
    assert (
        client.post(
            f"/api/v1/skus/{sku.json()['id']}/restock",
            json={"add": 5},
            headers=auth_header(settings, other_staff),
        ).status_code
        == 403
    )

    lot = {"lot_code": "B2026-11-28", "farm": "Nanhui", "harvested_at": "2026-11-28T06:00:00Z"}
    r = client.post(
        f"/api/v1/products/{product_id}/lots", json=lot, headers=auth_header(settings, staff)
    )
    assert r.status_code == 201, r.text
    assert r.json()["gtin"] == GTIN and r.json()["trace_path"] == f"/01/{GTIN}/10/B2026-11-28"
    again = client.post(
        f"/api/v1/products/{product_id}/lots", json=lot, headers=auth_header(settings, staff)
    )
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE_LOT"
    assert client.get(f"/api/v1/lots/{GTIN}/B2026-11-28").json()["farm"] == "Nanhui"
    assert client.get(f"/api/v1/lots/{GTIN}/nope").status_code == 404

    page = client.get(f"/api/v1/products/{product_id}").json()
    assert page["merchant"]["verified"] is True
    assert [s["price_cents"] for s in page["skus"]] == [2990]
    assert [lot["lot_code"] for lot in page["lots"]] == ["B2026-11-28"]
    listing = client.get("/api/v1/products", params={"merchant_id": merchant["id"]}).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == product_id

    actions = (
        db_session.execute(sa.text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    )
    for expected in (
        "merchant.create",
        "merchant.verify",
        "product.create",
        "sku.create",
        "sku.restock",
        "lot.create",
    ):
        assert expected in actions


def test_wrong_gtin_check_digit_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    r = client.post(
        f"/api/v1/merchants/{merchant.id}/products",
        json={"name": "x", "gtin": "09506000134353"},
        headers=auth_header(settings, staff),
    )
    assert r.status_code == 422 and r.json()["field"] == "gtin"


def test_images_are_content_addressed_and_cacheable(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    product = make_product(db_session)
    staff = make_user(db_session, "merchant_staff", product.merchant_id)
    url = f"/api/v1/products/{product.id}/images"
    data = _png(7)
    r = client.post(
        url, files={"file": ("a.png", data, "image/png")}, headers=auth_header(settings, staff)
    )
    assert r.status_code == 201, r.text
    image = r.json()
    assert image["content_type"] == "image/png" and image["url"].startswith("/media/")

    got = client.get(image["url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = got.headers["etag"]
    assert client.get(image["url"], headers={"If-None-Match": etag}).status_code == 304

    # Same bytes, same name; a lying content type does not get a non-image in.
    same = client.post(
        url, files={"file": ("b.png", data, "image/png")}, headers=auth_header(settings, staff)
    )
    assert same.json()["url"] == image["url"]
    evil = client.post(
        url,
        files={"file": ("x.png", b"<script>alert(1)</script>", "image/png")},
        headers=auth_header(settings, staff),
    )
    assert evil.status_code == 422 and evil.json()["code"] == "IMAGE_REJECTED"
    assert (
        client.post(
            url,
            files={"file": ("a.png", data, "image/png")},
            headers=auth_header(settings, make_user(db_session)),
        ).status_code
        == 403
    )
    for name in (
        "../../etc/passwd",
        "abc.png",
        image["url"].rsplit("/", 1)[1].replace(".png", ".exe"),
    ):
        assert client.get(f"/media/{name}").status_code == 404
    assert len(client.get(f"/api/v1/products/{product.id}").json()["images"]) == 2
