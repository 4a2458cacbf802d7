"""Differential test of the trace page's JavaScript event hash (static/epcis_hash.js) against
``traceability.hashing`` version 2: the events the Python differential test generates (every
event type, Unicode, time zones, decimal forms, Digital Link variants, sensor reports,
extensions, error declarations) plus GS1's published test documents, run in the real trace
page in headless Chromium; pre-hash strings, hash URIs and Merkle leaves must agree exactly."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import sync_playwright

from tests.conftest import make_settings
from tests.platform.factories import make_merchant, make_product
from tests.support import watch_csp
from tests.traceability import factories as tf
from tests.traceability.gs1_reference import CONTEXT
from tests.traceability.test_hash_reference import _SHAPES, events
from traceability import merkle
from traceability.completeness import lot_leaf
from traceability.epcis_terms import CONTEXT_VERSION
from traceability.hashing import (
    anchor_leaf,
    document_events,
    event_hash,
    namespaces_from_context,
    prehash,
)
from traceability.settings import TraceSettings
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.catalog.models import Lot
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings
from tuanbox.trace.services import record_event

EXAMPLES_PER_TYPE = 80  # five event types: 400 generated events, plus GS1's documents
VECTORS = Path(__file__).parents[2] / "traceability" / "vectors"
HASH_JS = Path(__file__).parents[3] / "platform" / "tuanbox" / "trace" / "static" / "epcis_hash.js"

# In the page: each case is [event JSON text, context JSON text or null (a document's)].
RUN = """async (cases) => {
  const out = [];
  for (const [text, context] of cases) {
    const event = window.EpcisHash.parseJson(text);
    const ns = context === null ? undefined : window.EpcisHash.namespacesFromContext(
      event["@context"], window.EpcisHash.namespacesFromContext(JSON.parse(context)));
    out.push([window.EpcisHash.prehash(event, ns), await window.EpcisHash.eventHash(event, ns),
              await window.EpcisHash.anchorLeaf(event, ns)]);
  }
  return out;
}"""


# In the page: each lot is [gtin, lot, [event leaf texts in window order]]; the page's lot
# commitment leaf (completeness) and the hex RFC 6962 root of the leaves.
LOTS = """async (lots) => {
  const out = [];
  const enc = new TextEncoder();
  for (const [gtin, lot, leaves] of lots) {
    const root = await window.EpcisHash.merkleRoot(leaves.map((l) => enc.encode(l)));
    out.push([await window.EpcisHash.lotCommitmentLeaf(gtin, lot, leaves),
              Array.from(root, (b) => b.toString(16).padStart(2, "0")).join("")]);
  }
  return out;
}"""


def lot_cases(leaves: list[str]) -> list[tuple[str, str, list[str]]]:
    """Lots of every tree shape up to 17 leaves (odd nodes carried up at each level), the
    leaves drawn from the corpus' anchor leaves, lot codes with non-ASCII characters."""
    rng = random.Random(16)
    out = []
    for size in [*range(1, 18), 33]:
        gtin = f"{rng.randrange(10**13):014d}"
        lot = rng.choice(["P2024-07", "桃-07/α", "LOT 1", "x" * 20])
        out.append((gtin, lot, rng.sample(leaves, size)))
    return out


