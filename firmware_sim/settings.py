"""Simulator defaults from the environment (prefix SIM_); command-line flags override them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimSettings(BaseSettings):
    """What a simulated locker looks like when no flag says otherwise."""

    model_config = SettingsConfigDict(env_prefix="SIM_", env_file=".env", extra="ignore")

    boards: int = Field(default=1, ge=1, le=16)
    locks: int = Field(default=16, ge=1, le=16)
    polarity: Literal["closed=1", "closed=0"] = "closed=1"
    door_open_delay: float = Field(default=0.3, ge=0)
    auto_close: float | None = Field(default=None, gt=0)
    sensor_interval: float = Field(default=1.0, gt=0)
    scanner_suffix: Literal["crlf", "cr", "lf"] = "crlf"
