"""The authorization matrix: for every route, which roles may call it and on whose objects.

The routes come from the app itself, so a route added without a line here fails the test.
Each route is called anonymously and as every role, on objects of the caller's own ("mine":
the shopper's, merchant A's) and, for scoped routes, on someone else's ("theirs"):

- anonymous, on a route that is not public: 401 (a page may send to its sign-in instead);
- a role the route does not admit: 403, or 404 where the object is hidden from it;
- an admitted role on its own objects: past authorization (no 401, 403 or 404);
- an admitted role whose scope is OWN or MERCHANT, on someone else's object: 403 or 404.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import create_database, drop_database, make_settings
from tests.platform.factories import auth_header
from tests.platform.foundation.apiseed import ROLES, World, seed
from tuanbox.api.app import create_app
from tuanbox.db.engine import bind_settings, make_engine
from tuanbox.settings import Settings

# Scopes: which objects an admitted role may act on.
ANY = "any"  # every object (ops, admin)
OWN = "own"  # the caller's own: a shopper's orders, returns, groups; anyone's own account
MERCHANT = "merchant"  # objects of the caller's merchant (its staff and couriers)
PUBLIC = "public"  # no sign-in needed
SIGNED = "signed"  # no user at all: the gateway's signature is the credential (401 without)

Access = str | dict[str, str]
OPS = {"ops": ANY, "admin": ANY}
ADMIN = {"admin": ANY}
STAFF = {"merchant_staff": MERCHANT, "admin": ANY}
SHOPPER = {"shopper": OWN}
# The merchant console: its own staff, by the console cookie or a bearer header; no admin.
CONSOLE = {"merchant_staff": MERCHANT}
PARTIES = {"shopper": OWN, "merchant_staff": MERCHANT, "ops": ANY, "admin": ANY}
SIGNED_IN = {role: OWN for role in ROLES}
# The shop's pages admit a shopper by the shop's own sign-in cookie, never by a bearer header,
# so to them every caller here is signed out: sent to sign in (401 or a redirect), the object
# hidden (404), or a form refused before anything is looked at (422). Never an answer.
SHOP_SIGN_IN = "shop sign-in"
SHOP_REFUSED = {401, 403, 404, 422, 302, 303, 307}

MATRIX: dict[tuple[str, str], Access] = {
    # platform
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("GET", "/api/v1/docs/assets/{name}"): PUBLIC,
    # accounts
    ("POST", "/api/v1/auth/otp"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): PUBLIC,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{user_id}/disable"): ADMIN,
    ("POST", "/api/v1/users/{user_id}/enable"): ADMIN,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("PATCH", "/api/v1/me"): SIGNED_IN,
    ("DELETE", "/api/v1/me"): SHOPPER,
    ("POST", "/api/v1/me/erasure-code"): SHOPPER,
    ("GET", "/api/v1/me/export"): SIGNED_IN,
    ("GET", "/api/v1/me/addresses"): SIGNED_IN,
    ("POST", "/api/v1/me/addresses"): SIGNED_IN,
    # catalog
    ("POST", "/api/v1/merchants"): ADMIN,
    ("GET", "/api/v1/merchants/{merchant_id}"): PUBLIC,
    ("PUT", "/api/v1/merchants/{merchant_id}/verification"): ADMIN,
    ("POST", "/api/v1/merchants/{merchant_id}/products"): STAFF,
    ("GET", "/api/v1/products"): PUBLIC,
    ("GET", "/api/v1/products/{product_id}"): PUBLIC,
    ("POST", "/api/v1/products/{product_id}/skus"): STAFF,
    ("POST", "/api/v1/products/{product_id}/lots"): STAFF,
    ("POST", "/api/v1/products/{product_id}/images"): STAFF,
    ("POST", "/api/v1/skus/{sku_id}/restock"): STAFF,
    ("GET", "/api/v1/lots/{gtin}/{lot_code}"): PUBLIC,
    ("GET", "/media/{filename}"): PUBLIC,
    # orders
    ("POST", "/api/v1/orders"): SHOPPER,
    ("GET", "/api/v1/orders"): SIGNED_IN,
    ("GET", "/api/v1/orders/{order_id}"): PARTIES,
    ("GET", "/api/v1/orders/{order_id}/transitions"): PARTIES,
    ("POST", "/api/v1/orders/{order_id}/transitions"): OPS,
    ("POST", "/api/v1/orders/{order_id}/cancel"): {"shopper": OWN, **OPS},
    ("POST", "/api/v1/orders/{order_id}/accept"): STAFF,
    ("POST", "/api/v1/orders/{order_id}/reject"): STAFF,
    ("GET", "/api/v1/merchants/{merchant_id}/orders"): {"merchant_staff": MERCHANT, **OPS},
    ("GET", "/api/v1/merchants/{merchant_id}/order-acceptance"): STAFF,
    ("PUT", "/api/v1/merchants/{merchant_id}/order-acceptance"): STAFF,
    # payments and refunds
    ("POST", "/api/v1/orders/{order_id}/payments"): SHOPPER,
    ("POST", "/api/v1/payments/{provider}/webhook"): SIGNED,
    ("GET", "/api/v1/refunds"): OPS,
    ("GET", "/api/v1/orders/{order_id}/refunds"): PARTIES,
    ("POST", "/api/v1/orders/{order_id}/refunds"): OPS,
    ("POST", "/api/v1/refunds/{refund_id}/retry"): OPS,
    ("POST", "/api/v1/refunds/{refund_id}/resolve"): OPS,
    # SimPay's hosted page stands for the gateway's own site (mounted outside production).
    ("GET", "/pay/sim/{intent_id}"): PUBLIC,
    ("POST", "/pay/sim/{intent_id}/confirm"): PUBLIC,
    # returns
    ("POST", "/api/v1/orders/{order_id}/return"): SHOPPER,
    ("GET", "/api/v1/returns/{return_id}"): PARTIES,
    ("POST", "/api/v1/returns/{return_id}/dropped-off"): OPS,
    ("POST", "/api/v1/returns/{return_id}/received"): {"merchant_staff": MERCHANT, **OPS},
    ("POST", "/api/v1/returns/{return_id}/withdraw"): SHOPPER,
    # growth and membership
    ("POST", "/api/v1/me/referral"): SHOPPER,
    ("GET", "/api/v1/me/invites"): SHOPPER,
    ("GET", "/api/v1/leaderboards/{kind}"): SHOPPER,
    ("GET", "/api/v1/new-user-offers"): SHOPPER,
    ("POST", "/api/v1/new-user-offers/{offer_id}/claims"): SHOPPER,
    ("POST", "/api/v1/new-user-offers"): OPS,
    ("POST", "/api/v1/invite-tasks"): {"merchant_staff": MERCHANT, **OPS},
    ("GET", "/api/v1/invite-tasks"): {"merchant_staff": MERCHANT, **OPS},
    ("PUT", "/api/v1/leaderboard-rewards/{kind}"): OPS,
    ("GET", "/api/v1/me/membership"): SHOPPER,
    ("POST", "/api/v1/me/membership/purchases"): SHOPPER,
    ("POST", "/api/v1/users/{user_id}/membership/refund"): OPS,
    ("PUT", "/api/v1/skus/{sku_id}/member-price"): OPS,
    ("DELETE", "/api/v1/skus/{sku_id}/member-price"): OPS,
    # segments, pushes and experiments (merchant staff, their own merchant)
    ("GET", "/api/v1/segments"): CONSOLE,
    ("POST", "/api/v1/segments"): CONSOLE,
    ("POST", "/api/v1/segments/{segment_id}/pushes"): CONSOLE,
    ("GET", "/api/v1/pushes/{push_id}"): CONSOLE,
    ("GET", "/api/v1/experiments"): CONSOLE,
    ("POST", "/api/v1/experiments"): CONSOLE,
    ("GET", "/api/v1/experiments/{experiment_id}"): CONSOLE,
    ("POST", "/api/v1/experiments/{experiment_id}/stop"): CONSOLE,
    # coupons and points
    ("GET", "/api/v1/me/coupons"): SHOPPER,
    ("GET", "/api/v1/me/points"): SHOPPER,
    ("POST", "/api/v1/me/points/coupons"): SHOPPER,
    ("GET", "/api/v1/orders/{order_id}/coupons"): SHOPPER,
    ("PUT", "/api/v1/orders/{order_id}/discount"): SHOPPER,
    ("GET", "/api/v1/orders/{order_id}/discount"): PARTIES,
    ("POST", "/api/v1/orders/{order_id}/unit-refunds"): OPS,
    ("POST", "/api/v1/coupon-templates"): {"merchant_staff": MERCHANT, **OPS},
    ("GET", "/api/v1/coupon-templates"): {"merchant_staff": MERCHANT, **OPS},
    ("POST", "/api/v1/coupon-templates/{template_id}/issue"): {"merchant_staff": MERCHANT, **OPS},
    # group buys, flash sales, pre-sales
    # Staff only: the route's role check admits admins, the service then refuses them.
    ("POST", "/api/v1/campaigns"): {"merchant_staff": MERCHANT},
    ("GET", "/api/v1/campaigns/{campaign_id}"): PUBLIC,
    ("POST", "/api/v1/campaigns/{campaign_id}/groups"): {"shopper": ANY},
    ("GET", "/api/v1/groups/{group_id}"): PUBLIC,
    ("POST", "/api/v1/groups/{group_id}/join"): {"shopper": ANY},
    ("POST", "/api/v1/groups/{group_id}/leave"): SHOPPER,
    ("GET", "/g/{group_id}"): PUBLIC,
    ("GET", "/g/static/{name}"): PUBLIC,
    ("POST", "/api/v1/flash-sales"): {"merchant_staff": MERCHANT},
    ("GET", "/api/v1/flash-sales/{sale_id}"): PUBLIC,
    ("POST", "/api/v1/flash-sales/{sale_id}/reservations"): {"shopper": ANY},
    ("GET", "/api/v1/campaigns/{campaign_id}/purchase-order"): STAFF,
    ("GET", "/api/v1/campaigns/{campaign_id}/purchase-order.csv"): STAFF,
    ("POST", "/api/v1/campaigns/{campaign_id}/receipts"): OPS,
    # lockers and fulfilment
    ("GET", "/api/v1/lockers"): OPS,
    ("GET", "/api/v1/lockers/{locker_id}/run-sheet"): {
        "merchant_staff": MERCHANT,
        "courier": MERCHANT,
        **OPS,
    },
    ("POST", "/api/v1/lockers/{locker_id}/compartments/{compartment_id}/open"): OPS,
    ("GET", "/api/v1/orders/{order_id}/fulfilment"): PARTIES,
    ("GET", "/api/v1/orders/{order_id}/pickup-qr.{fmt}"): SHOPPER,
    ("GET", "/api/v1/ops/alerts"): OPS,
    ("POST", "/api/v1/ops/alerts/{alert_id}/acknowledge"): OPS,
    ("POST", "/api/v1/ops/alerts/{alert_id}/resolve"): OPS,
    ("GET", "/api/v1/ops/fulfilment-exceptions"): OPS,
    # risk review and audit
    ("GET", "/api/v1/ops/risk/reviews"): OPS,
    ("GET", "/api/v1/ops/risk/reviews/{review_id}"): OPS,
    ("POST", "/api/v1/ops/risk/reviews/{review_id}/approve"): OPS,
    ("POST", "/api/v1/ops/risk/reviews/{review_id}/reject"): OPS,
    ("GET", "/api/v1/ops/risk/rules"): OPS,
    ("GET", "/api/v1/ops/audit"): OPS,
    ("GET", "/api/v1/ops/audit/export.csv"): OPS,
    # traceability
    ("GET", "/api/v1/trace/{gtin}/{lot}"): PUBLIC,
    ("GET", "/api/v1/trace/{gtin}/{lot}/qr.{fmt}"): STAFF,
    ("POST", "/api/v1/trace/events"): STAFF,
    ("GET", "/01/{gtin}/10/{lot}"): PUBLIC,
    ("GET", "/01/{gtin}"): PUBLIC,
    ("GET", "/trace/lot/{gtin}/{lot}"): PUBLIC,
    ("GET", "/product/{gtin}"): PUBLIC,
    ("GET", "/trace/static/{name}"): PUBLIC,
    # the ops console (bearer header or its own cookie)
    ("GET", "/ops/login"): PUBLIC,
    ("POST", "/ops/login"): PUBLIC,
    ("POST", "/ops/logout"): PUBLIC,
    ("GET", "/ops/static/{name}"): PUBLIC,
    ("GET", "/ops"): OPS,
    ("GET", "/ops/lockers/{locker_id}"): OPS,
    ("GET", "/ops/lockers/{locker_id}/charts/{label}.svg"): OPS,
    ("GET", "/ops/episodes/{episode_id}/evidence.svg"): OPS,
    ("GET", "/ops/alerts"): OPS,
    ("GET", "/ops/alerts/fragment"): OPS,
    ("POST", "/ops/alerts/{alert_id}/acknowledge"): OPS,
    ("POST", "/ops/alerts/{alert_id}/resolve"): OPS,
    ("POST", "/ops/holds/{hold_id}/release"): OPS,
    ("POST", "/ops/holds/{hold_id}/reject"): OPS,
    ("GET", "/ops/stream"): OPS,
    ("GET", "/ops/risk"): OPS,
    ("POST", "/ops/risk/reviews/{review_id}/approve"): OPS,
    ("POST", "/ops/risk/reviews/{review_id}/reject"): OPS,
    ("GET", "/ops/audit"): OPS,
    ("GET", "/ops/audit/export.csv"): OPS,
    # the shop's pages (their own sign-in by text message)
    ("GET", "/"): PUBLIC,
    ("GET", "/signin"): PUBLIC,
    ("POST", "/signin/code"): PUBLIC,
    ("POST", "/signin"): PUBLIC,
    ("GET", "/signin/refresh"): PUBLIC,
    ("POST", "/signin/out"): PUBLIC,
    ("POST", "/lang"): PUBLIC,
    ("GET", "/shop/static/{name}"): PUBLIC,
    ("GET", "/shop/live.json"): PUBLIC,
    ("GET", "/c/{campaign_id}"): PUBLIC,
    ("GET", "/f/{sale_id}"): PUBLIC,
    ("GET", "/station"): PUBLIC,
    ("POST", "/station"): PUBLIC,
    ("POST", "/c/{campaign_id}/groups"): SHOP_SIGN_IN,
    ("POST", "/c/{campaign_id}/groups/{group_id}/join"): SHOP_SIGN_IN,
    ("GET", "/j/{group_id}"): PUBLIC,
    ("POST", "/f/{sale_id}/buy"): SHOP_SIGN_IN,
    ("GET", "/f/{sale_id}/remind.json"): PUBLIC,
    ("POST", "/f/{sale_id}/remind"): SHOP_SIGN_IN,
    ("POST", "/f/{sale_id}/remind/cancel"): SHOP_SIGN_IN,
    ("GET", "/orders/pickup-sw.js"): PUBLIC,
    ("GET", "/orders"): SHOP_SIGN_IN,
    ("GET", "/orders/{order_id}"): SHOP_SIGN_IN,
    ("GET", "/orders/{order_id}/live.json"): SHOP_SIGN_IN,
    ("GET", "/orders/{order_id}/pickup"): SHOP_SIGN_IN,
    ("GET", "/orders/{order_id}/poster.png"): SHOP_SIGN_IN,
    ("POST", "/orders/{order_id}/pay"): SHOP_SIGN_IN,
    ("POST", "/orders/{order_id}/return"): SHOP_SIGN_IN,
    ("POST", "/orders/{order_id}/return/withdraw"): SHOP_SIGN_IN,
    ("POST", "/orders/{order_id}/review"): SHOP_SIGN_IN,
    ("GET", "/orders/{order_id}/checkout"): SHOP_SIGN_IN,
    ("POST", "/orders/{order_id}/checkout"): SHOP_SIGN_IN,
    ("GET", "/me/coupons"): SHOP_SIGN_IN,
    ("GET", "/me/membership"): SHOP_SIGN_IN,
    ("POST", "/me/membership/buy"): SHOP_SIGN_IN,
    ("GET", "/me/invites"): SHOP_SIGN_IN,
    ("POST", "/me/coupons/redeem"): SHOP_SIGN_IN,
    # the merchant console (tuanbox.console)
    ("GET", "/console/signin"): PUBLIC,
    ("POST", "/console/signin"): PUBLIC,
    ("POST", "/console/signout"): PUBLIC,
    ("GET", "/console/static/{name}"): PUBLIC,
    ("GET", "/console"): CONSOLE,
    ("GET", "/console/reports"): CONSOLE,  # the dashboard (tuanbox.console.reports)
    ("GET", "/console/products"): CONSOLE,
    ("POST", "/console/products"): CONSOLE,
    ("GET", "/console/products/{product_id}"): CONSOLE,
    ("POST", "/console/products/{product_id}/skus"): CONSOLE,
    ("POST", "/console/products/{product_id}/photos"): CONSOLE,
    ("POST", "/console/products/{product_id}/lots"): CONSOLE,
    ("POST", "/console/skus/{sku_id}/restock"): CONSOLE,
    ("POST", "/console/skus/{sku_id}"): CONSOLE,
    ("GET", "/console/lots/{gtin}/{lot}"): CONSOLE,
    ("GET", "/console/lots/{gtin}/{lot}/qr.png"): CONSOLE,
    ("GET", "/console/lots/{gtin}/{lot}/labels.pdf"): CONSOLE,
    ("POST", "/console/lots/{gtin}/{lot}/events"): CONSOLE,
    ("GET", "/console/campaigns"): CONSOLE,
    ("GET", "/console/campaigns/new"): CONSOLE,
    ("POST", "/console/campaigns"): CONSOLE,
    ("POST", "/console/campaigns/{campaign_id}/pause"): CONSOLE,
    ("POST", "/console/campaigns/{campaign_id}/resume"): CONSOLE,
    ("POST", "/console/campaigns/{campaign_id}/end"): CONSOLE,
    ("POST", "/console/flash-sales/{sale_id}/cancel"): CONSOLE,
    ("GET", "/console/credentials"): CONSOLE,
    ("POST", "/console/credentials/licences"): CONSOLE,
    ("GET", "/console/credentials/licences/{licence_id}"): CONSOLE,
    # merchants' licence documents, reviewed by ops (tuanbox.catalog.licence_views)
    ("GET", "/api/v1/ops/merchant-licences"): OPS,
    ("GET", "/api/v1/ops/merchant-licences/{licence_id}/file"): OPS,
    ("POST", "/api/v1/ops/merchant-licences/{licence_id}/review"): OPS,
    ("GET", "/ops/licences"): OPS,
    ("GET", "/ops/licences/{licence_id}/file"): OPS,
    ("POST", "/ops/licences/{licence_id}/review"): OPS,
    ("GET", "/ops/membership"): OPS,
    ("POST", "/ops/users/{user_id}/membership/refund"): OPS,
    ("GET", "/ops/member-prices"): OPS,
    ("POST", "/ops/skus/{sku_id}/member-price"): OPS,
    ("POST", "/ops/skus/{sku_id}/member-price/clear"): OPS,
    ("GET", "/ops/invites"): OPS,
    ("POST", "/ops/leaderboard-rewards/{kind}"): OPS,
    ("POST", "/ops/invite-tasks"): OPS,
    # console orders, waves, pre-sale, returns, reviews (tuanbox.console.orders and siblings)
    ("GET", "/console/orders"): CONSOLE,
    ("POST", "/console/orders/bulk"): CONSOLE,
    ("GET", "/console/orders.csv"): CONSOLE,
    ("GET", "/console/orders.xlsx"): CONSOLE,
    ("GET", "/console/waves"): CONSOLE,
    ("GET", "/console/waves/{station_id}"): CONSOLE,
    ("GET", "/console/presale"): CONSOLE,
    ("GET", "/console/presale/{campaign_id}"): CONSOLE,
    ("GET", "/console/presale/{campaign_id}/purchase-order.csv"): CONSOLE,
    ("GET", "/console/returns"): CONSOLE,
    ("POST", "/console/returns/{return_id}/received"): CONSOLE,
    ("GET", "/console/reviews"): CONSOLE,
    ("POST", "/console/reviews/{review_id}/reply"): CONSOLE,
    ("GET", "/console/segments"): CONSOLE,
    ("POST", "/console/segments"): CONSOLE,
    ("POST", "/console/segments/{segment_id}/push"): CONSOLE,
    ("GET", "/console/experiments"): CONSOLE,
    ("POST", "/console/experiments"): CONSOLE,
    ("GET", "/console/experiments/{experiment_id}"): CONSOLE,
    ("POST", "/console/experiments/{experiment_id}/stop"): CONSOLE,
    ("GET", "/console/coupons"): CONSOLE,
    ("POST", "/console/coupons"): CONSOLE,
    ("GET", "/console/coupons/{template_id}"): CONSOLE,
    ("POST", "/console/coupons/{template_id}/issue"): CONSOLE,
    ("POST", "/console/coupons/{template_id}/pause"): CONSOLE,
    ("POST", "/console/coupons/{template_id}/resume"): CONSOLE,
    ("GET", "/console/invites"): CONSOLE,
    ("POST", "/console/invites/tasks"): CONSOLE,
    ("POST", "/console/invites/tasks/{task_id}/pause"): CONSOLE,
    ("POST", "/console/invites/tasks/{task_id}/resume"): CONSOLE,
    ("POST", "/console/invites/offers"): CONSOLE,
    ("PUT", "/api/v1/staff/{staff_id}/pii-access"): ADMIN,
}
# Query strings some routes need to answer at all (a stream that ends after one event).
QUERY = {("GET", "/ops/stream"): "max_events=1"}
# Deleting the shopper's own account runs last: every later call as the shopper would be 401.
LAST = {("DELETE", "/api/v1/me")}
CALLERS = ("anonymous", *ROLES)
REFUSED_ANONYMOUS = {401}
REFUSED = {403, 404}
# A 404 that is an admitted caller's answer about the state of its own object, not a refusal.
NOT_YET = {"FULFILMENT_NOT_FOUND"}
# A one-pixel PNG, for the image upload form.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63f8cfc0f01f0005000201a5f6c9b80000000049454e44ae426082"
)
SIGN_IN_REDIRECT = {302, 303, 307}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, as the router matches it."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" and path:
                found.add((method, path))
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, World, str]]:
    """One committed database for the module: requests here may use several connections."""
    name = f"tuanbox_authz_{uuid.uuid4().hex[:12]}"
    url = create_database(name)
    engine = make_engine(url)
    with Session(engine) as session:
        bind_settings(session, make_settings(database_url=url))
        seeded = seed(session)
        session.commit()
        for user in seeded.users.values():
            session.refresh(user)
            session.expunge(user)
    try:
        yield engine, seeded, url
    finally:
        engine.dispose()
        drop_database(name)


@pytest.fixture(scope="module")
def matrix_client(
    world: tuple[Engine, World, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Settings, World, FastAPI]]:
    engine, seeded, url = world
    settings = make_settings(
        database_url=url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path_factory.mktemp("media")),
    )
    app = create_app(settings, engine=engine)
    with TestClient(app, follow_redirects=False) as client:
        yield client, settings, seeded, app


def test_every_route_has_a_matrix_entry() -> None:
    served = app_routes(create_app(make_settings()))
    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)
    assert not missing, f"routes without an authorization matrix entry: {missing}"
    assert not stale, f"matrix entries for routes the app does not serve: {stale}"


def _example_body(app: FastAPI, method: str, path: str, ids: dict[str, str]) -> Any:
    """The documented example body, its `*_id` fields pointing at the caller's objects."""
    operation = app.openapi()["paths"].get(path, {}).get(method.lower(), {})
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return None
    example = media.get("example")
    if example is None:
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = app.openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]
        examples = schema.get("examples") or [{}]
        example = examples[0]
    if isinstance(example, dict):
        return {key: ids.get(key, value) for key, value in example.items()}
    return example


