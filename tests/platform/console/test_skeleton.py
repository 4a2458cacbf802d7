"""The console's foundation: sign-in (limits, lockout, staff only), the cookie, CSRF, the
scoping dependency, the base layout in both languages, error pages and assets."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.platform.console.conftest import STAFF_PASSWORD, ConsoleClient, ConsoleWorld
from tests.platform.factories import auth_header
from tuanbox.accounts.models import User
from tuanbox.console import auth
from tuanbox.settings import Settings


def test_signed_out_page_load_goes_to_sign_in(client: TestClient) -> None:
    response = client.get("/console?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/signin?next=/console%3Fx%3D1"
    page = client.get("/console/signin?next=/console/products")
    assert page.status_code == 200
    assert 'name="password"' in page.text and "员工登录" in page.text


def test_sign_in_sets_a_strict_httponly_cookie_and_shows_the_nav(
    client: TestClient, console_world: ConsoleWorld
) -> None:
    response = client.post(
        "/console/signin",
        data={"login": console_world.staff.login, "password": STAFF_PASSWORD, "next": "/console"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # http in tests; https public URLs get Secure (below)
    home = client.get("/console", headers={"Accept-Language": "en"})
    assert home.status_code == 200
    for label in ("Products", "Campaigns", "Orders", "Reports", "Reviews", "Credentials"):
        assert f">{label}</a>" in home.text
    zh = client.get("/console", headers={"Accept-Language": "zh-CN"})
    assert ">商品</a>" in zh.text and ">资质</a>" in zh.text
    assert 'name="csrf"' in home.text  # the sign-out form carries the token


def test_cookie_is_secure_behind_https(settings: Settings) -> None:
    from fastapi import Response

    response = Response()
    auth.set_cookie(response, settings.model_copy(update={"public_base_url": "https://x.cn"}), "t")
    assert "Secure" in response.headers["set-cookie"]


def test_sign_in_refuses_wrong_password_and_other_roles_alike(
    client: TestClient, console_world: ConsoleWorld, db_session: object
) -> None:
    from tests.platform.factories import make_user

    ops = make_user(db_session, "ops")  # type: ignore[arg-type]
    answers = []
    for login, password in (
        (console_world.staff.login, "wrong"),
        (ops.login, STAFF_PASSWORD),
        ("nobody", STAFF_PASSWORD),
    ):
        response = client.post(
            "/console/signin",
            data={"login": login, "password": password},
            headers={"Accept-Language": "en"},
            follow_redirects=False,
        )
        answers.append((response.status_code, "Wrong login or password." in response.text))
        assert auth.COOKIE not in response.headers.get("set-cookie", "")
    assert answers == [(401, True)] * 3


def test_sign_in_locks_out_like_the_api(
    client: TestClient, console_world: ConsoleWorld, settings: Settings
) -> None:
    login = console_world.staff.login
    for _ in range(settings.signin_max_failures):
        client.post("/console/signin", data={"login": login, "password": "nope"})
    locked = client.post(
        "/console/signin", data={"login": login, "password": STAFF_PASSWORD}, follow_redirects=False
    )
    assert locked.status_code == 401  # the right password, but the login is locked


def test_sign_in_from_another_origin_is_refused(
    client: TestClient, console_world: ConsoleWorld
) -> None:
    response = client.post(
        "/console/signin",
        data={"login": console_world.staff.login, "password": STAFF_PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_post_without_csrf_token_is_refused(console: ConsoleClient) -> None:
    refused = console.post("/console/signout", data={}, headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "Reload the page" in refused.text or "刷新页面" in refused.text
    wrong = console.post("/console/signout", data={"csrf": "0" * 64})
    assert wrong.status_code == 403
    cross = console.post(
        "/console/signout", data={"csrf": console.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    ok = console.post("/console/signout", data={"csrf": console.csrf})
    assert ok.status_code == 303
    assert f'{auth.COOKIE}=""' in ok.headers["set-cookie"]


def test_other_roles_are_refused(
    console_as: Callable[[User], ConsoleClient],
    console_world: ConsoleWorld,
    client: TestClient,
    settings: Settings,
) -> None:
    shopper = console_as(console_world.shopper)
    assert shopper.get("/console").status_code == 403
    bearer = client.get("/console", headers=auth_header(settings, console_world.shopper))
    assert bearer.status_code == 403
    staff = client.get("/console", headers=auth_header(settings, console_world.staff))
    assert staff.status_code == 200
    assert (
        client.post("/console/signout", follow_redirects=False).status_code == 303
    )  # no session: nothing to clear


def test_static_assets_are_served_by_the_app(client: TestClient) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/console/static/../settings.py").status_code == 404
    assert client.get("/console/static/nothing.css").status_code == 404


def test_catalogs_are_in_step() -> None:
    from tuanbox.console.catalogs import problems

    assert problems() == []
