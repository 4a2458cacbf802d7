"""The rules as pure functions: thresholds, scores, actions, linked accounts, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings
from tuanbox.risk.config import merged_overrides
from tuanbox.risk.rules import Action, Event, RuleSet, build_ruleset
from tuanbox.risk.scoring import Count, Facts, evaluate, evaluate_group, linked_clusters

RULES = build_ruleset({})


def test_defaults_and_thresholds() -> None:
    assert (RULES.review_score, RULES.block_score) == (50, 80)
    assert [RULES.action(s) for s in (0, 49, 50, 79, 80, 500)] == [
        Action.ALLOW,
        Action.ALLOW,
        Action.REVIEW,
        Action.REVIEW,
        Action.BLOCK,
        Action.BLOCK,
    ]
    described = RULES.describe()["rules"]
    assert described["accounts_per_device"]["threshold"] == 4
    assert described["signups_per_ip"]["on"] == ["signup"]
    # IP alone never reaches the review score: carrier NAT.
    ip_rules = [r for r in RULES.counts if r.key == "ip" and not r.on]
    assert sum(r.score for r in ip_rules) < RULES.review_score


def test_a_count_rule_fires_at_its_threshold_not_before() -> None:
    below = Facts(event=Event.ORDER, counts={"accounts_per_device": Count(3, "ab12")})
    at = Facts(event=Event.ORDER, counts={"accounts_per_device": Count(4, "ab12", ("u1", "u2"))})
    assert evaluate(RULES, below).hits == ()
    decided = evaluate(RULES, at)
    assert decided.score == 60 and decided.action is Action.REVIEW
    assert decided.as_json() == [
        {
            "rule": "accounts_per_device",
            "score": 60,
            "key": "device",
            "key_hash": "ab12",
            "measure": "accounts",
            "count": 4,
            "threshold": 4,
            "window_s": 86400,
            "accounts": ["u1", "u2"],
        }
    ]


def test_scores_add_up_to_a_block() -> None:
    facts = Facts(
        event=Event.ORDER,
        counts={"accounts_per_device": Count(4), "orders_per_ip": Count(1)},
        flash_order=True,
        account_age_days=0.5,
        flash_orders=1,
    )
    decided = evaluate(RULES, facts)
    assert [h.rule for h in decided.hits] == ["accounts_per_device", "new_account_flash_only"]
    assert decided.score == 90 and decided.action is Action.BLOCK


def test_a_signup_burst_scores_sign_ups_only() -> None:
    counts = {"signups_per_ip": Count(25)}
    assert evaluate(RULES, Facts(event=Event.SIGNUP, counts=counts)).score == 50
    for event in (Event.SIGNIN, Event.ORDER, Event.CHECKOUT):
        assert evaluate(RULES, Facts(event=event, counts=counts)).score == 0


@pytest.mark.parametrize(
    ("age_days", "flash", "other", "fires"),
    [(0.1, 1, 0, True), (2.99, 3, 0, True), (3.0, 1, 0, False), (1, 2, 1, False)],
)
def test_new_account_buying_only_flash_items(
    age_days: float, flash: int, other: int, fires: bool
) -> None:
    facts = Facts(
        event=Event.ORDER,
        flash_order=True,
        account_age_days=age_days,
        flash_orders=flash,
        other_orders=other,
    )
    assert [h.rule for h in evaluate(RULES, facts).hits] == (
        ["new_account_flash_only"] if fires else []
    )
    regular = Facts(event=Event.ORDER, flash_order=False, account_age_days=age_days)
    assert evaluate(RULES, regular).hits == ()


def test_account_rules() -> None:
    assert evaluate(RULES, Facts(open_reviews=1)).score == 50
    assert evaluate(RULES, Facts(rejected_reviews=2)).action is Action.BLOCK


def test_linked_clusters_are_transitive_and_ignore_ip() -> None:
    keys = {
        "a": {("device", "d1"), ("ip", "nat")},
        "b": {("address", "x1"), ("ip", "nat")},
        "c": {("address", "x1"), ("payer", "p1")},
        "d": {("payer", "p1"), ("device", "d9")},
        "e": {("device", "d1")},
        "f": {("ip", "nat")},  # behind the same NAT only: not linked
    }
    assert linked_clusters(keys) == [["b", "c", "d"], ["a", "e"]]


@pytest.mark.parametrize(
    ("members", "linked", "fires"),
    [(5, 2, False), (5, 3, True), (7, 3, False), (4, 4, True)],
)
def test_linked_group(members: int, linked: int, fires: bool) -> None:
    keys = {f"u{i}": {("device", "shared")} if i < linked else set() for i in range(members)}
    decided, accounts = evaluate_group(RULES, keys)
    assert (decided.action is Action.REVIEW) is fires
    assert accounts == ([f"u{i}" for i in range(linked)] if fires else [])
    if fires:
        evidence = decided.hits[0].evidence
        assert evidence["linked"] == linked and evidence["shared_keys"] == {"device": 1}
    off = build_ruleset({"linked_group": {"enabled": False}})
    assert evaluate_group(off, keys)[0].hits == ()


def test_overrides_change_only_what_they_name() -> None:
    tuned = build_ruleset(
        {
            "accounts_per_device": {"threshold": 6, "window_s": 7200},
            "orders_per_ip": {"enabled": False},
        }
    )
    device = next(r for r in tuned.counts if r.name == "accounts_per_device")
    assert (device.threshold, device.window_s, device.score) == (6, 7200, 60)
    assert not next(r for r in tuned.counts if r.name == "orders_per_ip").enabled
    assert isinstance(tuned, RuleSet)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accounts_per_devices": {"threshold": 2}}, "unknown risk rules: accounts_per_devices"),
        ({"accounts_per_device": {"treshold": 2}}, "'treshold' is not one of"),
        ({"accounts_per_device": {"threshold": 0}}, "threshold must be an integer 1-"),
        ({"accounts_per_device": {"score": True}}, "score must be an integer"),
        ({"accounts_per_device": {"window_s": 2**31}}, "window_s must be an integer"),
        ({"accounts_per_device": {"enabled": "yes"}}, "enabled must be true or false"),
        ({"linked_group": {"min_share": 1.5}}, "min_share must be a number"),
        ({"accounts_per_device": 5}, "expected an object"),
    ],
)
def test_bad_overrides_are_refused_by_name(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_ruleset(overrides)


def test_a_rules_file_with_the_environment_on_top(tmp_path: Path) -> None:
    path = tmp_path / "risk.yaml"
    path.write_text(
        "accounts_per_device:\n  threshold: 5\n  score: 70\nlinked_group:\n  min_share: 0.6\n"
    )
    merged = merged_overrides(str(path), {"accounts_per_device": {"score": 65}}, 50, 80)
    assert merged == {
        "accounts_per_device": {"threshold": 5, "score": 65},
        "linked_group": {"min_share": 0.6},
    }
    settings = make_settings(risk_rules_file=str(path))
    assert settings.risk_rules["accounts_per_device"] == {"threshold": 5, "score": 70}


def test_settings_refuse_bad_rules_at_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "risk.yaml"
    bad.write_text("accounts_per_device: {threshold: -1}\n")
    with pytest.raises(ValidationError, match="threshold must be an integer"):
        make_settings(risk_rules_file=str(bad))
    with pytest.raises(ValidationError, match="cannot read"):
        make_settings(risk_rules_file=str(tmp_path / "missing.yaml"))
    with pytest.raises(ValidationError, match="not above the block score"):
        make_settings(risk_review_score=90, risk_block_score=80)
    bad.write_text("- a list\n")
    with pytest.raises(ValidationError, match="must hold an object of rules"):
        make_settings(risk_rules_file=str(bad))
