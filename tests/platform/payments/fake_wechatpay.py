"""A local WeChat Pay API v3 gateway for tests: WeChat's wire format, signatures and encryption.

It is a real HTTP server on a loopback port. It checks every request's
`Authorization: WECHATPAY2-SHA256-RSA2048 …` against the merchant certificate, answers the
endpoints the adapter uses (`/v3/certificates`, `/v3/pay/transactions/h5`,
`/v3/refund/domestic/refunds`) with responses signed by its platform key, keeps refunds
idempotent per `out_refund_no` as WeChat does, and builds notifications (signed, resource
AES-256-GCM encrypted under the APIv3 key) that it can POST to a notify URL.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from tests.support import free_port

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_AUTH = re.compile(r'(\w+)="([^"]*)"')


def _cert(key: rsa.RSAPrivateKey, name: str, serial: int) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@dataclass
class Party:
    """A key pair with its certificate, as WeChat issues them to merchants and to itself."""

    name: str
    key: rsa.RSAPrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = _cert(self.key, self.name, x509.random_serial_number())

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "X")

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, message: str) -> str:
        raw = self.key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()


def encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    nonce = secrets.token_hex(6)  # WeChat's nonces are 12 ASCII characters
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "associated_data": associated_data,
        "nonce": nonce,
        "ciphertext": base64.b64encode(sealed).decode(),
    }


def signed_headers(signer: Party, body: str, *, serial: str | None = None) -> dict[str, str]:
    """Wechatpay-* headers over `body`, as WeChat signs responses and notifications."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial or signer.serial,
        "Wechatpay-Signature": signer.sign(f"{timestamp}\n{nonce}\n{body}\n"),
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        "Content-Type": "application/json",
    }


