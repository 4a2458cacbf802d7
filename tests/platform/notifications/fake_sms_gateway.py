"""A local stand-in for Aliyun Dysms `SendSms` on a real socket: checks the ACS3-HMAC-SHA256
signature the way the service documents it (written here independently of our client),
records what it accepted, and can answer 5xx, hang past the client's timeout, or refuse.

Like the real service it has no idempotency: `OutId` is recorded (the real one echoes it in
delivery receipts) but a request repeated with the same `OutId` is a second text (Aliyun's
SendSms reference: "does not support idempotence"), so a test cannot pass by the gateway
deduplicating what our outbox must not repeat."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import free_port

KEY_ID = "LTAI-test-key-id"
SECRET = "test-access-key-secret-" + "s" * 16
SIGN_NAME = "团盒"
TEMPLATES = {"otp": "SMS_0001", "pickup_ready": "SMS_0002", "erasure_code": "SMS_0003"}
REQUIRED_SIGNED = {
    "host", "content-type", "x-acs-action", "x-acs-version", "x-acs-date",
    "x-acs-signature-nonce", "x-acs-content-sha256",
}  # fmt: skip


@dataclass
class Received:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, Any]
    out_id: str | None = None


@dataclass
class FakeSmsGateway:
    key_id: str = KEY_ID
    secret: str = SECRET
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    # Scripted trouble, consumed in order: HTTP statuses to answer, requests to hold.
    fail_with: list[int] = field(default_factory=list)
    hang: int = 0
    # The `Code` of an accepted, well-signed request (e.g. isv.MOBILE_NUMBER_ILLEGAL).
    answer_code: str = "OK"
    nonces: set[str] = field(default_factory=set)
    refusals: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"

    # --- the signature, as the service documents it --------------------------------------

    def check_signature(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> str:
        """'' when the request is signed right, else the service's error code."""
        auth = headers.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if algorithm != "ACS3-HMAC-SHA256" or parts.get("Credential") != self.key_id:
            return "InvalidAccessKeyId.NotFound"
        signed = parts.get("SignedHeaders", "").split(";")
        if not set(signed) >= REQUIRED_SIGNED or signed != sorted(signed):
            return "SignatureDoesNotMatch"
        body_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != body_hash:
            return "SignatureDoesNotMatch"
        url = urlsplit(target)
        canonical = "\n".join(
            [
                method,
                url.path or "/",
                url.query,
                "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
                ";".join(signed),
                body_hash,
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "SignatureDoesNotMatch"
        nonce = headers.get("x-acs-signature-nonce", "")
        if nonce in self.nonces:
            return "SignatureNonceUsed"
        self.nonces.add(nonce)
        if headers.get("x-acs-action") != "SendSms" or headers.get("x-acs-version") != "2017-05-25":
            return "InvalidAction.NotFound"
        return ""

    # --- HTTP --------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        body = req.rfile.read(int(req.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in req.headers.items()}
        request_id = str(uuid.uuid4())
        with self._lock:
            self.attempts += 1
            hang = self.hang > 0
            self.hang -= 1 if hang else 0
            status = self.fail_with.pop(0) if self.fail_with and not hang else 200
        if hang:
            self._release.wait(timeout=10)  # longer than the client waits
            return 500, {"Code": "ServiceUnavailable", "RequestId": request_id}
        if status >= 500:
            return status, {"Code": "ServiceUnavailable", "RequestId": request_id}
        with self._lock:
            error = self.check_signature("POST", req.path, headers, body)
        if error:
            self.refusals.append(error)
            return 400, {"Code": error, "Message": "Specified signature is not matched.",
                         "RequestId": request_id}  # fmt: skip
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if self.answer_code != "OK":
            return 200, {"Code": self.answer_code, "Message": f"refused {form.get('PhoneNumbers')}",
                         "RequestId": request_id}  # fmt: skip
        with self._lock:
            self.received.append(
                Received(
                    phone=form["PhoneNumbers"],
                    sign_name=form["SignName"],
                    template_code=form["TemplateCode"],
                    params=json.loads(form["TemplateParam"]),
                    out_id=form.get("OutId"),
                )
            )
            biz_id = f"{len(self.received):06d}^0"
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def __enter__(self) -> FakeSmsGateway:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, answer = fake._handle(self)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
