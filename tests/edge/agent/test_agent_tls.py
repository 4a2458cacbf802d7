"""MQTT over TLS with the locker's own CA file, against our own mosquitto TLS listener."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.agent.checks import check_broker
from edge.agent.mqtt import MqttLink
from edge.agent.store import Store
from tests.edge.agent.support import OwnMosquitto, agent_settings, wait_until


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _make_pki(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = root / "ca.pem", root / "server.pem", root / "server.key"
    ca_file.write_bytes(_pem(ca))
    cert_file.write_bytes(_pem(cert))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def test_agent_connects_over_tls_and_refuses_an_unknown_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_file, cert_file, key_file = _make_pki(pki)
    broker = OwnMosquitto(
        tmp_path / "mosquitto",
        auth=f"allow_anonymous true\ncafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n",
    )
    broker.start()
    settings = agent_settings(tmp_path, mqtt_port=broker.port, mqtt_tls=True, mqtt_ca_file=ca_file)
    store = Store(settings.db_path)
    link = MqttLink(settings, store, boot_id="tls", on_command=lambda _p: True).start()
    try:
        wait_until(lambda: link.connected, 15, "a TLS connection")
        assert "127.0.0.1" in check_broker(settings, timeout=5)
        # a locker trusting another CA must not talk to this broker
        other_ca, _, _ = _make_pki(tmp_path)
        stranger = settings.model_copy(update={"mqtt_ca_file": other_ca})
        with pytest.raises(OSError, match=r"(?i)certificate"):
            check_broker(stranger, timeout=3)
    finally:
        link.stop()
        store.close()
        broker.stop()
