"""Every character the consumer trace page shows is in the bundled CJK font's cmap (a missing
glyph shows as a box on phones: the "anchored" badge's ⛓ did)."""

from __future__ import annotations

import html
import re
import struct
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import auth_header
from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from traceability.settings import TraceSettings
from tuanbox.settings import Settings
from tuanbox.shop.poster import FONTS
from tuanbox.trace.services import run_anchoring

TRACE_JS = Path(__file__).parents[3] / "platform" / "tuanbox" / "trace" / "static" / "trace.js"


def cmap(path: Path, index: int = 0) -> set[int]:
    """Code points of a TrueType/OpenType font (or one face of a collection): the Unicode
    cmap subtables, formats 4 (BMP) and 12 (full range)."""
    data = path.read_bytes()
    base = struct.unpack_from(">I", data, 12 + 4 * index)[0] if data[:4] == b"ttcf" else 0
    tables = {
        struct.unpack_from(">4s", data, base + 12 + 16 * i)[0]: struct.unpack_from(
            ">I", data, base + 12 + 16 * i + 8
        )[0]
        for i in range(struct.unpack_from(">H", data, base + 4)[0])
    }
    at = tables[b"cmap"]
    points: set[int] = set()
    for i in range(struct.unpack_from(">H", data, at + 2)[0]):
        platform, encoding, offset = struct.unpack_from(">HHI", data, at + 4 + 8 * i)
        if (platform, encoding) not in ((3, 1), (3, 10), (0, 3), (0, 4)):
            continue
        sub = at + offset
        fmt = struct.unpack_from(">H", data, sub)[0]
        if fmt == 12:
            for g in range(struct.unpack_from(">I", data, sub + 12)[0]):
                start, end, _ = struct.unpack_from(">III", data, sub + 16 + 12 * g)
                points.update(range(start, end + 1))
        elif fmt == 4:
            segments = struct.unpack_from(">H", data, sub + 6)[0] // 2
            ends = struct.unpack_from(f">{segments}H", data, sub + 14)
            starts = struct.unpack_from(f">{segments}H", data, sub + 16 + 2 * segments)
            for start, end in zip(starts, ends, strict=True):
                if start != 0xFFFF:
                    points.update(range(start, end + 1))
    return points


def bundled_font() -> tuple[Path, int]:
    """The font the shop draws Chinese with (poster.FONTS, first found): fonts-noto-cjk."""
    for pattern, index in FONTS:
        path = Path(pattern.format(weight="Regular", dejavu=""))
        if path.exists():
            return path, index
    raise AssertionError("no bundled CJK font installed (apt-get install fonts-noto-cjk)")


def visible_text(page: str) -> str:
    """Text a reader sees: tags, scripts and styles removed, entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def script_strings(source: str) -> str:
    """The string literals trace.js writes into the page (comments left out)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    return " ".join(m.group(2) for m in re.finditer(r"([\"`])((?:\\.|(?!\1).)*)\1", code))


def test_cmap_reader_knows_a_missing_glyph() -> None:
    path, index = bundled_font()
    points = cmap(path, index)
    assert {ord("验"), ord("A"), ord("°"), ord("✓")} <= points
    assert ord("⛓") not in points  # the symbol that showed as a box


def test_every_character_of_the_trace_page_is_in_the_bundled_font(
    trace_app: FastAPI,
    settings: Settings,
    shop: Shop,
    sessions: sessionmaker[Session],
    trace_settings: TraceSettings,
) -> None:
    client = TestClient(trace_app)
    for event in tf.journey_events():
        reply = client.post(
            "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
        )
        assert reply.status_code == 201, reply.text
    run_anchoring(sessions, trace_settings.model_copy(update={"window_seconds": 0.001}))
    page = client.get(f"/01/{tf.GTIN}/10/{tf.LOT}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.text.count('class="badge"><svg') == 5  # every step anchored, icon as SVG
    text = visible_text(page.text) + script_strings(TRACE_JS.read_text(encoding="utf-8"))
    path, index = bundled_font()
    points = cmap(path, index)
    missing = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in points})
    assert missing == [], f"not in {path.name}: {[f'U+{ord(c):04X} {c}' for c in missing]}"
