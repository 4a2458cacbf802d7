"""Every write that merchant staff, couriers, ops or admins make over HTTP is committed with
its audit entry (issue 10: every action of staff, ops and admins goes to the audit log).

Each write route of the authorization matrix admitted to one of those roles is called by it
on its own objects with the documented example; an answer that did something (2xx, or a
form's 303 to its result page) must leave an entry by that actor in the committed log.
A write that is refused or invalid did nothing and is not looked at here.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.platform.accounts.test_role_enforcement import (  # noqa: F401 (fixtures)
    MATRIX,
    _call,
    _ordered,
    matrix_client,
    world,
)
from tests.platform.foundation.apiseed import World
from tuanbox.audit.models import AuditEntry
from tuanbox.settings import Settings

ROLES = ("merchant_staff", "courier", "ops", "admin")
# One's own account (name, addresses, export, erasure): the person's own data, not an action
# on the platform's or anyone else's.
OWN = "/api/v1/me"


def _writes() -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path in _ordered()
        if method != "GET"
        and not path.startswith(OWN)
        and isinstance(MATRIX[(method, path)], dict)
        and any(role in MATRIX[(method, path)] for role in ROLES)
    ]


@pytest.mark.parametrize(("method", "path"), _writes(), ids=lambda v: str(v))
def test_a_staff_write_that_did_something_is_in_the_audit_log(
    matrix_client: tuple[TestClient, Settings, World, FastAPI],  # noqa: F811
    world: tuple[Engine, World, str],  # noqa: F811
    method: str,
    path: str,
) -> None:
    client, settings, seeded, app = matrix_client
    engine = world[0]
    access: Any = MATRIX[(method, path)]
    unaudited = []
    for role in (r for r in ROLES if r in access):
        with engine.connect() as conn:
            last = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEntry.id), 0)))
        ids = {**seeded.fixed, **seeded.mine}
        status, _, text = _call(client, app, settings, seeded, role, method, path, ids)
        if status >= 400 or (status in (302, 303, 307) and "sign" in text):
            continue
        with engine.connect() as conn:
            entries = conn.scalars(
                sa.select(AuditEntry.action).where(
                    AuditEntry.id > last, AuditEntry.actor_id == seeded.users[role].id
                )
            ).all()
        if not entries:
            unaudited.append(f"{role}: {status}, no audit entry committed: {text[:200]}")
    assert not unaudited, "\n".join([f"{method} {path}:", *unaudited])
