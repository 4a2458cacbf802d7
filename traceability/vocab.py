"""GS1 CBV 2.0 vocabularies (bizStep, disposition, transaction/source types, error reasons)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

CBV_BASE = "https://ref.gs1.org/cbv/"

BIZ_STEPS = frozenset(
    [
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    ]
)

DISPOSITIONS = frozenset(
    [
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_instance",
        "mismatch_class",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    ]
)

BIZ_TRANSACTION_TYPES = frozenset(
    [
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    ]
)
SOURCE_DEST_TYPES = frozenset({"owning_party", "possessing_party", "location"})
ERROR_REASONS = frozenset({"did_not_occur", "incorrect_data"})
SENSOR_ALERT_TYPES = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})


@dataclass(frozen=True)
class Vocabulary:
    """One CBV vocabulary: its term prefix in web URIs and in legacy URNs, and its terms."""

    name: str
    web_prefix: str
    urn_prefix: str
    terms: frozenset[str]

    def canonical(self, value: str) -> str:
        """The CBV 2.0 web URI for a bare term, a legacy URN or a web URI (unchecked)."""
        value = value.strip()
        if value.startswith(self.urn_prefix):
            return CBV_BASE + self.web_prefix + value[len(self.urn_prefix) :]
        for legacy in (
            "https://ns.gs1.org/cbv/",
            "https://gs1.org/voc/",
            "https://ref.gs1.org/cbv/",
        ):
            if value.startswith(legacy + self.web_prefix):
                return CBV_BASE + value[len(legacy) :]
        if ":" not in value:
            return CBV_BASE + self.web_prefix + value
        return value

    def check(self, value: str) -> str | None:
        """None when valid; otherwise why not. User vocabularies (own URIs) are allowed."""
        canonical = self.canonical(value)
        if canonical.startswith(CBV_BASE + self.web_prefix):
            term = canonical[len(CBV_BASE + self.web_prefix) :]
            if term not in self.terms:
                return f"{value!r} is not a CBV 2.0 {self.name}"
            return None
        parsed = urlsplit(canonical)
        if parsed.scheme in ("http", "https") and parsed.netloc and "gs1.org" not in parsed.netloc:
            return None
        return f"{value!r} is not a CBV 2.0 {self.name} nor a user vocabulary URI"


BIZ_STEP = Vocabulary("bizStep", "BizStep-", "urn:epcglobal:cbv:bizstep:", BIZ_STEPS)
DISPOSITION = Vocabulary("disposition", "Disp-", "urn:epcglobal:cbv:disp:", DISPOSITIONS)
BIZ_TRANSACTION_TYPE = Vocabulary(
    "business transaction type", "BTT-", "urn:epcglobal:cbv:btt:", BIZ_TRANSACTION_TYPES
)
SOURCE_DEST_TYPE = Vocabulary(
    "source/destination type", "SDT-", "urn:epcglobal:cbv:sdt:", SOURCE_DEST_TYPES
)
ERROR_REASON = Vocabulary("error reason", "ER-", "urn:epcglobal:cbv:er:", ERROR_REASONS)
