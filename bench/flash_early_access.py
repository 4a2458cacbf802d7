"""What members' early access costs the flash-sale admission script, on the real Redis.

Runs the admission script as shipped and, as the same-run baseline, the same script with the
early-access block cut out, each N times through one connection (EVALSHA, one round trip
per call, as the API does), on three paths: an open sale turning buyers away (sold out: the
check is skipped), an open sale admitting (stock large), and a member in the early window
(the only path that reads the marker). Prints µs per call; asserts nothing about time.

    .venv/bin/python bench/flash_early_access.py [N]
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import redis

from tuanbox.flashsale import lua
from tuanbox.flashsale.counters import Admission

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
URL = os.environ.get("TUANBOX_REDIS_URL", "redis://127.0.0.1:6379/0")


def _without_early(script: str) -> str:
    start = script.index("local opens = tonumber(ARGV[13])")
    end = script.index("end\nend\n", start) + len("end\nend\n")
    return script[:start] + script[end:]


def _run(client: redis.Redis, script: str, sale: str, admission: Admission, n: int) -> float:
    sha = client.script_load(script)
    keys = admission.keys(sale, "bench")
    t0 = time.perf_counter()
    for i in range(n):
        args = admission.args(sale)
        args[1] = f"r{i}"  # a fresh request id each call
        client.evalsha(sha, len(keys), *keys, *args)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    client = redis.Redis.from_url(URL)
    shipped, baseline = lua.ADMIT, _without_early(lua.ADMIT)
    now = int(client.time()[0])
    rows: list[tuple[str, float, float]] = []
    for name, stock, member in (
        ("open sale, sold out", 0, False),
        ("open sale, admitting", 10**9, False),
        ("early window, member", 10**9, True),
    ):
        figures: list[float] = []
        for script in (baseline, shipped):
            sale = uuid.uuid4().hex
            stock_key, users_key, reqs_key = lua.keys(sale, "bench")
            client.set(stock_key, stock)
            marker = f"bench:member:{sale}"
            client.set(marker, now + 3600)
            admission = Admission(
                user_id="u",
                request_id="r",
                qty=1,
                per_user_limit=10**9,
                member_key=marker if member else "",
                opens_at_s=now + 300,
                early_s=600,
            )
            figures.append(_run(client, script, sale, admission, N))
            client.delete(stock_key, users_key, reqs_key, marker)
        base, new = figures
        rows.append((name, base, new))
    print(f"admission script, {N} calls each, µs per call (one EVALSHA round trip each)")
    print(f"{'path':<24} {'baseline':>10} {'shipped':>10} {'ratio':>7}")
    for name, base, new in rows:
        print(f"{name:<24} {base:>10.1f} {new:>10.1f} {new / base:>7.2f}")
    client.close()


if __name__ == "__main__":
    main()
