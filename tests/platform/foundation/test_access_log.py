"""The real `tuanbox api` process keeps secrets in query strings out of its access log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.support import free_port, wait_until
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.logs import redact_query

SECRET = "s3cr3t-Sentinel-4f9c"


def test_access_log_of_tuanbox_api_never_holds_the_ops_hand_over_token(tmp_path: Path) -> None:
    settings = make_settings(log_format="json")
    token = issue_access_token(settings, Principal("ops-1", "ops"))
    port = free_port()
    env = {
        **os.environ,
        "TUANBOX_ENV": "test",
        "TUANBOX_LOG_FORMAT": "json",
        "TUANBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TUANBOX_SECRET_KEY": settings.secret_key.get_secret_value(),
        "TUANBOX_PII_KEY": settings.pii_key.get_secret_value(),
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": settings.payment_webhook_secret.get_secret_value(),
    }
    tuanbox = Path(sys.executable).parent / "tuanbox"
    # cwd=tmp_path: no developer's .env is read.
    proc = subprocess.Popen(
        [str(tuanbox), "api", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None  # died: stop waiting, fail below

        # A process that dies stops the wait at once; a live one may need a while to import
        # and migrate on a loaded machine (25 s at a load of 20 on two cores).
        wait_until(up, timeout=120, what="tuanbox api to answer /healthz")
        assert proc.poll() is None, proc.communicate(timeout=10)
        with httpx.Client(base_url=base, follow_redirects=False, timeout=5) as client:
            good = client.get("/ops/login", params={"token": token})
            assert good.status_code == 303 and good.headers["location"] == "/ops"
            bad = client.get("/ops/login", params={"token": SECRET, "next": "/ops"})
            assert bad.status_code == 401
            odd = client.get(f"/ops/login?x=1&TOKEN={SECRET}x&to%6Ben={SECRET}y&code={SECRET}z")
            assert odd.status_code in (200, 401)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    access = [line for line in err.splitlines() if "uvicorn.access" in line]
    assert len(access) >= 4, err  # access logging is on: the redaction is what we test
    assert SECRET not in err and token not in err
    assert any("/ops/login?token=[redacted]&next=/ops" in line for line in access), access


def test_redact_query_hides_sensitive_values_and_keeps_the_rest() -> None:
    assert redact_query("/ops/login?token=abc") == "/ops/login?token=[redacted]"
    assert redact_query("/a?page=2&status=open") == "/a?page=2&status=open"
    assert redact_query("/a") == "/a"
    out = redact_query("/a?Access_Token=1&to%6Ben=2&otp=3&password=4&api_key=5&sig=6&q=x y")
    assert out == (
        "/a?Access_Token=[redacted]&token=[redacted]&otp=[redacted]&password=[redacted]"
        "&api_key=[redacted]&sig=[redacted]&q=x+y"
    )
    # Whatever cannot be parsed cleanly is dropped, not echoed.
    assert "SECRET" not in redact_query("/a?token\x00=SECRET&token")
