"""GS1's reference EPCIS Event Hash generator, run offline, and where it departs from CBV 2.0."""

from __future__ import annotations

import copy
import importlib.resources
import json
import logging
from collections.abc import Mapping
from typing import Any

from epcis_event_hash_generator import hash_generator, json_to_py
from pyld import jsonld

from traceability.hashing import namespaces_from_context, prehash_parts

_CONTEXT_FILE = "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"
EPCIS_CONTEXT = json.loads(
    importlib.resources.files("epcis_event_hash_generator").joinpath(_CONTEXT_FILE).read_text()
)
EX = "https://ns.example.com/epcis/"
EX2 = "https://ns.example.org/ext-2/"
CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"ex": EX, "ex2": EX2},
]


def _offline_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every EPCIS context URL resolves to the 2.0.0 context the package ships; nothing else."""
    if "epcis-context" not in url:
        raise ValueError(f"no network in tests: {url}")
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": EPCIS_CONTEXT,
    }


def reference_prehash(event: Mapping[str, Any], context: Any = None) -> str | None:
    """The reference's pre-hash of one event; None when it cannot hash it (it logs and drops)."""
    jsonld.set_document_loader(_offline_loader)
    document = {
        "@context": CONTEXT if context is None else context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-01-01T00:00:00.000Z",
        "epcisBody": {"eventList": [copy.deepcopy(dict(event))]},
    }
    json_to_py._namespaces.clear()  # module-global: would leak prefixes between documents
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        events = json_to_py.event_list_from_epcis_document_json(document)
        result = hash_generator.derive_prehashes_from_events(events)
    finally:
        logging.disable(previous)
    return result[0] if len(result) == 1 else None


# Named departure of the reference (1.9.3) from CBV 2.0 §8.9.2, applied to OUR parts so that
# the rest of both strings must agree byte for byte.
#
# REFERENCE_LIST_ORDER. The standard's canonical property order (CBV 2.0 §8.9.2, the table the
# reference's README repeats): "20 bizTransactionList – bizTransaction, 21 sourceList – source,
# 22 destinationList – destination, 23 sensorElementList – sensorElement, 24 ilmd – {ILMD
# elements}, 25 {User extension elements}". The reference's JSON model turns every element of
# these three lists into a pair that its property order can never match, and files ILMD under
# no order at all, so all four fall through to its sorted leftovers: after sensorElementList,
# mixed with the user extensions, destinationList before sourceList. We follow the standard.
MOVED_BY_REFERENCE = frozenset(
    {"bizTransactionList", "sourceList", "destinationList", "ilmd", "extension"}
)


def ours_in_reference_layout(event: Mapping[str, Any], context: Any = None) -> str:
    """Our pre-hash with REFERENCE_LIST_ORDER undone, for a byte-for-byte comparison."""
    parts = prehash_parts(event, namespaces_from_context(CONTEXT if context is None else context))
    kept = "".join(text for name, text in parts if name not in MOVED_BY_REFERENCE)
    moved = sorted(text for name, text in parts if name in MOVED_BY_REFERENCE)
    return kept + "".join(moved)
