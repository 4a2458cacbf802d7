"""A write that answers 2xx has committed: every write route a shopper may call, called by
one with the documented example, either fails or leaves a committed transaction behind.

Routes that never called `session.commit()` answered 201 with the object and kept nothing
(referral bindings, new-user claims, membership purchases). Transaction ids tell: every
transaction that wrote took one, and PostgreSQL knows whether each committed.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.platform.accounts.test_role_enforcement import (  # noqa: F401 (fixtures)
    LAST,
    MATRIX,
    _call,
    _ordered,
    matrix_client,
    world,
)
from tests.platform.factories import auth_header, make_user
from tests.platform.foundation.apiseed import World
from tuanbox.accounts.models import User
from tuanbox.db.engine import bind_settings
from tuanbox.growth.models import NewUserClaim, NewUserOffer, ReferralBinding
from tuanbox.settings import Settings


def _next_xid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")))


def committed_since(engine: Engine, first: int) -> list[int]:
    """Transactions that took an id at or after `first` and committed."""
    last = _next_xid(engine)
    with engine.connect() as conn:
        return [
            xid
            for xid in range(first, last)
            if conn.scalar(sa.text("SELECT pg_xact_status(CAST(:x AS text)::xid8)"), {"x": xid})
            == "committed"
        ]


def _shopper_writes() -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path in _ordered()
        if method != "GET"
        and (method, path) not in LAST
        and isinstance(MATRIX[(method, path)], dict)
        and "shopper" in MATRIX[(method, path)]
    ]


@pytest.mark.parametrize(("method", "path"), _shopper_writes(), ids=lambda v: str(v))
def test_a_shopper_write_that_succeeds_has_committed(
    matrix_client: tuple[TestClient, Settings, World, FastAPI],  # noqa: F811
    world: tuple[Engine, World, str],  # noqa: F811
    method: str,
    path: str,
) -> None:
    client, settings, seeded, app = matrix_client
    engine = world[0]
    first = _next_xid(engine)
    ids: dict[str, Any] = {**seeded.fixed, **seeded.mine}
    status, _, text = _call(client, app, settings, seeded, "shopper", method, path, ids)
    if not 200 <= status < 300:
        return  # refused or invalid: nothing was to be kept
    assert committed_since(engine, first), f"{method} {path}: {status} but nothing committed {text}"


def test_the_check_tells_a_rolled_back_write_from_a_committed_one(
    world: tuple[Engine, World, str],  # noqa: F811
) -> None:
    engine = world[0]
    first = _next_xid(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE probe (x int)"))
        conn.rollback()
    assert committed_since(engine, first) == []
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE probe (x int)"))
    assert len(committed_since(engine, first)) == 1


def test_a_referral_binding_and_a_new_user_claim_are_kept(
    matrix_client: tuple[TestClient, Settings, World, FastAPI],  # noqa: F811
    world: tuple[Engine, World, str],  # noqa: F811
) -> None:
    """The two shopper writes of the growth API whose documented examples cannot succeed
    (they name an inviter and an offer), called with real ones."""
    client, settings, seeded, _ = matrix_client
    engine = world[0]
    with Session(engine) as session:
        bind_settings(session, settings)
        inviter = make_user(session, phone="+8613500135001", settings=settings)
        invitee = make_user(session, phone="+8613500135002", settings=settings)
        offer = NewUserOffer(sku_id=seeded.mine["sku_id"], name="first ¥1", price_cents=100,
                             created_by="test")  # fmt: skip
        session.add(offer)
        session.commit()
        ids = (inviter.id, invitee.id, offer.id)
    inviter_id, invitee_id, offer_id = ids
    hdrs = auth_header(settings, User(id=invitee_id, role="shopper"))
    bound = client.post("/api/v1/me/referral", json={"inviter_id": inviter_id}, headers=hdrs)
    assert bound.status_code == 200, bound.text
    claimed = client.post(f"/api/v1/new-user-offers/{offer_id}/claims",
                          json={"device_id": "ios-first-claim-01"}, headers=hdrs)  # fmt: skip
    assert claimed.status_code == 201, claimed.text
    with engine.connect() as conn:
        kept = conn.scalar(
            sa.select(ReferralBinding.inviter_id).where(ReferralBinding.invitee_id == invitee_id)
        )
        claim = conn.scalar(sa.select(NewUserClaim.id).where(NewUserClaim.user_id == invitee_id))
    assert kept == inviter_id
    assert claim == claimed.json()["claim_id"]