class FakeWeChatPay:
    """The gateway: one merchant, one app, its own platform certificate."""

    def __init__(self, *, mchid: str = "1900000109", appid: str = "wxd678efh567hg6787") -> None:
        self.mchid, self.appid = mchid, appid
        self.merchant = Party("tuanbox merchant")
        self.platform = Party("Tenpay.com Root CA (fake)")
        self.apiv3_key = secrets.token_hex(16)  # 32 ASCII characters, as WeChat's are
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.transactions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, int]] = []  # method, path, status answered
        self.fail_next = 0  # answer this many requests 500 SYSTEM_ERROR before doing anything
        self.lose_answers = 0  # do this many refunds, then answer 500 as if the reply was lost
        self.refund_status = "PROCESSING"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- running ------------------------------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[FakeWeChatPay]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway._handle(self, "GET")

            def do_POST(self) -> None:
                gateway._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)

    # -- what the shopper and WeChat do -------------------------------------------------------
    def pay(self, out_trade_no: str) -> tuple[bytes, dict[str, str]]:
        """The shopper pays the order in WeChat: its TRANSACTION.SUCCESS notification."""
        with self._lock:
            trade = self.transactions[out_trade_no]
            trade["trade_state"] = "SUCCESS"
            trade.setdefault("transaction_id", "42000" + str(uuid.uuid4().int)[:23])
        resource = {
            "mchid": self.mchid,
            "appid": trade["appid"],
            "out_trade_no": out_trade_no,
            "transaction_id": trade["transaction_id"],
            "trade_type": "MWEB",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "success_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": trade["amount"]["total"],
                "payer_total": trade["amount"]["total"],
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
        return self.notification("TRANSACTION.SUCCESS", resource, "transaction")

    def refund_done(
        self, out_refund_no: str, status: str = "SUCCESS"
    ) -> tuple[bytes, dict[str, str]]:
        """The refund reached the shopper (or not): its REFUND.* notification."""
        with self._lock:
            refund = self.refunds[out_refund_no]
            refund["status"] = status
        resource = {
            "mchid": self.mchid,
            "out_trade_no": refund["out_trade_no"],
            "transaction_id": refund["transaction_id"],
            "out_refund_no": out_refund_no,
            "refund_id": refund["refund_id"],
            "refund_status": status,
            "user_received_account": "招商银行信用卡0403",
            "amount": {
                "total": refund["amount"]["total"],
                "refund": refund["amount"]["refund"],
                "payer_total": refund["amount"]["total"],
                "payer_refund": refund["amount"]["refund"],
            },
        }
        return self.notification(f"REFUND.{status}", resource, "refund")

    def notification(
        self,
        event_type: str,
        resource: dict[str, Any],
        original_type: str,
        *,
        apiv3_key: str | None = None,
        signer: Party | None = None,
        serial: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A notification as WeChat POSTs it; the keyword arguments forge broken ones."""
        sealed = encrypt(apiv3_key or self.apiv3_key, json.dumps(resource), original_type)
        body = json.dumps(
            {
                "id": str(uuid.uuid4()),
                "create_time": datetime.now(UTC).isoformat(timespec="seconds"),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "通知",
                "resource": {"original_type": original_type, **sealed},
            },
            ensure_ascii=False,
        )
        headers = signed_headers(
            signer or self.platform, body, serial=serial or self.platform.serial
        )
        return body.encode(), headers

    def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def refunded_total(self, out_trade_no: str) -> int:
        with self._lock:
            return sum(
                r["amount"]["refund"]
                for r in self.refunds.values()
                if r["out_trade_no"] == out_trade_no
            )

    # -- the API ------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length).decode() if length else ""
        status, answer = self._answer(req, method, body)
        self.requests.append((method, req.path.split("?")[0], status))
        text = json.dumps(answer, ensure_ascii=False)
        headers = signed_headers(self.platform, text) if status < 300 else {}
        headers["Content-Type"] = "application/json; charset=utf-8"
        raw = text.encode()
        req.send_response(status)
        for name, value in headers.items():
            req.send_header(name, value)
        req.send_header("Request-ID", uuid.uuid4().hex)
        req.send_header("Content-Length", str(len(raw)))
        req.end_headers()
        req.wfile.write(raw)

    def _answer(
        self, req: BaseHTTPRequestHandler, method: str, body: str
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"code": "SYSTEM_ERROR", "message": "系统错误"}
        problem = self._check_authorization(
            req.headers.get("Authorization", ""), method, req.path, body
        )
        if problem:
            return 401, {"code": "SIGN_ERROR", "message": problem}
        path = req.path.split("?")[0]
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            return 400, {"code": "PARAM_ERROR", "message": "body is not JSON"}
        if method == "GET" and path == "/v3/certificates":
            return 200, self._certificates()
        if method == "POST" and path == "/v3/pay/transactions/h5":
            return self._h5(doc)
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(doc)
        return 404, {"code": "RESOURCE_NOT_EXISTS", "message": f"no {method} {path}"}

    def _check_authorization(self, header: str, method: str, path: str, body: str) -> str | None:
        scheme, _, params = header.partition(" ")
        if scheme != SIGNATURE_TYPE:
            return "Authorization scheme is not WECHATPAY2-SHA256-RSA2048"
        fields = dict(_AUTH.findall(params))
        if fields.get("mchid") != self.mchid:
            return "unknown mchid"
        if fields.get("serial_no", "").upper() != self.merchant.serial:
            return "serial_no is not the merchant certificate's"
        if abs(time.time() - int(fields.get("timestamp", "0"))) > 300:
            return "timestamp too far off"
        message = (
            f"{method}\n{path}\n{fields['timestamp']}\n{fields.get('nonce_str', '')}\n{body}\n"
        )
        public_key = self.merchant.cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        try:
            public_key.verify(
                base64.b64decode(fields.get("signature", "")),
                message.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return "signature does not verify with the merchant certificate"
        return None

    def _certificates(self) -> dict[str, Any]:
        cert = self.platform.cert
        return {
            "data": [
                {
                    "serial_no": self.platform.serial,
                    "effective_time": cert.not_valid_before_utc.isoformat(),
                    "expire_time": cert.not_valid_after_utc.isoformat(),
                    "encrypt_certificate": encrypt(
                        self.apiv3_key, self.platform.cert_pem, "certificate"
                    ),
                }
            ]
        }

    def _h5(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            no, total = str(doc["out_trade_no"]), doc["amount"]["total"]
            assert doc["mchid"] == self.mchid and doc["appid"] == self.appid
            assert doc["description"] and doc["notify_url"].startswith("http")
            assert doc["scene_info"]["payer_client_ip"] and doc["scene_info"]["h5_info"]["type"]
            assert isinstance(total, int) and total > 0 and 6 <= len(no) <= 32
        except (KeyError, TypeError, AssertionError):
            return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
        with self._lock:
            trade = self.transactions.get(no)
            if trade is not None and trade["amount"]["total"] != total:
                return 400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}
            if trade is not None and trade["trade_state"] == "SUCCESS":
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            if trade is None:
                self.transactions[no] = trade = {**doc, "trade_state": "NOTPAY"}
        prepay = "wx" + secrets.token_hex(14)
        return 200, {"h5_url": f"{self.url}/pay/mweb?prepay_id={prepay}&package=2150917749"}

    def _refund(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            no, trade_no = str(doc["out_refund_no"]), str(doc["out_trade_no"])
            amount = doc["amount"]
            assert isinstance(amount["refund"], int) and amount["refund"] > 0
            assert amount["currency"] == "CNY"
        except (KeyError, TypeError, AssertionError):
            return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
        with self._lock:
            refund = self.refunds.get(no)
            if refund is None:
                trade = self.transactions.get(trade_no)
                if trade is None:
                    return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
                if trade["trade_state"] != "SUCCESS":
                    return 400, {"code": "INVALID_REQUEST", "message": "订单未支付"}
                if amount["total"] != trade["amount"]["total"]:
                    return 400, {"code": "PARAM_ERROR", "message": "订单金额与退款金额不一致"}
                already = sum(
                    r["amount"]["refund"]
                    for r in self.refunds.values()
                    if r["out_trade_no"] == trade_no
                )
                if already + amount["refund"] > amount["total"]:
                    return 400, {"code": "NOT_ENOUGH", "message": "退款金额超过订单可退金额"}
                refund = self.refunds[no] = {
                    "refund_id": "50" + str(uuid.uuid4().int)[:27],
                    "out_refund_no": no,
                    "out_trade_no": trade_no,
                    "transaction_id": trade["transaction_id"],
                    "status": self.refund_status,
                    "amount": {"refund": amount["refund"], "total": amount["total"]},
                }
            if self.lose_answers > 0:
                self.lose_answers -= 1
                return 500, {"code": "SYSTEM_ERROR", "message": "系统超时"}
        return 200, {
            **{k: refund[k] for k in ("refund_id", "out_refund_no", "out_trade_no", "status")},
            "transaction_id": refund["transaction_id"],
            "channel": "ORIGINAL",
            "user_received_account": "招商银行信用卡0403",
            "create_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "funds_account": "AVAILABLE",
            "amount": {
                **refund["amount"],
                "payer_total": refund["amount"]["total"],
                "payer_refund": refund["amount"]["refund"],
                "settlement_refund": refund["amount"]["refund"],
                "settlement_total": refund["amount"]["total"],
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
