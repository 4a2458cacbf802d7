"""Pure wire protocol shared by the platform, the edge agent and the simulators; no I/O here.

Modules: ``topics`` (MQTT v1 topic names and filter matching), ``envelopes`` (cmd / ack /
evt / state / status JSON models, deposit and fallback code hashing), ``token`` (pickup QR
tokens, Ed25519 keys), ``kerong`` (KR-CU16 lock-board frames and stream decoder),
``modbus`` (RTU codec for temperature/humidity probes), ``ds18b20`` (1-wire ``w1_slave``
text), ``compartments`` (``"<board>-<lock>"`` ids) and ``errors`` (one hierarchy, stable
codes).
"""
