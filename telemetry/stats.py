"""Pure cold-chain statistics: mean kinetic temperature, time out of range, batch summaries.

Mean kinetic temperature (USP <1079.2>, Haynes 1971) is the single temperature that would
cause the same total degradation as the observed series, under Arrhenius kinetics::

    T_mkt = (ΔH / R) / -ln( Σ wᵢ·exp(-ΔH / (R·Tᵢ)) / Σ wᵢ )        (T in kelvin)

with ΔH = 83.144 kJ/mol by default (so ΔH/R ≈ 10 000 K). Weights are the time each reading
stands for, so unequal sampling intervals do not bias it; equal intervals reduce to the
textbook formula. Warm readings weigh more than in the arithmetic mean, which is the point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

GAS_CONSTANT = 8.3144621  # J/(mol·K)
DEFAULT_DELTA_H = 83_144.0  # J/mol, USP default activation energy
KELVIN = 273.15
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Reading:
    """One temperature sample: sampling time in integer ns since the epoch, and °C."""

    t_ns: int
    celsius: float


def mean_kinetic_temperature(
    celsius: Sequence[float],
    weights: Sequence[float] | None = None,
    delta_h: float = DEFAULT_DELTA_H,
) -> float:
    """MKT in °C of readings (optionally time-weighted); ValueError on an empty series."""
    if not celsius:
        raise ValueError("mean kinetic temperature of an empty series is undefined")
    ws = weights if weights is not None else [1.0] * len(celsius)
    if len(ws) != len(celsius):
        raise ValueError("weights and readings differ in length")
    total = sum(ws)
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    ratio = delta_h / GAS_CONSTANT
    # Subtract the largest exponent before exp() so long cold series cannot underflow to 0.
    exponents = [-ratio / (c + KELVIN) for c in celsius]
    top = max(exponents)
    acc = sum(w * math.exp(e - top) for w, e in zip(ws, exponents, strict=True)) / total
    return ratio / -(top + math.log(acc)) - KELVIN


def durations_s(readings: Sequence[Reading], max_gap_s: float) -> list[float]:
    """Seconds each reading stands for: until the next one, capped at ``max_gap_s``.

    The last reading stands for the median interval (or ``max_gap_s`` if alone), so a series
    of equal intervals gives equal weights.
    """
    if not readings:
        return []
    gaps = [min(max_gap_s, (b.t_ns - a.t_ns) / NS_PER_S) for a, b in itertools.pairwise(readings)]
    tail = sorted(gaps)[len(gaps) // 2] if gaps else max_gap_s
    return [*gaps, tail]


@dataclass(frozen=True)
class Summary:
    """Cold-chain summary of one batch (or one compartment over a window)."""

    count: int
    start_ns: int
    end_ns: int
    min_c: float
    max_c: float
    mean_c: float
    mkt_c: float
    seconds_below: float
    seconds_above: float

    @property
    def seconds_out_of_range(self) -> float:
        return self.seconds_below + self.seconds_above

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "min_c": round(self.min_c, 3),
            "max_c": round(self.max_c, 3),
            "mean_c": round(self.mean_c, 3),
            "mkt_c": round(self.mkt_c, 3),
            "seconds_out_of_range": round(self.seconds_out_of_range, 1),
            "seconds_below": round(self.seconds_below, 1),
            "seconds_above": round(self.seconds_above, 1),
        }


def summarize(
    readings: Sequence[Reading],
    *,
    low: float | None,
    high: float | None,
    delta_h: float = DEFAULT_DELTA_H,
    max_gap_s: float = 600.0,
) -> Summary | None:
    """Min, max, mean, time-weighted MKT and time outside [low, high]; None when empty.

    The mean is the arithmetic mean of the readings (what a datasheet reports), the MKT is
    time-weighted; out-of-range time counts each reading's duration (gaps capped).
    """
    if not readings:
        return None
    ordered = sorted(readings, key=lambda r: r.t_ns)
    temps = [r.celsius for r in ordered]
    weights = durations_s(ordered, max_gap_s)
    below = sum(
        w for r, w in zip(ordered, weights, strict=True) if low is not None and r.celsius < low
    )
    above = sum(
        w for r, w in zip(ordered, weights, strict=True) if high is not None and r.celsius > high
    )
    return Summary(
        count=len(ordered),
        start_ns=ordered[0].t_ns,
        end_ns=ordered[-1].t_ns,
        min_c=min(temps),
        max_c=max(temps),
        mean_c=sum(temps) / len(temps),
        mkt_c=mean_kinetic_temperature(temps, weights, delta_h),
        seconds_below=below,
        seconds_above=above,
    )
