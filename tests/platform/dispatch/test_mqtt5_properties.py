"""The bridge's shared paho property tables behave exactly as paho's own objects."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from tuanbox.dispatch import mqtt5

# A value of each property type, by compressed name (lists for those that may repeat).
VALUES: dict[str, Any] = {
    "PayloadFormatIndicator": 1,
    "MessageExpiryInterval": 3600,
    "ContentType": "application/json",
    "ResponseTopic": "tuanbox/v1/lockers/l-1/ack",
    "CorrelationData": b"\x00\x01corr",
    "SubscriptionIdentifier": [7, 300],
    "SessionExpiryInterval": 0xFFFFFFFF,
    "AssignedClientIdentifier": "auto-1",
    "ServerKeepAlive": 30,
    "AuthenticationMethod": "SCRAM",
    "AuthenticationData": b"secret",
    "RequestProblemInformation": 1,
    "WillDelayInterval": 5,
    "RequestResponseInformation": 0,
    "ResponseInformation": "resp",
    "ServerReference": "other:1883",
    "ReasonString": "because",
    "ReceiveMaximum": 1000,
    "TopicAliasMaximum": 10,
    "TopicAlias": 3,
    "MaximumQoS": 1,
    "RetainAvailable": 1,
    "UserProperty": [("k", "v"), ("k", "w")],
    "MaximumPacketSize": 65536,
    "WildcardSubscriptionAvailable": 1,
    "SubscriptionIdentifierAvailable": 0,
    "SharedSubscriptionAvailable": 1,
}
PACKET_TYPES = [t for t in range(1, 16)] + [PacketTypes.WILLMESSAGE]


@pytest.fixture(autouse=True)
def shared_tables() -> None:
    mqtt5.share_property_tables()
    assert mqtt5.shared() and Properties.__init__ is not mqtt5.PAHO_INIT


def _fill(props: Properties) -> list[str]:
    """Set every property that applies to the object's packet type; the names refused."""
    refused = []
    for name, value in VALUES.items():
        try:
            setattr(props, name, value)
        except (MQTTException, IndexError):  # paho's message for WILLMESSAGE has no name
            refused.append(name)
    return refused


@pytest.mark.parametrize("packet_type", PACKET_TYPES)
def test_packing_unpacking_and_refusals_are_pahos(packet_type: int) -> None:
    ours, theirs = Properties(packet_type), mqtt5.paho_properties(packet_type)
    assert _fill(ours) == _fill(theirs)
    assert mqtt5.as_dict(ours) == mqtt5.as_dict(theirs)
    assert ours.pack() == theirs.pack()
    assert ours.isEmpty() == theirs.isEmpty() and str(ours) == str(theirs)
    assert ours.json() == theirs.json()
    wire = theirs.pack()
    back, back_paho = Properties(packet_type), mqtt5.paho_properties(packet_type)
    assert back.unpack(wire)[1] == back_paho.unpack(wire)[1] == len(wire)
    assert mqtt5.as_dict(back) == mqtt5.as_dict(back_paho)
    # Unpacking again replaces, never adds to, what the object held (clear first).
    back.unpack(Properties(packet_type).pack())
    assert mqtt5.as_dict(back) == {} and back.isEmpty()


def test_bad_values_and_names_are_refused_as_paho_refuses_them() -> None:
    for make in (Properties, mqtt5.paho_properties):
        props = make(PacketTypes.CONNECT)
        with pytest.raises(MQTTException):
            props.ReceiveMaximum = 0
        with pytest.raises(MQTTException):
            props.NoSuchProperty = 1
        with pytest.raises(MQTTException):
            props.TopicAlias = 1  # a PUBLISH property, not CONNECT's


def test_objects_share_tables_nobody_can_change() -> None:
    one, two = Properties(PacketTypes.PUBLISH), Properties(PacketTypes.PUBACK)
    assert one.names is two.names and one.properties is two.properties
    with pytest.raises(TypeError):
        one.names["Invented"] = 99
    one.ContentType = "x"
    assert not hasattr(Properties(PacketTypes.PUBLISH), "ContentType")
    one.clear()
    assert one.isEmpty() and one.packetType == PacketTypes.PUBLISH
