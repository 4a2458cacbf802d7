"""Catalog use cases: merchants, products, SKUs, lots and images (stock lives in `stock`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.errors import DuplicateLotError
from tuanbox.catalog.models import Lot, Merchant, Product, ProductImage, SizeClass, Sku, Zone
from tuanbox.catalog.stock import (
    commit_stock,
    release_stock,
    reserve_many,
    reserve_stock,
    restock,
)
from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

__all__ = [
    "add_lot",
    "add_sku",
    "commit_stock",
    "create_merchant",
    "create_product",
    "ensure_can_manage",
    "get_lot",
    "get_product",
    "release_stock",
    "reserve_many",
    "reserve_stock",
    "restock",
    "set_verified",
]


def gtin_valid(gtin: str) -> bool:
    """GS1 check digit over GTIN-8/12/13/14."""
    if not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        return False
    digits = [int(c) for c in gtin]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def ensure_can_manage(
    principal_role: str, principal_merchant: str | None, merchant_id: str
) -> None:
    """Merchant staff manage only their own merchant; admins manage any."""
    if principal_role == "admin":
        return
    if principal_role == "merchant_staff" and principal_merchant == merchant_id:
        return
    raise PermissionDeniedError("only this merchant's staff may change its catalog")


def create_merchant(
    session: Session, actor: Actor, *, name: str, licence_number: str, verified: bool = False
) -> Merchant:
    if session.scalars(
        select(Merchant.id).where(Merchant.licence_number == licence_number)
    ).first():
        raise ConflictError("a merchant with this licence number exists", field="licence_number")
    merchant = Merchant(name=name, licence_number=licence_number, verified=verified)
    try:
        with session.begin_nested():  # a concurrent twin may pass the check above
            session.add(merchant)
    except IntegrityError as exc:
        raise ConflictError(
            "a merchant with this licence number exists", field="licence_number"
        ) from exc
    record(session, actor, "merchant.create", "merchant", merchant.id, details={"name": name})
    return merchant


def set_verified(
    session: Session, actor: Actor, merchant_id: str, verified: bool, reason: str
) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFoundError("merchant not found")
    before = {"verified": merchant.verified}
    merchant.verified = verified
    record(
        session,
        actor,
        "merchant.verify" if verified else "merchant.unverify",
        "merchant",
        merchant_id,
        reason=reason,
        before=before,
        after={"verified": verified},
    )
    return merchant


def create_product(
    session: Session,
    actor: Actor,
    merchant_id: str,
    *,
    name: str,
    description: str = "",
    size_class: SizeClass = SizeClass.M,
    zone: Zone = Zone.AMBIENT,
    returnable: bool = True,
    gtin: str | None = None,
) -> Product:
    if session.get(Merchant, merchant_id) is None:
        raise NotFoundError("merchant not found")
    if gtin is not None and not gtin_valid(gtin):
        raise InvalidInputError("GTIN check digit is wrong", field="gtin")
    product = Product(
        merchant_id=merchant_id,
        name=name,
        description=description,
        size_class=size_class,
        zone=zone,
        returnable=returnable,
        gtin=gtin,
    )
    session.add(product)
    session.flush()
    record(session, actor, "product.create", "product", product.id, details={"name": name})
    return product


def get_product(session: Session, product_id: str) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFoundError("product not found")
    return product


def add_sku(
    session: Session,
    actor: Actor,
    product_id: str,
    *,
    name: str,
    price_cents: int,
    stock_on_hand: int = 0,
) -> Sku:
    get_product(session, product_id)
    sku = Sku(
        product_id=product_id, name=name, price_cents=price_cents, stock_on_hand=stock_on_hand
    )
    session.add(sku)
    session.flush()
    record(
        session,
        actor,
        "sku.create",
        "sku",
        sku.id,
        details={"product_id": product_id, "name": name},
        after={"price_cents": price_cents, "stock_on_hand": stock_on_hand},
    )
    return sku


def add_lot(
    session: Session,
    actor: Actor,
    product_id: str,
    *,
    lot_code: str,
    gtin: str | None = None,
    harvested_at: datetime | None = None,
    best_before: datetime | None = None,
    farm: str | None = None,
    origin: str | None = None,
    quantity: int | None = None,
) -> Lot:
    product = get_product(session, product_id)
    gtin = gtin or product.gtin
    if gtin is None or not gtin_valid(gtin):
        raise InvalidInputError(
            "a lot needs a valid GTIN (on the product or the lot)", field="gtin"
        )
    lot = Lot(
        product_id=product_id,
        gtin=gtin,
        lot_code=lot_code,
        harvested_at=harvested_at,
        best_before=best_before,
        farm=farm,
        origin=origin,
        quantity=quantity,
    )
    try:
        with session.begin_nested():
            session.add(lot)
    except IntegrityError as exc:
        raise DuplicateLotError(
            "this GTIN + lot code exists", gtin=gtin, lot_code=lot_code
        ) from exc
    record(session, actor, "lot.create", "lot", lot.id, details={"gtin": gtin, "lot": lot_code})
    return lot


def get_lot(session: Session, gtin: str, lot_code: str) -> Lot:
    """The lot behind a GS1 Digital Link `/01/{gtin}/10/{lot}` (traceability resolves here)."""
    lot = session.scalars(
        select(Lot).where(Lot.gtin == gtin, Lot.lot_code == lot_code)
    ).one_or_none()
    if lot is None:
        raise NotFoundError("no such lot")
    return lot


def images_of(session: Session, product_id: str) -> list[ProductImage]:
    return list(
        session.scalars(
            select(ProductImage)
            .where(ProductImage.product_id == product_id)
            .order_by(ProductImage.position, ProductImage.created_at)
        )
    )
