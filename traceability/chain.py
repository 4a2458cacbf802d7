"""web3.py client for the Anchor contract: one local signer, EIP-1559 fees, confirmations,
reorg re-sends and fee-bumped replacement of stuck transactions.

Use ``submit_*`` then ``poll`` for step-by-step control (tests, long-running workers), or the
blocking ``anchor`` / ``deploy`` / ``set_anchorer``. web3 and RPC errors become ``TraceError``
subclasses here, at the boundary.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams

from traceability.contracts import load_artifact
from traceability.errors import (
    AlreadyAnchoredError,
    ChainError,
    ChainMismatchError,
    ConfirmationTimeoutError,
    ContractMissingError,
    NotAnchorerError,
    SignerConfigError,
    TransactionRevertedError,
)
from traceability.lookup import unreachable_as_error
from traceability.settings import TraceSettings

if TYPE_CHECKING:
    from traceability.anchoring import AnchorRecord

log = logging.getLogger(__name__)

GWEI = 10**9


def load_account(settings: TraceSettings) -> LocalAccount:
    """The signing account from TRACE_SIGNER_KEY, or else the keystore file and password."""
    if settings.signer_key is not None:
        try:
            account: LocalAccount = Account.from_key(settings.signer_key.get_secret_value())
        except ValueError as exc:
            raise SignerConfigError("TRACE_SIGNER_KEY is not a valid private key") from exc
        return account
    if settings.keystore_path is not None:
        if settings.keystore_password is None:
            raise SignerConfigError("TRACE_KEYSTORE_PATH needs TRACE_KEYSTORE_PASSWORD")
        try:
            keystore = json.loads(settings.keystore_path.read_text())
            key = Account.decrypt(keystore, settings.keystore_password.get_secret_value())
        except (OSError, ValueError) as exc:
            raise SignerConfigError(
                f"cannot open keystore {settings.keystore_path}: {exc}"
            ) from exc
        return Account.from_key(key)
    raise SignerConfigError("set TRACE_SIGNER_KEY or TRACE_KEYSTORE_PATH")


def translate_revert(message: str) -> ChainError:
    """Our contract's revert strings as errors with codes."""
    if "already anchored" in message:
        return AlreadyAnchoredError("this Merkle root is already anchored")
    if "not anchorer" in message:
        return NotAnchorerError("the signer is not an allow-listed anchorer")
    return TransactionRevertedError(f"transaction reverted: {message}")


@dataclass
class Attempt:
    """One signed transaction for a nonce; replacements add attempts with higher fees."""

    tx_hash: str
    raw: bytes
    max_fee: int
    priority_fee: int
    sent_at: float


@dataclass
class InFlight:
    """A transaction being driven to N confirmations."""

    params: dict[str, Any]
    nonce: int
    gas: int
    attempts: list[Attempt]
    receipt: Any = None
    reorgs: int = 0
    replacements: int = 0
    started_at: float = 0.0


