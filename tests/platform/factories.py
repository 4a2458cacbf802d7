"""Test data for platform tests: users and tokens, merchants, products, SKUs, orders.

Every engineer's tests use these; add factories for your own models here or beside them.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.models import Role, User
from tuanbox.accounts.services import hash_password
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.crypto import PiiCipher
from tuanbox.orders.domain import OrderKind
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order
from tuanbox.settings import Settings

_seq = itertools.count(1)
STAFF_PASSWORD = "correct horse battery staple"


@functools.cache
def _staff_hash() -> str:
    # argon2 is deliberately slow; one hash serves every staff user of the run.
    return hash_password(STAFF_PASSWORD)


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def make_user(
    session: Session,
    role: str = Role.SHOPPER,
    merchant_id: str | None = None,
    *,
    phone: str | None = None,
    settings: Settings | None = None,
    login: str | None = None,
) -> User:
    """A user; staff get a login and the password STAFF_PASSWORD; phones need `settings`."""
    user = User(role=role, merchant_id=merchant_id, display_name=f"{role} {next(_seq)}")
    if role != Role.SHOPPER:
        user.login = login or unique(f"{role}-")
        user.password_hash = _staff_hash()
    if phone is not None:
        assert settings is not None, "encrypting a phone needs settings"
        cipher = PiiCipher(settings)
        user.phone_enc = cipher.encrypt(phone, context="phone")
        user.phone_hash = cipher.blind_index(phone)
    session.add(user)
    session.flush()
    return user


def principal_of(user: User) -> Principal:
    return Principal(id=user.id, role=user.role, merchant_id=user.merchant_id)


def auth_header(settings: Settings, user: User | Principal) -> dict[str, str]:
    principal = user if isinstance(user, Principal) else principal_of(user)
    return {"Authorization": f"Bearer {issue_access_token(settings, principal)}"}


def make_merchant(session: Session, *, verified: bool = True, name: str | None = None) -> Merchant:
    merchant = Merchant(
        name=name or f"Farm {next(_seq)}", licence_number=unique("LIC-"), verified=verified
    )
    session.add(merchant)
    session.flush()
    return merchant


def make_product(
    session: Session,
    merchant: Merchant | None = None,
    *,
    returnable: bool = True,
    zone: str = "chilled",
    size_class: str = "M",
    gtin: str | None = "09506000134352",
) -> Product:
    merchant = merchant or make_merchant(session)
    product = Product(
        merchant_id=merchant.id,
        name=f"Peaches {next(_seq)}",
        description="Juicy",
        size_class=size_class,
        zone=zone,
        returnable=returnable,
        gtin=gtin,
    )
    session.add(product)
    session.flush()
    return product


def make_sku(
    session: Session,
    product: Product | None = None,
    *,
    price_cents: int = 1990,
    stock: int = 10,
    reserved: int = 0,
) -> Sku:
    product = product or make_product(session)
    sku = Sku(
        product_id=product.id,
        name=f"1 kg box {next(_seq)}",
        price_cents=price_cents,
        stock_on_hand=stock,
        stock_reserved=reserved,
    )
    session.add(sku)
    session.flush()
    return sku


def make_order(
    session: Session,
    *,
    user: User | None = None,
    sku: Sku | None = None,
    qty: int = 1,
    kind: str = OrderKind.REGULAR,
    reserve: bool = True,
) -> Order:
    """A pending-payment order at the SKU's price (stock reserved unless told otherwise)."""
    user = user or make_user(session)
    sku = sku or make_sku(session)
    return create_order(
        session,
        user_id=user.id,
        sku_id=sku.id,
        qty=qty,
        unit_price_cents=sku.price_cents,
        kind=kind,
        reserve=reserve,
    )


@pytest.fixture(name="settings")
def isolated_settings(database_url: str, tmp_path: Path) -> Settings:
    """Test settings with their own rate-limit namespace and media dir (import in conftest)."""
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
    )
