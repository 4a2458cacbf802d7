"""Read-only chain access for verifiers: chain id and ``anchored_at`` on any node."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    Web3RPCError,
)

from traceability.contracts import load_artifact
from traceability.errors import ChainError, ChainUnavailableError, ContractMissingError


@contextmanager
def unreachable_as_error(rpc_url: str) -> Iterator[None]:
    """Translate transport failures talking to ``rpc_url`` into ChainUnavailableError."""
    try:
        yield
    except (
        requests.ConnectionError,
        requests.Timeout,
        ProviderConnectionError,
        RequestTimedOut,
    ) as exc:
        raise ChainUnavailableError(f"chain RPC {rpc_url} unreachable: {exc}") from exc


class RpcRootLookup:
    """Read-only view of any node: chain id and ``anchored_at`` (no signer needed)."""

    def __init__(self, rpc_url: str, *, timeout: float = 10.0) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(
            Web3.HTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
            )
        )
        self._abi = load_artifact()["abi"]

    @contextmanager
    def _rpc(self) -> Iterator[None]:
        try:
            with unreachable_as_error(self.rpc_url):
                yield
        except (ContractLogicError, Web3RPCError) as exc:
            raise ChainError(f"chain RPC {self.rpc_url} refused the call: {exc}") from exc

    def chain_id(self) -> int:
        with self._rpc():
            return int(self.w3.eth.chain_id)

    def anchored_at(self, contract: str, root: bytes) -> int:
        with self._rpc():
            address = Web3.to_checksum_address(contract)
            if not self.w3.eth.get_code(address):
                raise ContractMissingError(f"no contract code at {contract} on this chain")
            anchor = self.w3.eth.contract(address=address, abi=self._abi)
            return int(anchor.functions.anchored_at(root).call())
