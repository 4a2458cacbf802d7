"""The invites page says what counts: of the friends bound to the shopper, how many count
(first order picked up, nothing refunded), each task's progress by that count, and this
week's leaderboard with the shopper's own place; both languages (real PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.coupons.support import SYSTEM, refund_now, template
from tests.platform.factories import make_user
from tests.platform.groupbuy.factories import token_for
from tests.platform.growth.support import invitee_with_order, new_sku
from tuanbox.db.base import utcnow
from tuanbox.growth.invite_tasks import create_task
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh"}


def _text(html: str, attr: str) -> str:
    found = re.search(rf"<[^>]*\b{attr}\b[^>]*>([^<]*)<", html)
    assert found, f"no [{attr}] on the page"
    return found.group(1).strip()


def test_invites_page_counts_only_friends_who_count(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ten = template(db_session, name="¥10 no threshold", amount_off_cents=1000, per_user_limit=5)
    create_task(
        db_session, SYSTEM, name="invite 3", goal=3, template_id=ten.id,
        starts_at=utcnow() - timedelta(days=1), ends_at=utcnow() + timedelta(days=7),
        merchant_id=None,
    )  # fmt: skip
    sku, inviter = new_sku(db_session), make_user(db_session)
    invitee_with_order(db_session, settings, inviter, sku)  # counts
    invitee_with_order(db_session, settings, inviter, sku, picked_up=False)  # not yet
    _, refunded = invitee_with_order(db_session, settings, inviter, sku)
    refund_now(db_session, settings, refunded, 1, "part")  # taken back
    db_session.flush()

    client.cookies.set(shop_session.ACCESS, token_for(settings, inviter.id))
    page = client.get("/me/invites", headers=EN)
    assert page.status_code == 200
    assert _text(page.text, "data-counted") == "1 friends"
    assert _text(page.text, "data-invitees") == "3 friends joined through your link"
    assert "1 of 3 friends" in page.text
    mine = re.search(r'<li aria-current="true">([^<]*)</li>', page.text)
    assert mine and "(you)" in mine.group(1) and "1 friends" in mine.group(1)
    zh = client.get("/me/invites", headers=ZH).text
    assert _text(zh, "data-counted") == "1 位好友"
    assert _text(zh, "data-invitees") == "3 位好友通过你的链接加入"