def _fill(path: str, ids: dict[str, str]) -> tuple[str, bool]:
    """The path with its parameters filled, and whether every one names a seeded object."""
    seeded = True

    def one(match: re.Match[str]) -> str:
        nonlocal seeded
        if match.group(1) in ids:
            return ids[match.group(1)]
        seeded = False
        return "does-not-exist"

    return re.sub(r"\{([^}]+)\}", one, path), seeded


def _call(
    client: TestClient,
    app: FastAPI,
    settings: Settings,
    world: World,
    caller: str,
    method: str,
    path: str,
    ids: dict[str, str],
) -> tuple[int, bool, str]:
    url, seeded = _fill(path, ids)
    if (method, path) in QUERY:
        url += "?" + QUERY[(method, path)]
    headers = {} if caller == "anonymous" else auth_header(settings, world.users[caller])
    # What a browser on the site's own pages sends, and a fresh key for idempotent POSTs.
    headers |= {"Origin": "http://testserver", "Idempotency-Key": uuid.uuid4().hex}
    kwargs: dict[str, Any] = {"headers": headers}
    if path.endswith("/images"):
        kwargs["files"] = {"file": ("pixel.png", PNG, "image/png")}
    elif method in ("POST", "PUT", "PATCH"):
        body = _example_body(app, method, path, ids)
        kwargs["json"] = body if body is not None else {}
    response = client.request(method, url, **kwargs)
    if response.status_code in SIGN_IN_REDIRECT:  # where to: a sign-in page, or a result page
        return response.status_code, seeded, "-> " + response.headers.get("location", "")[:300]
    if response.status_code == 404 and response.headers.get("content-type", "").startswith(
        "application/problem+json"
    ):
        seeded = seeded and response.json().get("code") not in NOT_YET
    return response.status_code, seeded, response.text[:300]


