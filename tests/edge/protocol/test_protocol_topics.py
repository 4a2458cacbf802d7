"""Tests of the v1 MQTT topic names and MQTT filter matching."""

from __future__ import annotations

import pytest

from edge.protocol.errors import TopicError
from edge.protocol.topics import (
    KINDS,
    matches,
    parse_topic,
    shared_subscription,
    subscription,
    topic,
    validate_locker_id,
)


@pytest.mark.parametrize("kind", KINDS)
def test_topic_round_trips(kind: str) -> None:
    name = topic("L-001_a", kind)  # type: ignore[arg-type]
    assert name == f"tuanbox/v1/lockers/L-001_a/{kind}"
    assert parse_topic(name) == ("L-001_a", kind)


@pytest.mark.parametrize("locker_id", ["", "a/b", "a+b", "a#", "x" * 65, "with space", "é"])
def test_bad_locker_ids_are_refused(locker_id: str) -> None:
    with pytest.raises(TopicError) as info:
        topic(locker_id, "cmd")
    assert info.value.code == "BAD_LOCKER_ID"
    with pytest.raises(TopicError):
        validate_locker_id(locker_id)


@pytest.mark.parametrize(
    "value",
    [
        "tuanbox/v1/lockers/L1",
        "tuanbox/v1/lockers/L1/cmd/extra",
        "tuanbox/v2/lockers/L1/cmd",
        "tuanbox/v1/lockers/L1/bogus",
        "tuanbox/v1/lockers/+/cmd",
        "/tuanbox/v1/lockers/L1/cmd",
    ],
)
def test_parse_topic_refuses_foreign_topics(value: str) -> None:
    with pytest.raises(TopicError) as info:
        parse_topic(value)
    assert info.value.code == "BAD_TOPIC"


def test_subscriptions() -> None:
    assert subscription("evt") == "tuanbox/v1/lockers/+/evt"
    assert subscription("cmd", "L1") == "tuanbox/v1/lockers/L1/cmd"
    assert shared_subscription("evt") == "$share/bridge/tuanbox/v1/lockers/+/evt"
    assert shared_subscription("ack", "g2") == "$share/g2/tuanbox/v1/lockers/+/ack"
    with pytest.raises(TopicError):
        subscription("cmd", "a/b")
    with pytest.raises(TopicError):
        shared_subscription("evt", "a/b")


@pytest.mark.parametrize(
    ("topic_filter", "value", "expected"),
    [
        ("tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L1/evt", True),
        ("tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L1/ack", False),
        ("tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L1/evt/x", False),
        ("tuanbox/v1/lockers/#", "tuanbox/v1/lockers/L1/state", True),
        ("tuanbox/v1/lockers/#", "tuanbox/v1/lockers", True),
        ("tuanbox/v1/#", "tuanbox/v2/lockers", False),
        ("#", "anything/at/all", True),
        ("+/+", "a/b", True),
        ("+/+", "a", False),
        ("+", "", True),
        ("a/+/c", "a//c", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("$share/bridge/tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L9/evt", True),
        ("$share/bridge/tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L9/cmd", False),
        ("$share/g/#", "x/y", True),
        ("Tuanbox/v1/lockers/+/evt", "tuanbox/v1/lockers/L1/evt", False),
    ],
)
def test_matches(topic_filter: str, value: str, expected: bool) -> None:
    assert matches(topic_filter, value) is expected


@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", "", "$share/", "$share/g", "$share//a"])
def test_invalid_filters_raise(bad: str) -> None:
    with pytest.raises(TopicError) as info:
        matches(bad, "a/b")
    assert info.value.code == "BAD_FILTER"


def test_every_generated_topic_matches_its_subscription() -> None:
    for kind in KINDS:
        assert matches(subscription(kind), topic("L7", kind))
        assert matches(shared_subscription(kind), topic("L7", kind))
        assert matches(subscription(kind, "L7"), topic("L7", kind))
        assert not matches(subscription(kind, "L8"), topic("L7", kind))
