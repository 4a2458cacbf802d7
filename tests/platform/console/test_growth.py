"""Console growth pages over HTTP (real PostgreSQL): coupon templates of every kind, worded
problems for bad input, issuing to a segment, to listed shoppers and by rule (a double
submit issues once), pausing and resuming, counts; invite tasks and new-user offers with
their grant counts, the leaderboard; every write audited; another merchant's objects are
not found; NUL, 2^31 and over-long ids refused with 422."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient
from tests.platform.factories import make_user
from tests.platform.segments.support import paid_order
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.catalog.models import Sku
from tuanbox.coupons.models import Coupon, CouponEntry, CouponTemplate
from tuanbox.db.base import utcnow
from tuanbox.growth.models import InviteTask, NewUserClaim, NewUserOffer, ReferralBinding, TaskGrant
from tuanbox.segments import services as segments

BIG = str(2**31)


def _form(console: ConsoleClient, **fields: str) -> dict[str, str]:
    base = {
        "csrf": console.csrf, "name": "满39减5", "kind": "amount_off", "amount_off": "5",
        "threshold": "39", "audience": "all", "per_user_limit": "1",
        "valid_from": "2026-01-01T00:00", "valid_until": "2036-01-01T00:00",
    }  # fmt: skip
    return {**base, **fields}


def _audits(session: Session, action: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        )
        or 0
    )


def _template(session: Session, merchant_id: str, name: str) -> CouponTemplate:
    return session.scalars(
        select(CouponTemplate).where(
            CouponTemplate.merchant_id == merchant_id, CouponTemplate.name == name
        )
    ).one()


def _make(console: ConsoleClient, session: Session, **fields: str) -> CouponTemplate:
    made = console.post("/console/coupons", data=_form(console, **fields))
    assert made.status_code == 303, made.text
    template = _template(session, console.world.merchant_id, fields.get("name", "满39减5"))
    assert made.headers["location"] == f"/console/coupons/{template.id}"
    return template


def test_every_kind_of_template_is_made_listed_and_audited(
    console: ConsoleClient, db_session: Session
) -> None:
    threshold = _make(console, db_session)
    assert (threshold.kind, threshold.amount_off_cents, threshold.threshold_cents) == (
        "amount_off", 500, 3900)  # fmt: skip
    plain = _make(console, db_session, name="无门槛3元", amount_off="3", threshold="")
    assert plain.threshold_cents == 0
    percent = _make(
        console, db_session, name="九折", kind="percent_off", amount_off="",
        percent_off="10", max_off="20", threshold="", stackable="on", per_user_limit="3",
        total_limit="500", valid_days="7",
    )  # fmt: skip
    assert (percent.percent_off, percent.max_off_cents, percent.stackable) == (10, 2000, True)
    assert (percent.per_user_limit, percent.total_limit, percent.valid_days) == (3, 500, 7)
    newbie = _make(console, db_session, name="新人券", audience="new_user", threshold="")
    wake = _make(console, db_session, name="唤醒券", audience="wake_up", amount_off="8.5")
    assert (newbie.audience, wake.audience, wake.amount_off_cents) == ("new_user", "wake_up", 850)
    assert all(t.merchant_id == console.world.merchant_id for t in (plain, percent, newbie))
    assert _audits(db_session, "coupon.template_created") == 5
    listing = console.get("/console/coupons")
    assert listing.status_code == 200
    for name in ("满39减5", "无门槛3元", "九折", "新人券", "唤醒券"):
        assert name in listing.text
    assert "无门槛" in listing.text and "满 ¥39.00 可用" in listing.text  # terms in words
    english = console.get("/console/coupons", headers={"Accept-Language": "en"})
    assert "10% off" in english.text and "no minimum spend" in english.text


def test_bad_template_input_is_worded_or_refused(
    console: ConsoleClient, db_session: Session
) -> None:
    cases = [
        ({"amount_off": ""}, "请输入金额"),
        ({"amount_off": "0"}, "必须大于 ¥0"),
        ({"kind": "percent_off", "percent_off": "100"}, "1 至 99"),
        ({"per_user_limit": BIG}, "每人限领"),
        ({"total_limit": BIG}, "发放总量"),
        ({"valid_until": "2025-01-01T00:00"}, "必须晚于生效时间"),
        ({"valid_from": "not a date"}, "生效时间"),
        ({"kind": "free"}, "优惠方式"),
        ({"name": "tab\there"}, "只能使用文字"),
    ]
    for fields, words in cases:
        answer = console.post("/console/coupons", data=_form(console, **fields))
        assert answer.status_code == 422, fields
        assert words in answer.text, (fields, answer.text[-2000:])
        assert 'role="alert"' in answer.text
    # Bounds of the form itself and NUL: problem responses, never a row.
    assert console.post("/console/coupons", data=_form(console, name="x" * 101)).status_code == 422
    assert console.post("/console/coupons", data=_form(console, name="a\x00b")).status_code == 422
    assert db_session.scalar(select(func.count()).select_from(CouponTemplate)) == 0
    # Without the form's security token: refused.
    form = _form(console)
    del form["csrf"]
    assert console.post("/console/coupons", data=form).status_code == 403


def test_issue_to_a_segment_to_shoppers_and_by_rule_once(
    console: ConsoleClient, db_session: Session
) -> None:
    world = console.world
    shoppers = [make_user(db_session) for _ in range(3)]
    for user in shoppers:
        segments.tag(db_session, world.merchant_id, user.id, "vip")
    segment = segments.create(db_session, world.merchant_id, "VIP", {"kind": "tag", "tag": "vip"})
    template = _make(console, db_session, per_user_limit="2")
    url = f"/console/coupons/{template.id}/issue"
    form = {"csrf": console.csrf, "target": "segment", "segment_id": segment.id, "key": "k1"}
    first = console.post(url, data=form)
    assert first.status_code == 303
    assert "issued=3" in first.headers["location"]
    again = console.post(url, data=form)  # a double submit: the same issue
    assert "issued=0&replayed=3" in again.headers["location"]
    db_session.refresh(template)
    assert template.issued_count == 3
    page = console.get(first.headers["location"])
    assert page.status_code == 200
    assert 'data-count="issued">3<' in page.text and "已发放 3 张优惠券" in page.text
    two = f"{shoppers[0].id}\n{shoppers[1].id}"
    listed = console.post(
        url, data={"csrf": console.csrf, "target": "users", "key": "k2", "user_ids": two}
    )
    assert "issued=2" in listed.headers["location"]
    over = console.post(url, data={"csrf": console.csrf, "target": "users", "key": "k3",
                                   "user_ids": shoppers[0].id})  # fmt: skip
    assert "issued=0&replayed=0&skipped=1" in over.headers["location"]  # per-shopper limit 2
    for bad, words in (("", "请至少输入"), ("a" * 37, "不是有效的顾客 ID"),
                       ("\n".join(["u"] * 1001), "最多 1000 位")):  # fmt: skip
        answer = console.post(url, data={"csrf": console.csrf, "target": "users", "user_ids": bad})
        assert answer.status_code == 422 and words in answer.text
    rule = console.post(url, data={"csrf": console.csrf, "target": "rule"})
    assert rule.status_code == 422 and "不能按规则发放" in rule.text
    newbie = _make(console, db_session, name="新人券", audience="new_user", threshold="")
    by_rule = console.post(f"/console/coupons/{newbie.id}/issue",
                           data={"csrf": console.csrf, "target": "rule", "key": "r1"})  # fmt: skip
    assert by_rule.status_code == 303
    db_session.refresh(newbie)
    assert newbie.issued_count >= 3  # every shopper here has never bought
    assert _audits(db_session, "coupon.issued") == 5
    # Used and returned coupons are counted from the wallet and the ledger.
    sku = db_session.get(Sku, world.sku_id)
    assert sku is not None
    order = paid_order(db_session, sku, shoppers[0].id, paid_at=utcnow(), cents=5000)
    db_session.flush()
    coupons = db_session.scalars(
        select(Coupon).where(Coupon.template_id == template.id).order_by(Coupon.id)
    ).all()
    coupons[0].status, coupons[0].order_id = "used", order.id
    db_session.add(CouponEntry(key=f"restored:{coupons[1].id}:x", coupon_id=coupons[1].id,
                               kind="restored", actor_id="system"))  # fmt: skip
    db_session.flush()
    page = console.get(f"/console/coupons/{template.id}")
    assert 'data-count="used">1<' in page.text and 'data-count="returned">1<' in page.text


def test_pause_and_resume_a_template(console: ConsoleClient, db_session: Session) -> None:
    template = _make(console, db_session)
    paused = console.post(f"/console/coupons/{template.id}/pause", data={"csrf": console.csrf})
    assert paused.status_code == 303
    db_session.refresh(template)
    assert template.active is False
    shopper = console.world.shopper.id
    form = {"csrf": console.csrf, "target": "users", "user_ids": shopper}
    refused = console.post(f"/console/coupons/{template.id}/issue", data=form)
    assert refused.status_code == 422 and "恢复后才能发放" in refused.text
    resumed = console.post(f"/console/coupons/{template.id}/resume", data={"csrf": console.csrf})
    assert resumed.status_code == 303
    db_session.refresh(template)
    assert template.active is True
    assert _audits(db_session, "coupon.template_paused") == 1
    assert _audits(db_session, "coupon.template_resumed") == 1


def test_another_merchants_objects_are_not_found(
    console: ConsoleClient, db_session: Session, console_as: Callable[[User], ConsoleClient]
) -> None:
    world = console.world
    template = _make(console, db_session, name="甲的券")
    mine = segments.create(db_session, world.merchant_id, "mine", {"kind": "rfm"})
    other = console_as(world.other_staff)
    theirs_segment = segments.create(db_session, world.other_merchant_id, "theirs", {"kind": "rfm"})
    assert other.get(f"/console/coupons/{template.id}").status_code == 404
    assert "甲的券" not in other.get("/console/coupons").text
    for action in ("pause", "resume"):
        answer = other.post(f"/console/coupons/{template.id}/{action}", data={"csrf": other.csrf})
        assert answer.status_code == 404
    issue = {"csrf": other.csrf, "target": "segment", "segment_id": mine.id}
    assert other.post(f"/console/coupons/{template.id}/issue", data=issue).status_code == 404
    # My template to their segment: their segment is not found for me.
    mixed = {"csrf": console.csrf, "target": "segment", "segment_id": theirs_segment.id}
    assert console.post(f"/console/coupons/{template.id}/issue", data=mixed).status_code == 404
    # Tasks and offers: their template, their SKU are not mine to use; their task not mine.
    task = {"csrf": other.csrf, "name": "邀3人", "goal": "3", "template_id": template.id,
            "starts_at": "2026-01-01T00:00", "ends_at": "2036-01-01T00:00"}  # fmt: skip
    refused = other.post("/console/invites/tasks", data=task)
    assert refused.status_code == 422 and "您自己的优惠券模板" in refused.text
    offer = {"csrf": other.csrf, "name": "新人专享", "sku_id": world.sku_id, "price": "1"}
    refused = other.post("/console/invites/offers", data=offer)
    assert refused.status_code == 422 and "您自己的商品" in refused.text
    made = console.post("/console/invites/tasks", data={**task, "csrf": console.csrf})
    assert made.status_code == 303
    task_id = db_session.scalars(select(InviteTask.id)).one()
    answer = other.post(f"/console/invites/tasks/{task_id}/pause", data={"csrf": other.csrf})
    assert answer.status_code == 404
    assert "邀3人" not in other.get("/console/invites").text
    assert db_session.scalar(select(func.count()).select_from(NewUserOffer)) == 0


def test_long_ids_and_huge_numbers_are_refused(console: ConsoleClient) -> None:
    long_id = "a" * 37
    assert console.get(f"/console/coupons/{long_id}").status_code == 422
    for path in (f"/console/coupons/{long_id}/pause", f"/console/coupons/{long_id}/issue",
                 f"/console/invites/tasks/{long_id}/pause"):  # fmt: skip
        answer = console.post(path, data={"csrf": console.csrf, "target": "users"})
        assert answer.status_code == 422, path
    assert console.get("/console/coupons/nope").status_code == 404
    task = {"csrf": console.csrf, "name": "t", "goal": BIG, "template_id": "x" * 37}
    assert console.post("/console/invites/tasks", data=task).status_code == 422
    task["template_id"] = "x"
    answer = console.post("/console/invites/tasks", data=task)
    assert answer.status_code == 422 and "需邀请的新买家数" in answer.text
    offer = {"csrf": console.csrf, "name": "o", "sku_id": console.world.sku_id, "price": BIG}
    answer = console.post("/console/invites/offers", data=offer)
    assert answer.status_code == 422 and "专享价" in answer.text
    nul = {"csrf": console.csrf, "name": "o\x00", "sku_id": console.world.sku_id, "price": "1"}
    assert console.post("/console/invites/offers", data=nul).status_code == 422


def test_invite_tasks_offers_and_leaderboard(console: ConsoleClient, db_session: Session) -> None:
    world = console.world
    template = _make(console, db_session, name="邀请奖励", threshold="")
    task_form: dict[str, Any] = {
        "csrf": console.csrf, "name": "邀3位新买家", "goal": "3", "template_id": template.id,
        "starts_at": "2026-01-01T00:00", "ends_at": "2036-01-01T00:00",
    }  # fmt: skip
    assert console.post("/console/invites/tasks", data=task_form).status_code == 303
    task = db_session.scalars(select(InviteTask)).one()
    assert (task.merchant_id, task.goal, task.template_id) == (world.merchant_id, 3, template.id)
    bad = console.post("/console/invites/tasks", data={**task_form, "ends_at": "2025-01-01T00:00"})
    assert bad.status_code == 422 and "结束时间" in bad.text
    offer = {"csrf": console.csrf, "name": "新人专享 ¥1 购", "sku_id": world.sku_id, "price": "1"}
    assert console.post("/console/invites/offers", data=offer).status_code == 303
    row = db_session.scalars(select(NewUserOffer)).one()
    assert (row.sku_id, row.price_cents) == (world.sku_id, 100)
    assert _audits(db_session, "growth.task.create") == 1
    assert _audits(db_session, "growth.offer.create") == 1
    # Grants and claims, and one counted invite this week.
    inviter, invitee = (
        make_user(
            db_session,
        ),
        make_user(db_session),
    )
    db_session.add(TaskGrant(task_id=task.id, user_id=inviter.id, coupon_id="c-1"))
    db_session.add(NewUserClaim(offer_id=row.id, user_id=invitee.id, phone_key="p" * 64,
                                device_key="d" * 64))  # fmt: skip
    db_session.add(ReferralBinding(invitee_id=invitee.id, inviter_id=inviter.id, source="link",
                                   bound_at=utcnow() - timedelta(minutes=5)))  # fmt: skip
    sku = db_session.get(Sku, world.sku_id)
    assert sku is not None
    order = paid_order(db_session, sku, invitee.id, paid_at=utcnow() - timedelta(minutes=2),
                       cents=990)  # fmt: skip
    order.picked_up_at = utcnow() - timedelta(minutes=1)
    db_session.flush()
    page = console.get("/console/invites")
    assert page.status_code == 200
    assert f'data-task="{task.id}"' in page.text and "data-granted>1<" in page.text
    assert f'data-offer="{row.id}"' in page.text and "data-claimed>1<" in page.text
    assert "邀请 1 人" in page.text and (inviter.display_name or "?")[:1] + "**" in page.text
    paused = console.post(f"/console/invites/tasks/{task.id}/pause", data={"csrf": console.csrf})
    assert paused.status_code == 303
    db_session.refresh(task)
    assert task.active is False and _audits(db_session, "growth.task.update") == 1
