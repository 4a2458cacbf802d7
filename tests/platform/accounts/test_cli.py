"""`tuanbox users create` makes the first admin, who can then sign in with the password."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from tuanbox.accounts.services import verify_password
from tuanbox.cli import app
from tuanbox.db.engine import make_engine, make_session_factory


def test_create_admin_then_sign_in(
    fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database()
    monkeypatch.setenv("TUANBOX_DATABASE_URL", url)
    from tuanbox.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(
            app,
            ["users", "create", "--login", "root-admin"],
            input="s3cret-passw0rd!\ns3cret-passw0rd!\n",
        )
        assert ok.exit_code == 0, ok.output
        assert "created admin root-admin" in ok.output
        again = runner.invoke(
            app, ["users", "create", "--login", "root-admin", "--password", "another-passw0rd"]
        )
        assert again.exit_code == 1 and "CONFLICT" in again.output
        short = runner.invoke(app, ["users", "create", "--login", "x-admin", "--password", "short"])
        assert short.exit_code != 0
    finally:
        get_settings.cache_clear()
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        assert verify_password(session, "root-admin", "s3cret-passw0rd!").role == "admin"
    engine.dispose()
