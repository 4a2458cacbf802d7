"""Sign in on the page with phone and code: cookies, refresh, sign-out, forged posts refused."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tuanbox.crypto import PiiCipher
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

PHONE = "13800138123"
SAME = {"Origin": "http://testserver"}


def last_code(db: Session, settings: Settings, phone: str) -> str:
    phone_hash = PiiCipher(settings).blind_index("+86" + phone)
    note = db.scalars(
        sa.select(Notification)
        .where(Notification.recipient_hash == phone_hash, Notification.template == "otp")
        .order_by(Notification.id.desc())
    ).first()
    assert note is not None
    return str(secrets_of(PiiCipher(settings), note)["code"])


def sign_in(client: TestClient, db: Session, settings: Settings, next_: str = "/") -> None:
    sent = client.post("/signin/code", data={"phone": PHONE, "next": next_}, headers=SAME)
    assert sent.status_code == 200, sent.text
    code = last_code(db, settings, PHONE)
    done = client.post("/signin", data={"phone": PHONE, "code": code, "next": next_},
                       headers=SAME, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text
    assert done.headers["location"] == next_


def test_phone_and_code_sign_in_sets_httponly_lax_cookies(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    page = client.get("/signin?next=/c/abc")
    assert page.status_code == 200
    assert 'name="phone"' in page.text and "手机号" in page.text  # Chinese by default
    sent = client.post("/signin/code", data={"phone": PHONE, "next": "/c/abc"}, headers=SAME)
    assert 'name="code"' in sent.text and "验证码已发送" in sent.text
    code = last_code(db_session, settings, PHONE)
    done = client.post("/signin", data={"phone": PHONE, "code": code, "next": "/c/abc"},
                       headers=SAME, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/c/abc"
    cookies = done.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith(shop_session.ACCESS + "="))
    refresh = next(c for c in cookies if c.startswith(shop_session.REFRESH + "="))
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/signin" in refresh  # the refresh token travels to the sign-in paths only
    home = client.get("/")
    assert 'action="/signin/out"' in home.text  # signed in: the header offers sign-out


def test_wrong_code_is_a_4xx_page_in_the_shoppers_language(
    client: TestClient, db_session: Session
) -> None:
    client.post("/signin/code", data={"phone": PHONE}, headers=SAME)
    client.cookies.set("tuanbox_lang", "en")
    wrong = client.post("/signin", data={"phone": PHONE, "code": "000000"}, headers=SAME)
    assert wrong.status_code == 401
    assert "That code is wrong or has expired" in wrong.text and 'role="alert"' in wrong.text
    bad_phone = client.post("/signin/code", data={"phone": "12"}, headers=SAME)
    assert bad_phone.status_code == 422
    assert "does not look like a mobile phone number" in bad_phone.text


def test_cross_site_and_originless_posts_are_refused(client: TestClient) -> None:
    for headers in ({"Origin": "https://evil.example"}, {}, {"Origin": "null"}):
        for path, data in (("/signin/code", {"phone": PHONE}), ("/lang", {"lang": "en"}),
                           ("/signin", {"phone": PHONE, "code": "123456"})):  # fmt: skip
            response = client.post(path, data=data, headers=headers)
            assert response.status_code == 403, (path, headers, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    referer = client.post("/lang", data={"lang": "en"}, follow_redirects=False,
                          headers={"Referer": "http://testserver/signin"})  # fmt: skip
    assert referer.status_code == 303


def test_refresh_rotates_and_sign_out_revokes_the_family(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    sign_in(client, db_session, settings)
    old_refresh = client.cookies.get(shop_session.REFRESH)
    client.cookies.delete(shop_session.ACCESS)  # the access token ran out
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/signin/refresh?next=/"
    back = client.get(home.headers["location"], follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/"
    assert client.cookies.get(shop_session.REFRESH) not in (None, old_refresh)
    assert 'action="/signin/out"' in client.get("/").text
    out = client.post("/signin/out", headers=SAME, follow_redirects=False)
    assert out.status_code == 303
    assert client.cookies.get(shop_session.ACCESS) is None
    # The revoked family cannot come back through the refresh path.
    client.cookies.set(shop_session.REFRESH, old_refresh or "", path="/signin")
    again = client.get("/signin/refresh?next=/", follow_redirects=False)
    assert again.headers["location"].startswith("/signin?next=")


def test_next_never_leaves_the_site(client: TestClient) -> None:
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        response = client.post("/lang", data={"lang": "en", "next": evil}, headers=SAME,
                               follow_redirects=False)  # fmt: skip
        assert response.headers["location"] == "/", evil
    form = client.get("/signin?next=//evil.example").text
    assert '<input type="hidden" name="next" value="/">' in form


def test_language_switch_and_accept_language(client: TestClient) -> None:
    assert "今日必拼" in client.get("/").text
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert "Today's picks" in english.text and 'lang="en"' in english.text
    switched = client.post("/lang", data={"lang": "en", "next": "/signin"}, headers=SAME,
                           follow_redirects=False)  # fmt: skip
    assert switched.headers["location"] == "/signin"
    assert "Sign in with your phone" in client.get("/signin").text
    refused = client.post("/lang", data={"lang": "fr"}, headers=SAME)
    assert refused.status_code == 422