def _ordered() -> list[tuple[str, str]]:
    return sorted(MATRIX, key=lambda route: (route in LAST, route))


@pytest.mark.parametrize(("method", "path"), _ordered(), ids=lambda v: str(v))
def test_route_admits_exactly_its_roles(
    matrix_client: tuple[TestClient, Settings, World, FastAPI], method: str, path: str
) -> None:
    client, settings, world, app = matrix_client
    access = MATRIX[(method, path)]
    ids = {**world.fixed, **world.mine}
    theirs = {**world.fixed, **world.theirs}
    scoped = any(f"{{{name}}}" in path for name in world.theirs)
    wrong: list[str] = []
    # Someone else's objects first: an admitted call on one's own may change state.
    roles = access if isinstance(access, dict) else {}
    for caller in CALLERS:
        if roles.get(caller, ANY) != ANY and scoped:
            status, _, text = _call(client, app, settings, world, caller, method, path, theirs)
            if status not in REFUSED:
                wrong.append(f"{caller} on theirs: {status} (want 403/404) {text}")
    for caller in CALLERS:
        status, seeded, text = _call(client, app, settings, world, caller, method, path, ids)
        admitted = access == PUBLIC or (isinstance(access, dict) and caller in access)
        if access == SIGNED:
            if status != 401:
                wrong.append(f"{caller}: {status} without a signature (want 401) {text}")
        elif access == SHOP_SIGN_IN:
            if status not in SHOP_REFUSED:
                wrong.append(f"{caller}: {status} without the shop's sign-in {text}")
        elif admitted:
            # A form's post answers 303 to its result page (the console's posts do): only a
            # redirect to a sign-in page is a refusal.
            to_sign_in = status in SIGN_IN_REDIRECT and any(w in text for w in ("signin", "login"))
            refused = {401, 403} | ({404} if seeded else set())
            if access != PUBLIC and (status in refused or to_sign_in):
                wrong.append(f"{caller}: {status} (admitted) {text}")
            elif access == PUBLIC and status in {401, 403}:
                wrong.append(f"{caller}: {status} on a public route {text}")
        elif caller == "anonymous":
            if status not in REFUSED_ANONYMOUS | SIGN_IN_REDIRECT:
                wrong.append(f"anonymous: {status} (want 401) {text}")
        elif status not in REFUSED | SIGN_IN_REDIRECT:
            wrong.append(f"{caller}: {status} (want 403/404) {text}")
    assert not wrong, "\n".join([f"{method} {path}:", *wrong])
