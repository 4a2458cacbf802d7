"""Ops' invites page over HTTP: the leaderboard reward per week/month and platform-wide
invite tasks, set and created through the growth API's operations (audited); bad input
refused in words; other roles refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import template
from tests.platform.factories import auth_header, make_merchant, make_user
from tuanbox.audit.models import AuditEntry
from tuanbox.db.base import utcnow
from tuanbox.growth.models import InviteTask, LeaderboardReward
from tuanbox.settings import Settings


def _window() -> dict[str, str]:
    now = utcnow()
    return {
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
    }


def test_ops_choose_the_leaderboard_reward_and_create_platform_tasks(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    free = template(db_session, name=f"Free order {uuid.uuid4().hex[:6]}", merchant_id=None)
    ops = auth_header(settings, make_user(db_session, "ops"))
    page = client.get("/ops/invites", headers=ops)
    assert page.status_code == 200
    assert f'<option value="{free.id}"' in page.text and "no reward set" in page.text

    saved = client.post(
        "/ops/leaderboard-rewards/week",
        json={"template_id": free.id, "top_n": "5", "active": True},
        headers=ops,
    )
    assert saved.status_code == 200, saved.text
    row = db_session.get(LeaderboardReward, "week")
    assert row is not None and (row.template_id, row.top_n, row.active) == (free.id, 5, True)
    audited = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "growth.leaderboard_reward.set", AuditEntry.subject_id == "week"
        )
    ).all()
    assert len(audited) == 1
    assert f"top 5 get “{free.name}”" in client.get("/ops/invites", headers=ops).text

    name = f"Bring 3 friends {uuid.uuid4().hex[:6]}"
    made = client.post(
        "/ops/invite-tasks",
        json={"name": name, "goal": "3", "template_id": free.id, **_window()},
        headers=ops,
    )
    assert made.status_code == 201, made.text
    task = db_session.get(InviteTask, made.json()["id"])
    assert task is not None and task.merchant_id is None and task.goal == 3
    assert db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "growth.task.create", AuditEntry.subject_id == task.id
        )
    ).one()
    # A merchant named in the body is ignored: the page makes platform tasks only.
    other = make_merchant(db_session)
    platform = client.post(
        "/ops/invite-tasks",
        json={"name": "x", "goal": 1, "template_id": free.id, "merchant_id": other.id, **_window()},
        headers=ops,
    )
    assert platform.status_code == 201 and platform.json()["merchant_id"] is None
    listed = client.get("/ops/invites", headers=ops).text
    assert f'data-task-id="{task.id}"' in listed and name in listed


def test_bad_rewards_and_tasks_are_refused_in_words(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    free = template(db_session, merchant_id=None)
    ops = auth_header(settings, make_user(db_session, "ops"))
    for body, words in (
        ({"template_id": free.id, "top_n": 2**31}, "less than or equal to 100"),
        ({"template_id": free.id, "top_n": "abc"}, "valid integer"),
        ({"template_id": "x" * 200, "top_n": 3}, "at most"),
        ({"template_id": "t\x00", "top_n": 3}, "NUL"),
    ):
        refused = client.post("/ops/leaderboard-rewards/week", json=body, headers=ops)
        assert refused.status_code == 422, body
        assert words in refused.json()["detail"], (body, refused.json())
    missing = client.post(
        "/ops/leaderboard-rewards/week", json={"template_id": str(uuid.uuid4())}, headers=ops
    )
    assert missing.status_code == 404
    kind = client.post("/ops/leaderboard-rewards/year", json={"template_id": free.id}, headers=ops)
    assert kind.status_code == 422
    for body in (
        {"name": "n", "goal": 2**31, "template_id": free.id, **_window()},
        {"name": "n", "goal": 3, "template_id": free.id, "starts_at": "", "ends_at": ""},
        {"name": "n" * 500, "goal": 3, "template_id": free.id, **_window()},
        {
            "name": "n",
            "goal": 3,
            "template_id": free.id,
            "starts_at": _window()["ends_at"],
            "ends_at": _window()["starts_at"],
        },
    ):
        refused = client.post("/ops/invite-tasks", json=body, headers=ops)
        assert refused.status_code == 422, body
        assert refused.json()["detail"], body
    assert db_session.get(LeaderboardReward, "week") is None


def test_other_roles_are_refused_the_invites_page_and_its_actions(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    free = template(db_session, merchant_id=None)
    merchant = make_merchant(db_session)
    for role, merchant_id in (("shopper", None), ("merchant_staff", merchant.id)):
        who = auth_header(settings, make_user(db_session, role, merchant_id))
        page = client.get("/ops/invites", headers=who, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/ops/login"
        reward = client.post(
            "/ops/leaderboard-rewards/week", json={"template_id": free.id}, headers=who
        )
        assert reward.status_code == 403
        task = client.post(
            "/ops/invite-tasks",
            json={"name": "n", "goal": 3, "template_id": free.id, **_window()},
            headers=who,
        )
        assert task.status_code == 403
    ops = auth_header(settings, make_user(db_session, "ops"))
    cross = client.post(
        "/ops/leaderboard-rewards/week",
        json={"template_id": free.id},
        headers={**ops, "Origin": "https://x.example"},
    )
    assert cross.status_code == 403
    assert db_session.get(LeaderboardReward, "week") is None
