"""Cheaper paho MQTT 5 property objects for the bridge.

Under MQTT 5, paho builds a ``Properties`` object for every PUBLISH and PUBACK it receives,
and each one builds its lookup tables afresh (a 27-entry dict of lists, with a list search per
entry), then clears itself name by name before unpacking: about 70 µs a message. In a burst
that was a quarter of the bridge's CPU (py-spy of ``bench/dispatch.py --profile``), the
largest single cost in the process. `share_property_tables` makes every object use one
read-only copy of those tables, and makes ``clear`` delete only the properties the object
holds; what the objects do is unchanged (tests/platform/dispatch/test_mqtt5_properties.py
checks packing, unpacking and refusals against paho's own code).
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Any

from paho.mqtt.properties import Properties

# paho's own methods, kept for the comparison in tests.
PAHO_INIT = Properties.__init__
PAHO_CLEAR = Properties.clear
# Attributes of a Properties object that are not MQTT properties.
_PRIVATE = frozenset({"packetType", "types", "names", "properties"})
_lock = threading.Lock()
_shared = False


def paho_properties(packet_type: int) -> Properties:
    """A Properties object built by paho's own constructor (for comparisons)."""
    props = Properties.__new__(Properties)
    PAHO_INIT(props, packet_type)
    return props


def share_property_tables() -> None:
    """Make paho's Properties objects share their lookup tables (idempotent, process-wide)."""
    global _shared
    with _lock:
        if _shared:
            return
        template = paho_properties(1)
        # Read-only, so no object can change the tables the others use: paho only reads them
        # (a tuple has the list's index(), a mapping proxy the dict's lookups and iteration).
        types = tuple(template.types)
        names = MappingProxyType(dict(template.names))
        ids = MappingProxyType({k: (t, tuple(p)) for k, (t, p) in template.properties.items()})

        def __init__(self: Properties, packetType: int) -> None:
            object.__setattr__(self, "packetType", packetType)
            object.__setattr__(self, "types", types)
            object.__setattr__(self, "names", names)
            object.__setattr__(self, "properties", ids)

        def clear(self: Properties) -> None:
            # The properties an object holds are its attributes other than the four above.
            for name in [key for key in vars(self) if key not in _PRIVATE]:
                delattr(self, name)

        setattr(Properties, "__init__", __init__)  # noqa: B010 - replacing paho's method
        setattr(Properties, "clear", clear)  # noqa: B010
        _shared = True


def shared() -> bool:
    return _shared


def as_dict(props: Any) -> dict[str, Any]:
    """The MQTT properties an object holds, by compressed name."""
    return {key: value for key, value in vars(props).items() if key not in _PRIVATE}
