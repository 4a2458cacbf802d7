"""``python -m traceability.contracts build``: recompile Anchor.vy into Anchor.json."""

from __future__ import annotations

import sys

from traceability.contracts import build


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        sys.stderr.write("usage: python -m traceability.contracts build\n")
        return 2
    sys.stdout.write(f"wrote {build()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