def generated_events() -> list[dict[str, Any]]:
    """The Python differential test's events, derandomized; half carry a JSON-LD @context
    (so CURIE prefixes in values and keys expand), half do not."""
    out: list[dict[str, Any]] = []
    for event_type in sorted(_SHAPES):

        @settings(
            max_examples=EXAMPLES_PER_TYPE,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(events(event_type), st.booleans())
        def collect(event: dict[str, Any], with_context: bool) -> None:
            out.append({"@context": CONTEXT, **event} if with_context else event)

        collect()
    return out


_EX = {"@context": CONTEXT, "type": "ObjectEvent", "action": "OBSERVE"}
_EX_BASE = {
    **_EX,
    "eventTime": "2024-03-01T08:00:00.9995+05:45",
    "eventTimeZoneOffset": "+05:45",
    # Arabic-Indic digits: Python's \d takes them, so the port's regexes must too.
    "epcList": ["https://id.gs1.org/01/٠٩٥٢١٢٣٤٥٤٣٢١٣", "urn:epc:id:sgtin:0614141.812345.6789"],
}
# Where JavaScript and Python part ways; each case fails a port that ignores it.
NASTY: list[dict[str, Any]] = [
    # sorted(): code points, not UTF-16 units (U+FF21 sorts before U+1F600 in Python).
    {**_EX_BASE, "ex:a": ["\uff21", "\U0001f600", "\ue000x", "\U00010000"]},
    # str.strip(): U+FEFF stays, U+001C and U+0085 go (String.trim() does the opposite).
    {**_EX_BASE, "ex:b": "\ufeffx", "ex:c": "\x1c y \x85", "ex:d": "\u3000z\u2028"},
    # Decimal: 28 significant digits when not integral, exact when integral; floats by repr.
    {
        **_EX_BASE,
        "ex:n1": "1.2345678901234567890123456789012",
        "ex:n2": "123456789012345678901234567890.5",
        "ex:n3": 1e-7,
        "ex:n4": 1e21,
        "ex:n5": 0.1 + 0.2,
        "ex:n6": "9.99999999999999999999999999999",
        "ex:n7": "-0.000E5",
        # JSON integers past 2^53: exact in Python, so parsed from their source text in JS.
        "ex:n8": 12345678901234567,
        "ex:n9": -(10**30) - 1,
    },
    # Times: basic format, date only, sub-millisecond rounding across a day, odd offsets.
    {
        **_EX_BASE,
        "eventTime": "20240301T080000Z",
        "sensorElementList": [
            {
                "sensorMetadata": {"time": "2024-03-01"},
                "sensorReport": [
                    {"type": "Temperature", "time": "2024-02-29T23:59:59.99951-00:30", "value": 3.5}
                ],
            }
        ],
    },
    # Vocabulary lookups are maps, not objects with a prototype; CBV URNs replaced everywhere.
    {
        **_EX_BASE,
        "bizStep": "constructor",
        "disposition": "urn:epcglobal:cbv:disp:in_transit",
        "ex:u": "urn:epcglobal:cbv:btt:po urn:epcglobal:cbv:btt:inv",
    },
    # strftime("%Y") leaves a year below 1000 unpadded.
    {**_EX_BASE, "eventTime": "0999-01-01T00:30:00+01:00", "bizStep": "toString"},
]


def cases() -> list[tuple[str, str | None, list[str]]]:
    """(event JSON, document context JSON or None, [pre-hash, hash, leaf] from Python)."""
    out: list[tuple[str, str | None, list[str]]] = []
    for event in [*NASTY, *generated_events()]:
        text = json.dumps(event, ensure_ascii=False)
        parsed = json.loads(text)  # what the page sees: the report's JSON, parsed
        expected = [prehash(parsed), event_hash(parsed), anchor_leaf(parsed).decode("utf-8")]
        out.append((text, None, expected))
    for path in sorted(VECTORS.glob("*.jsonld")):
        document = json.loads(path.read_text(encoding="utf-8"))
        base = namespaces_from_context(document.get("@context"))
        for item in document_events(document):
            ns = namespaces_from_context(item.get("@context"), base)
            expected = [
                prehash(item, ns),
                event_hash(item, ns),
                anchor_leaf(item, ns).decode("utf-8"),
            ]
            context = json.dumps(document.get("@context"), ensure_ascii=False)
            out.append((json.dumps(item, ensure_ascii=False), context, expected))
    return out


@contextmanager
def live_api(settings: Settings, trace: TraceSettings) -> Iterator[str]:
    from tuanbox.trace.views import router

    engine = make_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    app.state.trace_settings = trace
    app.include_router(router)
    try:
        with serve(app) as base:
            yield base
    finally:
        engine.dispose()


def seed_lot(database_url: str) -> None:
    """The demo lot with its journey recorded (pending: the page needs no anchor here)."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        merchant = make_merchant(session, name="Fenghua Honey Peach Cooperative")
        product = make_product(session, merchant, gtin=tf.GTIN)
        session.add(Lot(product_id=product.id, gtin=tf.GTIN, lot_code=tf.LOT))
        session.flush()
        for event in tf.journey_events():
            record_event(session, event, merchant_id=merchant.id)
    engine.dispose()


def test_js_vocabularies_are_the_python_ones() -> None:
    """epcis_hash.js carries the EPCIS 2.0 context's bare terms as traceability.epcis_terms."""
    from traceability import epcis_terms

    source = HASH_JS.read_text(encoding="utf-8")
    lists = dict(re.findall(r'^\s+([A-Z_]+): (\[".*"\]),$', source, flags=re.M))
    assert CONTEXT_VERSION.startswith("https://ref.gs1.org/standards/epcis/2.0.0/")
    python = {
        name.removesuffix("_TERMS"): terms
        for name, terms in vars(epcis_terms).items()
        if name.endswith("_TERMS")
    }
    assert sorted(lists) == sorted(python)
    for name, text in lists.items():
        base, words = json.loads(text)
        assert {w: base + w for w in words.split(" ")} == python[name], name


@pytest.mark.browser
def test_page_hashes_agree_with_python(
    fresh_database: Callable[[], str], trace_settings: TraceSettings
) -> None:
    settings = make_settings(database_url=fresh_database())
    seed_lot(settings.database_url)
    corpus = cases()
    assert len(corpus) >= 400
    with live_api(settings, trace_settings) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            refused = watch_csp(page)
            page.goto(f"{base}/01/{tf.GTIN}/10/{tf.LOT}")
            page.wait_for_function("window.EpcisHash !== undefined")
            got = page.evaluate(RUN, [[text, context] for text, context, _ in corpus])
            lots = lot_cases([want[2] for _, _, want in corpus])
            lot_got = page.evaluate(LOTS, [list(lot) for lot in lots])
            assert refused == [], refused
        finally:
            browser.close()
    differ = [
        (text, want, have)
        for (text, _, want), have in zip(corpus, got, strict=True)
        if list(have) != want
    ]
    # Name the first few differences whole: the event, Python's strings and the page's.
    assert differ == [], f"{len(differ)} of {len(corpus)} differ, first: {differ[:3]}"
    # The completeness leaf a window commits per lot: the page rebuilds Python's exactly.
    for (gtin, lot, leaves), (leaf, root) in zip(lots, lot_got, strict=True):
        sub_root = merkle.root([text.encode("utf-8") for text in leaves])
        assert root == sub_root.hex(), (len(leaves), root)
        assert leaf == lot_leaf(gtin, lot, len(leaves), sub_root).decode("utf-8"), leaf
    # Not vacuous: the corpus reaches the parts that differ most between Python and JS.
    joined = "".join(want[0] for _, _, want in corpus)
    for fragment in ("sensorElementList", "{https://ns.example.com/epcis/}", "errorDeclaration"):
        assert fragment in joined or any(fragment in w[2] for _, _, w in corpus), fragment
    assert any(ord(ch) > 0xFFFF for ch in joined)  # astral characters sort by code point
