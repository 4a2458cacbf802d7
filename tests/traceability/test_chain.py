"""Chain client and Anchor contract on our own anvil: anchoring, refusals, reorgs, stuck txs."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from tests.traceability.conftest import Anvil, other_account, settings_for
from traceability.chain import ChainClient, InFlight, load_account
from traceability.contracts import compile_anchor, load_artifact
from traceability.errors import (
    AlreadyAnchoredError,
    ChainMismatchError,
    ChainUnavailableError,
    ContractMissingError,
    NotAnchorerError,
    SignerConfigError,
)
from traceability.settings import ANVIL_DEV_KEY, TraceSettings


def _root(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _until_mined(client: ChainClient, inflight: InFlight) -> None:
    """Poll until the client has seen a receipt (automine may lag under load)."""
    deadline = time.monotonic() + 10
    while inflight.receipt is None:
        assert client.poll(inflight) is None
        assert time.monotonic() < deadline, "transaction not mined"
        time.sleep(0.01)  # polling the node with a deadline


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_checked_in_artifact_matches_a_fresh_compile() -> None:
    assert compile_anchor() == load_artifact()


def test_deploy_makes_deployer_owner_and_anchorer(anvil: Anvil) -> None:
    client = ChainClient(settings_for(anvil))
    result = client.deploy()
    assert result.contract_address
    contract = client.contract(result.contract_address)
    assert contract.functions.owner().call() == client.account.address
    assert contract.functions.is_anchorer(client.account.address).call() is True
    assert 150_000 < result.gas_used < 400_000


def test_anchor_stores_block_time_and_emits_event(deployed: ChainClient) -> None:
    root = _root("anchor-once")
    assert deployed.anchored_at(root) == 0
    result = deployed.anchor(root, 42)
    assert deployed.anchored_at(root) == result.block_time > 0
    receipt = deployed.w3.eth.get_transaction_receipt(result.tx_hash)
    (log,) = deployed.contract().events.Anchored().process_receipt(receipt)
    assert log["args"]["root"] == root
    assert log["args"]["count"] == 42
    assert log["args"]["anchorer"] == deployed.account.address
    assert log["args"]["timestamp"] == result.block_time
    assert 40_000 < result.gas_used < 60_000


def test_reanchoring_same_root_is_refused(deployed: ChainClient) -> None:
    root = _root("twice")
    deployed.anchor(root, 1)
    with pytest.raises(AlreadyAnchoredError) as info:
        deployed.anchor(root, 1)
    assert info.value.code == "already_anchored"


def test_same_root_racing_in_one_block_reverts_the_second(
    anvil: Anvil, deployed: ChainClient
) -> None:
    root = _root("race")
    anvil.automine(False)
    first = deployed.submit_anchor(root, 1)
    second = deployed.submit_anchor(root, 1)  # both pass estimation: nothing is mined yet
    anvil.mine()
    assert deployed.poll(first) is not None
    with pytest.raises(AlreadyAnchoredError):
        deployed.poll(second)


def test_non_anchorer_is_refused_until_allow_listed(anvil: Anvil, deployed: ChainClient) -> None:
    address = deployed.contract().address
    outsider = ChainClient(settings_for(anvil, contract_address=address), account=other_account())
    with pytest.raises(NotAnchorerError):
        outsider.anchor(_root("outsider"), 1)
    deployed.set_anchorer(outsider.account.address, True)
    outsider.anchor(_root("outsider"), 1)
    deployed.set_anchorer(outsider.account.address, False)
    with pytest.raises(NotAnchorerError):
        outsider.anchor(_root("outsider-2"), 1)


def test_only_owner_sets_anchorers(anvil: Anvil, deployed: ChainClient) -> None:
    outsider = ChainClient(
        settings_for(anvil, contract_address=deployed.contract().address),
        account=other_account(),
    )
    with pytest.raises(Exception, match="not owner"):
        outsider.set_anchorer(outsider.account.address, True)


def test_wrong_chain_id_is_refused(anvil: Anvil) -> None:
    client = ChainClient(settings_for(anvil, chain_id=1, signer_key="0x" + "11" * 32))
    with pytest.raises(ChainMismatchError):
        client.check_chain()


def test_dev_key_refused_off_dev_chain() -> None:
    with pytest.raises(ValueError, match="dev key"):
        TraceSettings(chain_id=1, signer_key=ANVIL_DEV_KEY)


def test_unreachable_rpc_is_chain_unavailable(anvil: Anvil) -> None:
    client = ChainClient(
        settings_for(
            anvil,
            rpc_url="http://127.0.0.1:9",
            rpc_timeout_seconds=2,
            contract_address="0x" + "00" * 20,
        )
    )
    with pytest.raises(ChainUnavailableError) as info:
        client.anchored_at(_root("x"))
    assert info.value.code == "chain_unavailable"


def test_missing_contract(anvil: Anvil) -> None:
    client = ChainClient(settings_for(anvil, contract_address="0x" + "12" * 20))
    with pytest.raises(ContractMissingError):
        client.anchored_at(_root("x"))
    with pytest.raises(ContractMissingError):
        ChainClient(settings_for(anvil)).anchored_at(_root("x"))


def test_signer_from_keystore_and_missing_signer(tmp_path: Path) -> None:
    account = Account.create()
    keystore = Account.encrypt(account.key, "pw", kdf="pbkdf2", iterations=1000)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(keystore))
    settings = TraceSettings(keystore_path=path, keystore_password="pw")
    assert load_account(settings).address == account.address
    with pytest.raises(SignerConfigError):
        load_account(TraceSettings(keystore_path=path, keystore_password="wrong"))
    with pytest.raises(SignerConfigError):
        load_account(TraceSettings())


def test_waits_for_n_confirmations(anvil: Anvil, deployed: ChainClient) -> None:
    client = ChainClient(
        settings_for(anvil, contract_address=deployed.contract().address, confirmations=3)
    )
    inflight = client.submit_anchor(_root("confirm"), 1)  # automine: in a block already
    assert client.poll(inflight) is None
    anvil.mine(1)
    assert client.poll(inflight) is None
    anvil.mine(1)
    result = client.poll(inflight)
    assert result is not None
    assert client.w3.eth.block_number - result.block_number + 1 == 3


def test_reorg_drops_the_anchor_and_client_resends(anvil: Anvil, deployed: ChainClient) -> None:
    client = ChainClient(
        settings_for(anvil, contract_address=deployed.contract().address, confirmations=2)
    )
    root = _root("reorg")
    inflight = client.submit_anchor(root, 7)
    _until_mined(client, inflight)  # 1 of 2 confirmations
    first_block = inflight.receipt["blockHash"]
    anvil.rpc("anvil_reorg", 1, [])  # replace the block holding our tx by an empty one
    assert client.anchored_at(root) == 0
    assert client.poll(inflight) is None  # reorg seen: the signed tx is re-sent
    assert inflight.reorgs == 1
    _until_mined(client, inflight)  # re-mined by automine: 1 of 2 confirmations again
    anvil.mine()
    result = client.wait(inflight)
    assert Web3.to_bytes(hexstr=result.block_hash) != first_block
    assert result.reorgs == 1
    assert client.anchored_at(root) == result.block_time


def test_stuck_transaction_is_replaced_with_bumped_fee(anvil: Anvil, deployed: ChainClient) -> None:
    clock = ManualClock()
    client = ChainClient(
        settings_for(
            anvil,
            contract_address=deployed.contract().address,
            stuck_after_seconds=30,
            fee_bump_percent=12.5,
        ),
        clock=clock,
    )
    anvil.automine(False)
    inflight = client.submit_anchor(_root("stuck"), 3)
    original = inflight.attempts[0]
    anvil.rpc("anvil_dropTransaction", original.tx_hash)  # as if the mempool lost it
    assert client.poll(inflight) is None
    assert len(inflight.attempts) == 1  # not stuck yet
    clock.now += 31
    assert client.poll(inflight) is None
    replacement = inflight.attempts[-1]
    assert len(inflight.attempts) == 2
    assert replacement.max_fee >= original.max_fee * 1.125
    assert replacement.priority_fee >= original.priority_fee * 1.125
    pooled = client.w3.eth.get_transaction(replacement.tx_hash)
    assert pooled["nonce"] == inflight.nonce
    anvil.mine()
    result = client.poll(inflight)
    assert result is not None
    assert result.tx_hash == replacement.tx_hash
    assert result.replacements == 1


def test_stuck_replacement_of_a_pending_tx_keeps_the_nonce(
    anvil: Anvil, deployed: ChainClient
) -> None:
    clock = ManualClock()
    client = ChainClient(
        settings_for(anvil, contract_address=deployed.contract().address, stuck_after_seconds=5),
        clock=clock,
    )
    anvil.automine(False)
    inflight = client.submit_anchor(_root("pending"), 1)
    clock.now += 6
    client.poll(inflight)  # still pending in the pool: replaced in place (same nonce)
    assert len(inflight.attempts) == 2
    anvil.mine()
    result = client.poll(inflight)
    assert result is not None and result.tx_hash == inflight.attempts[-1].tx_hash
    assert deployed.w3.eth.get_transaction_count(client.account.address) == inflight.nonce + 1
