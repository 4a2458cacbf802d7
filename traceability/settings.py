"""Traceability settings (env prefix ``TRACE_``); built by entry points, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_CHAIN_ID = 31337
# anvil's first well-known development account. DEVELOPMENT ONLY: public knowledge, holds
# test ether on anvil alone. Refused below for any chain other than the local dev chain.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


class TraceSettings(BaseSettings):
    """Chain client, anchoring windows and signer configuration."""

    model_config = SettingsConfigDict(env_prefix="TRACE_", extra="ignore")

    rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = DEV_CHAIN_ID
    contract_address: str | None = None
    signer_key: SecretStr | None = None
    keystore_path: Path | None = None
    keystore_password: SecretStr | None = None
    deploy_block: int = Field(default=0, ge=0)
    """Block the contract was deployed in: where log searches for past anchors start."""
    confirmations: int = Field(default=1, ge=1)
    reorg_check_blocks: int = Field(default=7200, ge=1)
    """How far back (in blocks) the reorg check re-reads recorded anchors."""
    window_seconds: float = Field(default=600, gt=0)
    window_max_events: int = Field(default=10_000, ge=1)
    fee_bump_percent: float = Field(default=15.0, ge=12.5)
    rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    stuck_after_seconds: float = Field(default=60.0, gt=0)
    confirmation_timeout_seconds: float = Field(default=600.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    max_fee_per_gas_gwei: float = Field(default=500.0, gt=0)
    operator_gln: str = "6901234000009"
    """GLN of the locker operator; lockers are SGLNs under it. Dev default: replace in prod."""
    public_rpc_url: str | None = None
    """RPC URL printed in trace reports for browsers (the node a consumer's phone can reach)."""

    @model_validator(mode="after")
    def _dev_key_only_on_dev_chain(self) -> TraceSettings:
        key = self.signer_key.get_secret_value() if self.signer_key else None
        if key and key.lower() == ANVIL_DEV_KEY and self.chain_id != DEV_CHAIN_ID:
            raise ValueError("TRACE_SIGNER_KEY is anvil's public dev key; refused off chain 31337")
        return self


@lru_cache(maxsize=1)
def get_settings() -> TraceSettings:
    """Settings from the environment, read once per process by entry points."""
    return TraceSettings()
