"""Pure rules of experiments: deterministic arm assignment and the two-proportion z-test."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def assign(experiment_id: str, user_id: str, arms: Sequence[dict[str, Any]]) -> str:
    """The arm key of a user: SHA-256 of "experiment:user" as a point in [0, total weight)."""
    digest = hashlib.sha256(f"{experiment_id}:{user_id}".encode()).digest()
    total = sum(int(a["weight"]) for a in arms)
    point = int.from_bytes(digest[:8], "big") % total
    for arm in arms:
        point -= int(arm["weight"])
        if point < 0:
            return str(arm["key"])
    raise AssertionError("weights are positive")  # pragma: no cover


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float


def capped_price(price_cents: int, field: str, value: str) -> int:
    """What a shopper in a price arm pays: the campaign's price, capped at the arm's. An arm
    is only ever a discount, so the group's closing refund (down to the tier reached) keeps
    the shopper at min(arm, tier) with no change to the settlement."""
    return min(price_cents, int(value)) if field == "price" else price_cents


def two_proportion(successes_a: int, n_a: int, successes_b: int, n_b: int) -> ZTest | None:
    """Pooled two-sided z-test of p_b against p_a; None without data on either side."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return None
    z = (successes_b / n_b - successes_a / n_a) / se
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def check_arms(field: str, arms: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Arms in stored form, or ValueError with the reason (2 to 5 arms, unique keys)."""
    if field not in ("title", "image", "price"):
        raise ValueError("field must be title, image or price")
    if not 2 <= len(arms) <= 5:
        raise ValueError("an experiment has 2 to 5 arms")
    out: list[dict[str, Any]] = []
    for arm in arms:
        key, weight, value = arm.get("key"), arm.get("weight"), arm.get("value")
        if not isinstance(key, str) or not 1 <= len(key) <= 20:
            raise ValueError("arm key must be 1 to 20 characters")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1000:
            raise ValueError("arm weight must be a whole number from 1 to 1000")
        if not isinstance(value, str) or not 1 <= len(value) <= 200:
            raise ValueError("arm value must be 1 to 200 characters")
        if field == "image" and not value.startswith("/media/"):
            raise ValueError("an image arm names an uploaded image (/media/...)")
        if field == "price" and not (value.isdigit() and 1 <= int(value) <= 10**9):
            raise ValueError("a price arm is a price in cents (1 to 10^9)")
        out.append({"key": key, "weight": weight, "value": value})
    if len({a["key"] for a in out}) != len(out):
        raise ValueError("arm keys must differ")
    return out
