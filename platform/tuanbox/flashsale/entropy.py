"""Random ids for the reservation hot path, from os.urandom drawn 4 KiB at a time.

`uuid.uuid4()` makes a getrandom syscall and a checked `UUID` object per id; a reservation
needed three (two ids and the rate-limit window's nonce, which the GCRA limits no longer
need), about 4 % of a worker's CPU under a burst.
The bytes are the kernel's all the same; a forked child starts with an empty pool, so no two
processes hand out the same ids.
"""

from __future__ import annotations

import os

_POOL_BYTES = 4096
_pool = b""
_at = 0


def _reset() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_reset)


def random_bytes(n: int) -> bytes:
    """`n` (at most 4096) bytes from the kernel's random source, each handed out once."""
    global _pool, _at
    if _at + n > len(_pool):
        _pool, _at = os.urandom(max(_POOL_BYTES, n)), 0
    out = _pool[_at : _at + n]
    _at += n
    return out


def uuid4() -> str:
    """A random (version 4, RFC 9562) UUID in its usual 36-character form."""
    raw = bytearray(random_bytes(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
