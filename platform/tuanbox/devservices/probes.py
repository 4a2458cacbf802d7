"""Small protocol-level probes: does a service really answer, not just accept a socket."""

from __future__ import annotations

import socket

import httpx


def tcp(host: str, port: int, timeout: float = 1.0) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def postgres(host: str, port: int, timeout: float = 1.0) -> None:
    # SSLRequest: a live server answers one byte, 'S' or 'N'.
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        if sock.recv(1) not in (b"S", b"N"):
            raise ConnectionError("no PostgreSQL handshake")


def redis(host: str, port: int, timeout: float = 1.0) -> None:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        if not sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):
            raise ConnectionError("no Redis PONG")


def mqtt(host: str, port: int, timeout: float = 1.0) -> None:
    # CONNECT (MQTT 3.1.1, clean session, client id "probe"); any CONNACK means a broker.
    packet = b"\x10\x11\x00\x04MQTT\x04\x02\x00\x05\x00\x05probe"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(packet)
        if sock.recv(4)[:1] != b"\x20":
            raise ConnectionError("no MQTT CONNACK")
        sock.sendall(b"\xe0\x00")


def influxdb(url: str, timeout: float = 1.0) -> str:
    try:
        resp = httpx.get(f"{url}/ping", timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConnectionError(str(exc)) from exc
    if resp.status_code != 204:
        raise ConnectionError(f"/ping answered {resp.status_code}")
    return resp.headers.get("X-Influxdb-Version", "?")


def evm(url: str, timeout: float = 1.0) -> str:
    try:
        resp = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "web3_clientVersion", "params": []},
            timeout=timeout,
        )
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise ConnectionError(str(exc)) from exc
    return str(resp.json()["result"])
