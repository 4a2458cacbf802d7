"""Every commerce endpoint declares who may call it: no token is 401, a wrong role is 403."""

from __future__ import annotations

import importlib
import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_user
from tuanbox.accounts.models import MERCHANT_ROLES
from tuanbox.settings import Settings

MODULES = {
    "tuanbox.accounts.views",
    "tuanbox.catalog.views",
    "tuanbox.orders.views",
    "tuanbox.payments.views",
    "tuanbox.payments.simpay_pages",
    "tuanbox.returns.views",
}
# Deliberately public: signing in, the shopper-facing catalog, signed webhooks, the
# simulated gateway's own pages (which stand for a third-party site).
PUBLIC = {
    ("POST", "/api/v1/auth/otp"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/merchants/{merchant_id}"),
    ("GET", "/api/v1/lots/{gtin}/{lot_code}"),
    ("GET", "/media/{filename}"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/{product_id}"),
    ("POST", "/api/v1/payments/{provider}/webhook"),
    ("GET", "/pay/sim/{intent_id}"),
    ("POST", "/pay/sim/{intent_id}/confirm"),
}
# Endpoint -> roles that get past the role check (others must get 403).
ROLES = {
    ("POST", "/api/v1/merchants"): {"admin"},
    ("PUT", "/api/v1/merchants/{merchant_id}/verification"): {"admin"},
    ("POST", "/api/v1/users"): {"admin"},
    ("POST", "/api/v1/merchants/{merchant_id}/products"): {"merchant_staff", "admin"},
    ("POST", "/api/v1/products/{product_id}/skus"): {"merchant_staff", "admin"},
    ("POST", "/api/v1/skus/{sku_id}/restock"): {"merchant_staff", "admin"},
    ("POST", "/api/v1/products/{product_id}/lots"): {"merchant_staff", "admin"},
    ("POST", "/api/v1/products/{product_id}/images"): {"merchant_staff", "admin"},
    ("POST", "/api/v1/orders"): {"shopper"},
    ("POST", "/api/v1/orders/{order_id}/transitions"): {"ops", "admin"},
    ("POST", "/api/v1/orders/{order_id}/payments"): {"shopper"},
    ("POST", "/api/v1/orders/{order_id}/refunds"): {"ops", "admin"},
    ("GET", "/api/v1/refunds"): {"ops", "admin"},
    ("POST", "/api/v1/refunds/{refund_id}/retry"): {"ops", "admin"},
    ("POST", "/api/v1/refunds/{refund_id}/resolve"): {"ops", "admin"},
    ("GET", "/api/v1/merchants/{merchant_id}/orders"): {"merchant_staff", "ops", "admin"},
    ("POST", "/api/v1/orders/{order_id}/return"): {"shopper"},
    ("POST", "/api/v1/returns/{return_id}/dropped-off"): {"ops", "admin"},
    ("POST", "/api/v1/returns/{return_id}/withdraw"): {"shopper"},
}
# A courier belongs to a merchant like its staff, yet no commerce endpoint admits one.
ALL_ROLES = ("shopper", "merchant_staff", "courier", "ops", "admin")


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for name in sorted(MODULES):
        module = importlib.import_module(name)
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods))
    return found


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "does-not-exist", path)


def test_every_route_is_classified(app: FastAPI) -> None:
    routes = set(_routes(app))
    assert routes, "commerce routers are mounted"
    assert routes >= PUBLIC and set(ROLES) <= routes


def test_no_token_is_401_except_public(client: TestClient, app: FastAPI) -> None:
    for method, path in _routes(app):
        if (method, path) in PUBLIC:
            continue
        r = client.request(method, _fill(path), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(("method", "path"), sorted(ROLES))
def test_wrong_roles_are_403(
    client: TestClient, db_session: Session, settings: Settings, method: str, path: str
) -> None:
    for role in ALL_ROLES:
        user = make_user(
            db_session, role, _merchant(db_session) if role in MERCHANT_ROLES else None
        )
        r = client.request(method, _fill(path), json={}, headers=auth_header(settings, user))
        if role in ROLES[(method, path)]:
            assert (
                r.status_code != 403 or r.json()["code"] != "FORBIDDEN" or "merchant" in r.text
            ), (
                role,
                r.text,
            )
        else:
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)


def _merchant(session: Session) -> str:
    from tests.platform.factories import make_merchant

    return make_merchant(session).id
