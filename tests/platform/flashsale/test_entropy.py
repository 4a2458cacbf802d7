"""The hot path's ids: valid random UUIDs, never repeated, not shared with a forked child."""

from __future__ import annotations

import os
import uuid

from tuanbox.flashsale import entropy


def test_ids_are_version_4_uuids_and_distinct() -> None:
    ids = [entropy.uuid4() for _ in range(5000)]  # more than one 4 KiB pool
    assert len(set(ids)) == len(ids)
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_its_own_bytes() -> None:
    entropy.random_bytes(16)  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, entropy.uuid4().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4
    assert child != entropy.uuid4()  # the parent's next id from the same pool position
