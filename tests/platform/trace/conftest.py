"""Trace platform tests: our own anvil with a deployed Anchor, and a merchant with a lot."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import make_merchant, make_product, make_user
from tests.traceability import factories as tf
from tests.traceability.conftest import Anvil, anvil, settings_for  # noqa: F401
from traceability.chain import ChainClient
from traceability.settings import TraceSettings
from tuanbox.accounts.models import Role, User
from tuanbox.catalog.models import Lot, Merchant, Product


@pytest.fixture(scope="session")
def anchor_contract(anvil: Anvil) -> str:  # noqa: F811
    address = ChainClient(settings_for(anvil)).deploy().contract_address
    assert address is not None
    return address


@pytest.fixture
def trace_settings(anvil: Anvil, anchor_contract: str) -> TraceSettings:  # noqa: F811
    return settings_for(
        anvil, contract_address=anchor_contract, window_seconds=600, window_max_events=10_000
    )


@pytest.fixture
def trace_app(app: FastAPI, trace_settings: TraceSettings) -> FastAPI:
    from tuanbox.trace.views import router

    app.state.trace_settings = trace_settings
    app.include_router(router)  # until the lead lists tuanbox.trace.views in FEATURE_ROUTERS
    return app


@dataclass
class Shop:
    merchant: Merchant
    staff: User
    lot: Lot
    product: Product


@pytest.fixture
def shop(db_session: Session) -> Shop:
    merchant = make_merchant(db_session, name="Fenghua Honey Peach Cooperative")
    product = make_product(db_session, merchant, gtin=tf.GTIN)
    lot = Lot(product_id=product.id, gtin=tf.GTIN, lot_code=tf.LOT, farm="Fenghua")
    db_session.add(lot)
    db_session.flush()
    staff = make_user(db_session, Role.MERCHANT_STAFF, merchant.id)
    return Shop(merchant, staff, lot, product)


@pytest.fixture
def sessions(db_session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection: their commits are savepoints, rolled back at the end."""
    return sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
