"""Which client address `tuanbox api` sees behind a load balancer: X-Forwarded-For is believed
only from TUANBOX_TRUSTED_PROXIES, and then its rightmost untrusted address is the client.

Over real HTTP against the real process; the address the app saw is read from its access log
(the same ASGI client that per-IP limits, risk rules and payments read via ``client_ip``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError

from tests.conftest import make_settings
from tests.support import free_port, wait_until
from tuanbox.api.live import serve
from tuanbox.ratelimit.deps import client_ip

ACCESS = re.compile(r'(?P<client>[^ ]+):\d+ - "GET /healthz\?probe=(?P<probe>\d+) HTTP/[\d.]+" 200')


def _seen_clients(tmp_path: Path, trusted: str | None, forwarded: list[str]) -> list[str]:
    """Start `tuanbox api` with TUANBOX_TRUSTED_PROXIES=trusted (unset: None), send one
    request per X-Forwarded-For value from 127.0.0.1, and return the client each was logged
    with, in order."""
    settings = make_settings()
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
    env.pop("TUANBOX_TRUSTED_PROXIES", None)
    env.pop("FORWARDED_ALLOW_IPS", None)
    if trusted is not None:
        env["TUANBOX_TRUSTED_PROXIES"] = trusted
    tuanbox = Path(sys.executable).parent / "tuanbox"
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
                return proc.poll() is not None

        wait_until(up, timeout=120, what="tuanbox api to answer /healthz")
        assert proc.poll() is None, proc.communicate(timeout=10)
        with httpx.Client(base_url=base, timeout=5) as client:
            for i, value in enumerate(forwarded):
                r = client.get(f"/healthz?probe={i}", headers={"X-Forwarded-For": value})
                assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    seen: dict[int, str] = {}
    for line in err.splitlines():
        if "uvicorn.access" not in line or "probe=" not in line:
            continue
        # uvicorn's access line: '<client>:<port> - "GET /healthz?probe=N HTTP/1.1" 200'
        match = ACCESS.fullmatch(json.loads(line)["msg"])
        assert match, line
        seen[int(match["probe"])] = match["client"]
    assert sorted(seen) == list(range(len(forwarded))), err
    return [seen[i] for i in range(len(forwarded))]


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    # Default (nothing trusted), and a list that does not hold the peer 127.0.0.1.
    for trusted in (None, "10.0.0.0/8, 192.0.2.1"):
        seen = _seen_clients(tmp_path, trusted, ["203.0.113.9", "198.51.100.7, 203.0.113.9"])
        assert seen == ["127.0.0.1", "127.0.0.1"], trusted


def test_behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client(
    tmp_path: Path,
) -> None:
    seen = _seen_clients(
        tmp_path,
        "127.0.0.0/8, 10.1.2.3",
        [
            "203.0.113.9",
            # A client-forged first entry does not win: the LB appended the real peer.
            "198.51.100.66, 203.0.113.9",
            # Trusted hops (another proxy of ours) are skipped from the right.
            "198.51.100.66, 203.0.113.10, 10.1.2.3",
        ],
    )
    assert seen == ["203.0.113.9", "203.0.113.9", "203.0.113.10"]


def test_trusted_proxies_are_parsed_and_a_wildcard_is_refused() -> None:
    assert make_settings(trusted_proxies="10.0.0.1, 10.0.0.0/8,::1").trusted_proxies == [
        "10.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    assert make_settings().trusted_proxies == []
    for bad in ("*", "lb.internal", "10.0.0.0/33"):
        with pytest.raises(ValidationError):
            make_settings(trusted_proxies=bad)


@pytest.mark.parametrize(("trusted", "client"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")])
def test_live_serve_trusts_the_same_proxies(trusted: str, client: str) -> None:
    """`tuanbox.api.live.serve` (tests, the ops snapshot) applies the same setting."""
    app = FastAPI()
    app.state.settings = make_settings(trusted_proxies=trusted)

    @app.get("/ip")
    def ip(request: Request) -> str:
        return client_ip(request)

    with serve(app) as base:
        r = httpx.get(f"{base}/ip", headers={"X-Forwarded-For": "198.51.100.66, 203.0.113.9"})
    assert r.json() == client
