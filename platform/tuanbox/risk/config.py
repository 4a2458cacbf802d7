"""Risk rule overrides from configuration: a YAML or JSON file, then TUANBOX_RISK_RULES.

Both hold the same shape, `{rule: {field: value}}`; a field set in the environment wins over
the same field in the file. The result is checked against the rules (`build_ruleset`), so a
misspelt rule or an out-of-range value stops the process at start-up, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuanbox.risk.rules import build_ruleset

Overrides = dict[str, dict[str, Any]]


def read_file(path: str) -> Overrides:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not YAML or JSON: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or not all(isinstance(v, Mapping) for v in doc.values()):
        raise ValueError(f"{path} must hold an object of rules, each an object of settings")
    return {str(name): dict(fields) for name, fields in doc.items()}


def merged_overrides(
    path: str | None, env: Mapping[str, Mapping[str, Any]], review_score: int, block_score: int
) -> Overrides:
    """The file's overrides with the environment's on top, checked; ValueError otherwise."""
    merged: Overrides = read_file(path) if path else {}
    for name, fields in env.items():
        merged[name] = {**merged.get(name, {}), **fields}
    build_ruleset(merged, review_score=review_score, block_score=block_score)
    return merged
