"""The upcoming flash sale's "remind me": the form makes one row however often it is sent, a
way to cancel, the shopper's own state from a small fetch (the page itself is cached)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.flashsale.models import Reminder
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}


def _rows(db: Session, sale_id: str) -> list[str]:
    return list(db.scalars(select(Reminder.user_id).where(Reminder.sale_id == sale_id)))


def test_remind_me_once_then_cancel(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    sale = catalogue.upcoming_sale_id
    here = f"/f/{sale}"
    page = client.get(here).text
    assert f'action="/f/{sale}/remind"' in page and "开抢提醒我" in page
    assert f'data-remind="/f/{sale}/remind.json"' in page
    # Signed out: sent to sign in and back; nothing stored.
    away = client.post(f"{here}/remind", headers=SAME, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == f"/signin?next={here}"
    assert client.get(f"{here}/remind.json").json() == {"on": False}
    assert _rows(db_session, sale) == []

    shopper = catalogue.shoppers[1]
    client.cookies.set(shop_session.ACCESS, token_for(settings, shopper))
    assert (
        client.post(f"{here}/remind", headers={"Origin": "https://evil.example"}).status_code == 403
    )
    assert client.post(f"{here}/remind").status_code == 403  # no Origin nor Referer
    assert _rows(db_session, sale) == []

    for _ in range(2):  # the second press says the same and stores nothing more
        asked = client.post(f"{here}/remind", headers=SAME, follow_redirects=False)
        assert asked.status_code == 303 and asked.headers["location"] == f"{here}?r=on"
        answer = client.get(asked.headers["location"])
        assert "开抢前 10 分钟会提醒你。" in answer.text
        assert f'action="/f/{sale}/remind/cancel"' in answer.text
    assert _rows(db_session, sale) == [shopper]
    state = client.get(f"{here}/remind.json")
    assert state.json() == {"on": True} and "no-store" in state.headers["cache-control"]

    # The cached page is the same for everyone: nothing of this shopper in it.
    cached = client.get(here)
    assert cached.headers["x-page-cache"] == "hit"
    assert "data-remind-on hidden" in cached.text and "data-remind-cancel hidden" in cached.text
    other = catalogue.shoppers[2]
    client.cookies.set(shop_session.ACCESS, token_for(settings, other))
    assert client.get(f"{here}/remind.json").json() == {"on": False}

    client.cookies.set(shop_session.ACCESS, token_for(settings, shopper))
    english = {**SAME, "Accept-Language": "en"}
    gone = client.post(f"{here}/remind/cancel", headers=english)
    assert gone.status_code == 200 and "Reminder cancelled." in gone.text
    assert _rows(db_session, sale) == []
    assert client.get(f"{here}/remind.json").json() == {"on": False}


def test_remind_refusals(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    client.cookies.set(shop_session.ACCESS, token_for(settings, catalogue.shoppers[0]))
    live = catalogue.live_sale_id
    assert f'action="/f/{live}/remind"' not in client.get(f"/f/{live}").text
    started = client.post(f"/f/{live}/remind", headers=SAME, follow_redirects=False)
    assert started.headers["location"] == f"/f/{live}?e=SALE_STARTED"
    words = client.get(started.headers["location"], headers={"Accept-Language": "en"}).text
    assert "This sale has already started." in words
    assert _rows(db_session, live) == []
    missing = client.post("/f/no-such-sale/remind", headers=SAME)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    for bad in ("/f/nope%00/remind", f"/f/{'9' * 40}/remind", "/f/x%27--/remind/cancel"):
        assert client.post(bad, headers=SAME).status_code in (400, 404, 422)
    assert client.get("/f/nope%00/remind.json").status_code in (400, 404, 422)
    # Someone else's role: staff get no reminder rows.
    client.cookies.set(shop_session.ACCESS, token_for(settings, catalogue.shoppers[0], "ops"))
    staff = client.post(f"/f/{catalogue.upcoming_sale_id}/remind", headers=SAME,
                        follow_redirects=False)  # fmt: skip
    assert staff.headers["location"].startswith("/signin")
    assert _rows(db_session, catalogue.upcoming_sale_id) == []
