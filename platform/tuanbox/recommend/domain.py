"""Pure scoring: "bought together" (cosine over shopper co-occurrence, with a minimum support)
and "people like you also bought" (co-occurrence summed over a shopper's history), blended with
popularity at the shopper's station; no I/O, shared by the services and bench/recommend.py.

An item is a product. Two products co-occur once per shopper who has bought both (picked up
and kept): the count of a pair is how many shoppers bought both, ``buyers`` how many bought one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import combinations

Pairs = Mapping[str, Mapping[str, int]]  # a -> b -> shoppers who bought both (symmetric)


def cosine(both: int, buyers_a: int, buyers_b: int) -> float:
    if both <= 0 or buyers_a <= 0 or buyers_b <= 0:
        return 0.0
    return both / math.sqrt(buyers_a * buyers_b)


def bought_together(
    item: str,
    pairs: Pairs,
    buyers: Mapping[str, int],
    *,
    min_support: int,
    allowed: Iterable[str] | None = None,
    k: int = 10,
) -> list[tuple[str, float]]:
    """The items most often bought by the same shoppers as ``item``, by cosine, pairs seen
    fewer than ``min_support`` times left out (one shopper's whim is no pattern)."""
    keep = None if allowed is None else set(allowed)
    scored = [
        (other, cosine(n, buyers.get(item, 0), buyers.get(other, 0)))
        for other, n in pairs.get(item, {}).items()
        if n >= min_support and other != item and (keep is None or other in keep)
    ]
    scored = [s for s in scored if s[1] > 0]
    scored.sort(key=lambda s: (-s[1], s[0]))
    return scored[:k]


def for_shopper(
    history: Iterable[str],
    pairs: Pairs,
    buyers: Mapping[str, int],
    popularity: Mapping[str, float],
    *,
    min_support: int,
    popularity_weight: float,
    allowed: Iterable[str] | None = None,
    exclude_bought: bool = True,
    k: int = 10,
) -> list[tuple[str, float]]:
    """Items for a shopper: the cosine of each candidate with everything they bought, summed
    and scaled to [0, 1], plus ``popularity_weight`` × the station's popularity scaled to
    [0, 1]. With no history (or no pair above the support) popularity alone ranks: the cold
    start. What they bought is left out when ``exclude_bought``."""
    bought = set(history)
    keep = None if allowed is None else set(allowed)
    affinity: dict[str, float] = {}
    for item in bought:
        for other, n in pairs.get(item, {}).items():
            if n < min_support or other == item:
                continue
            score = cosine(n, buyers.get(item, 0), buyers.get(other, 0))
            if score > 0:
                affinity[other] = affinity.get(other, 0.0) + score
    top_affinity = max(affinity.values(), default=0.0)
    top_pop = max(popularity.values(), default=0.0)
    candidates = set(affinity) | set(popularity)
    scored: list[tuple[str, float]] = []
    for item in candidates:
        if (exclude_bought and item in bought) or (keep is not None and item not in keep):
            continue
        a = affinity.get(item, 0.0) / top_affinity if top_affinity else 0.0
        p = popularity.get(item, 0.0) / top_pop if top_pop else 0.0
        score = a + popularity_weight * p
        if score > 0:
            scored.append((item, score))
    scored.sort(key=lambda s: (-s[1], s[0]))
    return scored[:k]


def popular(
    popularity: Mapping[str, float], *, k: int = 10, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    skip = set(exclude)
    ranked = [(i, float(n)) for i, n in popularity.items() if n > 0 and i not in skip]
    ranked.sort(key=lambda s: (-s[1], s[0]))
    return ranked[:k]


def new_pairs(owned: Iterable[str], item: str) -> list[tuple[str, str]]:
    """Both directions of every pair a shopper's first purchase of ``item`` adds, given the
    items they already own (the incremental update)."""
    out: list[tuple[str, str]] = []
    for other in owned:
        if other != item:
            out.append((item, other))
            out.append((other, item))
    return out


def all_pairs(histories: Mapping[str, Iterable[str]]) -> dict[tuple[str, str], int]:
    """Both directions of every pair over every shopper's distinct items (the full rebuild)."""
    counts: dict[tuple[str, str], int] = {}
    for items in histories.values():
        for a, b in combinations(sorted(set(items)), 2):
            counts[(a, b)] = counts.get((a, b), 0) + 1
            counts[(b, a)] = counts.get((b, a), 0) + 1
    return counts
