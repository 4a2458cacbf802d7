"""MQTT topic names of the v1 contract and pure MQTT topic-filter matching."""

from __future__ import annotations

import re
from typing import Literal, get_args

from edge.protocol.errors import TopicError

TOPIC_ROOT = "tuanbox/v1/lockers"
Kind = Literal["cmd", "ack", "evt", "state", "status"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# Slashes and wildcards would let one locker's id spill into other lockers' topics.
LOCKER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROOT_LEVELS = TOPIC_ROOT.split("/")


def validate_locker_id(locker_id: str) -> str:
    """Return ``locker_id`` unchanged or raise TopicError(BAD_LOCKER_ID)."""
    if not isinstance(locker_id, str) or not LOCKER_ID_RE.fullmatch(locker_id):
        raise TopicError(
            f"invalid locker id {locker_id!r}: use 1-64 of A-Z a-z 0-9 _ -",
            code="BAD_LOCKER_ID",
        )
    return locker_id


def _validate_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise TopicError(f"unknown topic kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def topic(locker_id: str, kind: Kind) -> str:
    """The concrete topic, e.g. ``tuanbox/v1/lockers/L1/cmd``."""
    return f"{TOPIC_ROOT}/{validate_locker_id(locker_id)}/{_validate_kind(kind)}"


def parse_topic(value: str) -> tuple[str, Kind]:
    """Split a concrete v1 topic into ``(locker_id, kind)``; raise TopicError otherwise."""
    levels = value.split("/")
    if len(levels) != len(_ROOT_LEVELS) + 2 or levels[: len(_ROOT_LEVELS)] != _ROOT_LEVELS:
        raise TopicError(f"not a {TOPIC_ROOT}/<locker>/<kind> topic: {value!r}")
    locker_id, kind = levels[-2], levels[-1]
    try:
        validate_locker_id(locker_id)
    except TopicError as exc:
        raise TopicError(f"bad locker id in topic {value!r}") from exc
    return locker_id, _validate_kind(kind)


def subscription(kind: Kind, locker_id: str = "+") -> str:
    """A filter for one kind of one locker, or of every locker with the default ``+``."""
    if locker_id != "+":
        validate_locker_id(locker_id)
    return f"{TOPIC_ROOT}/{locker_id}/{_validate_kind(kind)}"


def shared_subscription(kind: Kind, group: str = "bridge") -> str:
    """A shared subscription so several bridges split the lockers' traffic between them."""
    if not LOCKER_ID_RE.fullmatch(group):
        raise TopicError(f"invalid share group name {group!r}", code="BAD_FILTER")
    return f"$share/{group}/{subscription(kind)}"


def _strip_share(topic_filter: str) -> str:
    if not topic_filter.startswith("$share/"):
        return topic_filter
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise TopicError(f"malformed shared subscription {topic_filter!r}", code="BAD_FILTER")
    return parts[2]


def validate_filter(topic_filter: str) -> str:
    """Check wildcard placement per MQTT 3.1.1/5; return the filter without ``$share``."""
    stripped = _strip_share(topic_filter)
    if not stripped:
        raise TopicError("empty topic filter", code="BAD_FILTER")
    levels = stripped.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise TopicError(f"'#' must be a whole last level: {topic_filter!r}", code="BAD_FILTER")
        if "+" in level and level != "+":
            raise TopicError(f"'+' must be a whole level: {topic_filter!r}", code="BAD_FILTER")
    return stripped


def matches(topic_filter: str, value: str) -> bool:
    """True if the concrete topic ``value`` matches ``topic_filter`` (MQTT semantics)."""
    filter_levels = validate_filter(topic_filter).split("/")
    topic_levels = value.split("/")
    # Wildcards at the first level never match system topics such as $SYS/...
    if value.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True  # also matches the parent level itself: "a/#" matches "a"
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
