"""Our own anvil (a private chain we may reorg and stop mining), and chain clients on it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from web3 import Web3

from tests.support import free_port
from traceability.chain import ChainClient
from traceability.settings import ANVIL_DEV_KEY, TraceSettings

REPO = Path(__file__).resolve().parents[2]
ANVIL_CANDIDATES = [REPO / "node_modules" / ".bin" / "anvil"]
# anvil's second well-known dev account: a funded address that is NOT on the allow-list.
OTHER_DEV_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class Anvil:
    """A running anvil process and raw JSON-RPC access to its cheat codes."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process
        self.w3 = Web3(Web3.HTTPProvider(url))

    def rpc(self, method: str, *params: Any) -> Any:
        reply = requests.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", on)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    binary = next((p for p in ANVIL_CANDIDATES if p.exists()), None)
    if binary is None:
        pytest.fail("anvil binary missing: run `npm ci` (package.json pins @foundry-rs/anvil)")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--chain-id", "31337", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = Anvil(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 20
    while True:
        try:
            node.rpc("eth_chainId")
            break
        except (requests.ConnectionError, RuntimeError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"anvil did not start on port {port}")
            time.sleep(0.05)  # polling a starting process, bounded by the deadline above
    try:
        yield node
    finally:
        process.terminate()
        process.wait(timeout=10)


def settings_for(anvil: Anvil, **overrides: Any) -> TraceSettings:
    base: dict[str, Any] = {  # every field a developer's TRACE_* environment could set
        "contract_address": None,
        "keystore_path": None,
        "public_rpc_url": None,
        "deploy_block": 0,
        "rpc_url": anvil.url,
        "chain_id": 31337,
        "signer_key": ANVIL_DEV_KEY,
        "confirmations": 1,
        "poll_interval_seconds": 0.02,
        "confirmation_timeout_seconds": 30,
    }
    return TraceSettings(**{**base, **overrides})


@pytest.fixture
def deployed(anvil: Anvil) -> Iterator[ChainClient]:
    """A client for a freshly deployed Anchor contract (automine restored afterwards)."""
    deployer = ChainClient(settings_for(anvil))
    address = deployer.deploy().contract_address
    assert address is not None
    client = ChainClient(settings_for(anvil, contract_address=address))
    yield client
    anvil.automine(True)


def other_account() -> Any:
    return Account.from_key(OTHER_DEV_KEY)