@dataclass(frozen=True)
class TxResult:
    """A transaction with enough confirmations."""

    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    gas_used: int
    contract_address: str | None = None
    reorgs: int = 0
    replacements: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ChainClient:
    """Anchors roots through the Anchor contract with one signer (thread-safe nonces)."""

    def __init__(
        self,
        settings: TraceSettings,
        *,
        account: LocalAccount | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.account = account or load_account(settings)
        self.clock = clock
        self.w3 = Web3(
            Web3.HTTPProvider(
                settings.rpc_url,
                request_kwargs={"timeout": settings.rpc_timeout_seconds},
                exception_retry_configuration=None,
            )
        )
        self._abi = load_artifact()
        self._nonce_lock = threading.Lock()
        self._next_nonce = 0
        self._contract: Contract | None = None

    # -- boundary -------------------------------------------------------------------------
    @contextmanager
    def _rpc(self) -> Iterator[None]:
        with unreachable_as_error(self.settings.rpc_url):
            try:
                yield
            except ContractLogicError as exc:
                raise translate_revert(str(exc)) from exc

    def check_chain(self) -> int:
        """The node's chain id; ChainMismatchError when it is not the configured one."""
        with self._rpc():
            chain_id = self.w3.eth.chain_id
        if chain_id != self.settings.chain_id:
            raise ChainMismatchError(
                f"RPC serves chain {chain_id}, settings say {self.settings.chain_id}"
            )
        return chain_id

    def contract(self, address: str | None = None) -> Contract:
        """The Anchor contract at the configured (or given) address, checked to hold code."""
        if address is None and self._contract is not None:
            return self._contract
        target = address or self.settings.contract_address
        if not target:
            raise ContractMissingError("TRACE_CONTRACT_ADDRESS is not set; deploy first")
        with self._rpc():
            code = self.w3.eth.get_code(Web3.to_checksum_address(target))
        if not code:
            raise ContractMissingError(f"no contract code at {target}")
        contract = self.w3.eth.contract(
            address=Web3.to_checksum_address(target), abi=self._abi["abi"]
        )
        if address is None:
            self._contract = contract
        return contract

    def anchored_at(self, root: bytes) -> int:
        """Block timestamp at which ``root`` was anchored, 0 if never."""
        with self._rpc():
            return int(self.contract().functions.anchored_at(root).call())

    # -- sending ---------------------------------------------------------------------------
    def _fees(self) -> tuple[int, int]:
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        priority = int(self.w3.eth.max_priority_fee)
        cap = int(self.settings.max_fee_per_gas_gwei * GWEI)
        return priority, min(cap, 2 * base + priority)

    def _sign_send(
        self, params: dict[str, Any], nonce: int, gas: int, priority: int, max_fee: int
    ) -> Attempt:
        tx = {
            **params,
            "nonce": nonce,
            "gas": gas,
            "chainId": self.settings.chain_id,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": max_fee,
            "type": 2,
        }
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        log.info("sent tx %s nonce=%d maxFee=%d", tx_hash.hex(), nonce, max_fee)
        return Attempt(
            HexBytes(tx_hash).to_0x_hex(),
            bytes(signed.raw_transaction),
            max_fee,
            priority,
            self.clock(),
        )

    def submit(self, params: dict[str, Any]) -> InFlight:
        """Estimate (refusals surface here, before a nonce is used), sign and send."""
        sender = self.account.address
        with self._rpc():
            gas = int(self.w3.eth.estimate_gas(cast(TxParams, {**params, "from": sender})) * 1.25)
            priority, max_fee = self._fees()
            with self._nonce_lock:
                pending = self.w3.eth.get_transaction_count(sender, "pending")
                nonce = max(pending, self._next_nonce)
                attempt = self._sign_send(params, nonce, gas, priority, max_fee)
                self._next_nonce = nonce + 1
        return InFlight(params, nonce, gas, [attempt], started_at=self.clock())

    def submit_anchor(self, root: bytes, count: int) -> InFlight:
        """Send ``anchor(root, count)``."""
        contract = self.contract()
        data = contract.encode_abi("anchor", args=[root, count])
        return self.submit({"to": contract.address, "data": data, "value": 0})

    def _replace(self, inflight: InFlight) -> None:
        """Same nonce, fees bumped by at least fee_bump_percent (nodes want ≥ 12.5 %)."""
        last = inflight.attempts[-1]
        factor = 1 + self.settings.fee_bump_percent / 100
        priority = max(math.ceil(last.priority_fee * factor), last.priority_fee + 1)
        _, market = self._fees()
        max_fee = max(math.ceil(last.max_fee * factor), market, priority)
        cap = int(self.settings.max_fee_per_gas_gwei * GWEI)
        if max_fee > cap:
            log.warning("tx %s stuck but the fee cap %d is reached", last.tx_hash, cap)
            last.sent_at = self.clock()
            return
        try:
            attempt = self._sign_send(
                inflight.params, inflight.nonce, inflight.gas, priority, max_fee
            )
        except Web3RPCError as exc:
            if "nonce too low" in str(exc).lower():
                return  # an earlier attempt was mined meanwhile; the next poll finds it
            raise
        inflight.attempts.append(attempt)
        inflight.replacements += 1
        log.info("replaced stuck tx %s by %s", last.tx_hash, attempt.tx_hash)

    def _rebroadcast(self, inflight: InFlight, tx_hash: str) -> None:
        attempt = next(a for a in inflight.attempts if a.tx_hash == tx_hash)
        try:
            self.w3.eth.send_raw_transaction(attempt.raw)
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "already known" not in text and "nonce too low" not in text:
                raise
        attempt.sent_at = self.clock()
        log.warning("tx %s dropped by a reorg; re-sent", tx_hash)

    def _find_receipt(self, inflight: InFlight) -> Any:
        for attempt in reversed(inflight.attempts):
            try:
                return self.w3.eth.get_transaction_receipt(HexStr(attempt.tx_hash))
            except TransactionNotFound:
                continue
        return None

    def _revert_reason(self, inflight: InFlight, receipt: Any) -> ChainError:
        try:
            self.w3.eth.call(
                cast(TxParams, {**inflight.params, "from": self.account.address}),
                receipt["blockNumber"],
            )
        except ContractLogicError as exc:
            return translate_revert(str(exc))
        return TransactionRevertedError(f"transaction {receipt['transactionHash'].hex()} reverted")

    def poll(self, inflight: InFlight) -> TxResult | None:
        """One step: find the receipt, survive reorgs, replace if stuck; result when confirmed."""
        with self._rpc():
            if inflight.receipt is None:
                inflight.receipt = self._find_receipt(inflight)
                if inflight.receipt is None:
                    if (
                        self.clock() - inflight.attempts[-1].sent_at
                        >= self.settings.stuck_after_seconds
                    ):
                        self._replace(inflight)
                    return None
            receipt = inflight.receipt
            tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
            try:
                current = self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                current = None
            try:
                canonical = self.w3.eth.get_block(receipt["blockNumber"])["hash"]
            except BlockNotFound:
                canonical = None
            if (
                current is None
                or canonical != receipt["blockHash"]
                or (current["blockHash"] != receipt["blockHash"])
            ):
                inflight.reorgs += 1
                inflight.receipt = None
                if current is None:
                    self._rebroadcast(inflight, tx_hash)
                log.warning("reorg: tx %s left block %s", tx_hash, receipt["blockNumber"])
                return None
            if receipt["status"] != 1:
                raise self._revert_reason(inflight, receipt)
            head = self.w3.eth.block_number
            if head - receipt["blockNumber"] + 1 < self.settings.confirmations:
                return None
            block = self.w3.eth.get_block(receipt["blockNumber"])
            address = receipt.get("contractAddress")
            return TxResult(
                tx_hash=tx_hash,
                block_number=int(receipt["blockNumber"]),
                block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
                block_time=int(block["timestamp"]),
                gas_used=int(receipt["gasUsed"]),
                contract_address=str(address) if address else None,
                reorgs=inflight.reorgs,
                replacements=inflight.replacements,
            )

    def wait(self, inflight: InFlight) -> TxResult:
        """Poll until confirmed or until confirmation_timeout_seconds pass."""
        deadline = inflight.started_at + self.settings.confirmation_timeout_seconds
        while True:
            result = self.poll(inflight)
            if result is not None:
                return result
            if self.clock() >= deadline:
                raise ConfirmationTimeoutError(
                    f"tx {inflight.attempts[-1].tx_hash} not confirmed "
                    f"{self.settings.confirmations}x within "
                    f"{self.settings.confirmation_timeout_seconds}s"
                )
            time.sleep(self.settings.poll_interval_seconds)

    # -- use cases -------------------------------------------------------------------------
    def anchor(self, root: bytes, count: int) -> TxResult:
        """Anchor a Merkle root of ``count`` events and wait for confirmations."""
        return self.wait(self.submit_anchor(root, count))

    def deploy(self) -> TxResult:
        """Deploy the Anchor contract from the checked-in artifact; the signer owns it."""
        return self.wait(self.submit({"data": self._abi["bytecode"], "value": 0}))

    def set_anchorer(self, anchorer: str, allowed: bool) -> TxResult:
        """Owner only: add or remove an anchorer."""
        contract = self.contract()
        data = contract.encode_abi(
            "set_anchorer", args=[Web3.to_checksum_address(anchorer), allowed]
        )
        return self.wait(self.submit({"to": contract.address, "data": data, "value": 0}))

    def chain_identity(self) -> tuple[int, str]:
        """(chain id, contract address) as recorded with every anchor."""
        return self.settings.chain_id, str(self.contract().address)

    def head(self) -> int:
        """The node's latest block number."""
        with self._rpc():
            return int(self.w3.eth.block_number)

    def anchor_intact(self, record: AnchorRecord) -> bool:
        """Whether the recorded transaction is still in the recorded block (no reorg since)."""
        if record.tx_hash is None or record.block_number is None or record.block_hash is None:
            return False
        with self._rpc():
            try:
                block = self.w3.eth.get_block(record.block_number)
            except BlockNotFound:
                return False
            if HexBytes(block["hash"]).to_0x_hex() != record.block_hash:
                return False
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexStr(record.tx_hash))
            except TransactionNotFound:
                return False
            return bool(
                HexBytes(receipt["blockHash"]).to_0x_hex() == record.block_hash
                and receipt["status"] == 1
            )

    def find_anchor(self, root: bytes) -> TxResult | None:
        """The transaction that anchored ``root``, from the contract's Anchored logs."""
        contract = self.contract()
        with self._rpc():
            logs = contract.events.Anchored().get_logs(
                from_block=self.settings.deploy_block, argument_filters={"root": root}
            )
            if not logs:
                return None
            entry = logs[0]
            receipt = self.w3.eth.get_transaction_receipt(entry["transactionHash"])
            return TxResult(
                tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
                block_number=int(entry["blockNumber"]),
                block_hash=HexBytes(entry["blockHash"]).to_0x_hex(),
                block_time=int(entry["args"]["timestamp"]),
                gas_used=int(receipt["gasUsed"]),
            )
