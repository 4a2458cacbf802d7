"""End to end on our own anvil: journey events → window → anchor → trace report → verify,
and the failures a verifier must name: tampered event, wrong proof, root never anchored,
report checked against a different chain."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.traceability import factories
from tests.traceability.conftest import Anvil, settings_for
from traceability.anchoring import AnchoringService, InMemoryAnchorRepository, PendingLeaf
from traceability.chain import ChainClient
from traceability.cli import run_verify
from traceability.hashing import (
    CURRENT_HASH_VERSION,
    LEGACY_HASH_VERSION,
    anchor_leaf,
    event_hash,
)
from traceability.lookup import RpcRootLookup
from traceability.report import StoredEvent, TraceReport, build_report, load_report
from traceability.verify import verify_report


def _anchored_report(
    client: ChainClient, extra_pending: int = 1, leaf_version: int = CURRENT_HASH_VERSION
) -> TraceReport:
    events = factories.journey_events()
    repo = InMemoryAnchorRepository()
    for i, event in enumerate(events):
        leaf = anchor_leaf(event, version=leaf_version)
        lots = ((factories.GTIN, factories.LOT),)
        repo.add_event(PendingLeaf(f"ev{i}", leaf, factories.NOW, lots))
    # Unrelated events from other lots share the window, as in production.
    for i in range(5):
        other = ((factories.GTIN, f"OTHER-{i % 2}"),)
        repo.add_event(PendingLeaf(f"other{i}", f"other-lot-{i}".encode(), factories.NOW, other))
    ids = (f"w{i}" for i in itertools.count(1))
    service = AnchoringService(
        repo,
        client,
        window_seconds=600,
        window_max_events=10_000,
        new_id=lambda: next(ids),
        clock=lambda: factories.NOW.replace(hour=1),
    )
    summary = service.run_once()
    assert summary.anchored == ["w1"], summary
    stored = [StoredEvent(f"ev{i}", e, repo.window_of(f"ev{i}")) for i, e in enumerate(events)]
    late = factories.journey_events(start=factories.NOW)[:extra_pending]
    stored += [StoredEvent(f"late{i}", e, None) for i, e in enumerate(late)]
    return build_report(
        factories.GTIN,
        factories.LOT,
        stored,
        generated_at=factories.NOW,
        rpc_url=client.settings.rpc_url,
    )


@pytest.fixture
def report(deployed: ChainClient) -> TraceReport:
    return _anchored_report(deployed)


@pytest.fixture(scope="module")
def other_chain() -> Iterator[str]:
    """A second, unrelated chain (id 1337): the 'different chain' a report must fail on."""
    import subprocess

    from tests.support import free_port
    from tests.traceability.conftest import ANVIL_CANDIDATES

    binary = next(p for p in ANVIL_CANDIDATES if p.exists())
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--chain-id", "1337", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    lookup = RpcRootLookup(url, timeout=1)
    import time

    from traceability.errors import ChainUnavailableError

    deadline = time.monotonic() + 20
    while True:
        try:
            lookup.chain_id()
            break
        except ChainUnavailableError:
            assert time.monotonic() < deadline, "second anvil did not start"
            time.sleep(0.05)  # polling a starting process, bounded by the deadline
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_report_shape(report: TraceReport) -> None:
    assert report.digital_link == "https://id.gs1.org/01/06901234567892/10/PEACH-2611"
    assert [e.status for e in report.events] == ["anchored"] * 5 + ["pending"]
    (anchor,) = report.anchors
    # 10 event leaves and 3 completeness leaves (one per lot in the window)
    assert anchor.event_count == 13 and anchor.chain_id == 31337
    assert {e.proof.tree_size for e in report.events if e.proof} == {13}
    assert report.pending_count == 1


def test_end_to_end_verification_passes(anvil: Anvil, report: TraceReport) -> None:
    result = verify_report(report, RpcRootLookup(anvil.url))
    assert result.complete, result.first_failure
    statuses = [c.status for c in result.checks]
    assert statuses.count("fail") == 0 and "pending" in statuses
    assert [c.check for c in result.checks if c.status == "pass"].count("on-chain") == 1


def test_report_survives_json_round_trip(anvil: Anvil, report: TraceReport) -> None:
    again = load_report(json.loads(report.model_dump_json()))
    assert verify_report(again, RpcRootLookup(anvil.url)).ok


def test_tampered_event_fails(anvil: Anvil, report: TraceReport) -> None:
    data = json.loads(report.model_dump_json())
    report_sensor = data["events"][3]["event"]["sensorElementList"][0]["sensorReport"][0]
    report_sensor["maxValue"] = 3.9  # hide a warm spell
    result = verify_report(load_report(data), RpcRootLookup(anvil.url))
    failure = result.first_failure
    assert failure is not None
    assert failure.subject == "event 4 (storing)" and failure.check == "hash"
    assert failure.detail.startswith("tampered event")


def test_tampered_event_with_recomputed_hash_fails_the_proof(
    anvil: Anvil, report: TraceReport
) -> None:

    data = json.loads(report.model_dump_json())
    data["events"][0]["event"]["ilmd"]["tb:farmName"] = "Someone Else's Farm"
    data["events"][0]["event_hash"] = event_hash(data["events"][0]["event"])
    failure = verify_report(load_report(data), RpcRootLookup(anvil.url)).first_failure
    assert failure is not None and failure.check == "proof"
    assert failure.detail.startswith("wrong proof")


def test_wrong_proof_fails(anvil: Anvil, report: TraceReport) -> None:
    data = json.loads(report.model_dump_json())
    data["events"][1]["proof"]["siblings"][0] = "0x" + "00" * 32
    failure = verify_report(load_report(data), RpcRootLookup(anvil.url)).first_failure
    assert failure is not None
    assert (failure.subject, failure.check) == ("event 2 (shipping)", "proof")
    assert "wrong proof" in failure.detail


def test_root_never_anchored_fails(anvil: Anvil, report: TraceReport) -> None:
    fresh = ChainClient(settings_for(anvil)).deploy().contract_address
    data = json.loads(report.model_dump_json())
    data["anchors"][0]["contract"] = fresh  # a contract that never saw this root
    failure = verify_report(load_report(data), RpcRootLookup(anvil.url)).first_failure
    assert failure is not None and failure.check == "on-chain"
    assert failure.detail.startswith("root never anchored")


def test_different_chain_fails(report: TraceReport, other_chain: str) -> None:
    failure = verify_report(report, RpcRootLookup(other_chain)).first_failure
    assert failure is not None
    assert "different chain" in failure.detail
    assert "chain 31337" in failure.detail and "chain 1337" in failure.detail


def test_unreachable_rpc_fails_clearly(report: TraceReport) -> None:
    failure = verify_report(report, RpcRootLookup("http://127.0.0.1:9", timeout=1)).first_failure
    assert failure is not None and "chain_unavailable" in failure.detail


def test_offline_skips_chain_but_checks_proofs(report: TraceReport) -> None:
    result = verify_report(report, None)
    assert result.ok and not result.complete
    assert any(c.status == "skip" for c in result.checks)


def test_cli_verify_table_and_exit_codes(anvil: Anvil, report: TraceReport, tmp_path: Path) -> None:
    good = tmp_path / "report.json"
    good.write_text(report.model_dump_json(indent=2))
    code, text = run_verify(good, anvil.url, offline=False)
    assert code == 0, text
    assert (
        "SUBJECT" in text
        and "event 1 (commissioning)" in text
        and text.endswith("OK: every event hash, proof and root checked")
    )
    data = json.loads(good.read_text())
    data["events"][2]["event"]["eventTime"] = "2026-11-28T13:00:00+08:00"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(data))
    code, text = run_verify(bad, anvil.url, offline=False)
    assert code == 1
    assert text.splitlines()[-1].startswith("FAILED: event 3 (receiving) hash: tampered event")
    code, text = run_verify(good, None, offline=False)
    assert code == 2 and "--rpc" in text


def test_report_refuses_store_drift(deployed: ChainClient) -> None:
    events = factories.journey_events()
    repo = InMemoryAnchorRepository()
    repo.add_event(PendingLeaf("ev0", anchor_leaf(events[0]), factories.NOW))
    ids = iter(["w1"])
    AnchoringService(
        repo,
        deployed,
        window_seconds=1,
        window_max_events=10,
        new_id=lambda: next(ids),
        clock=lambda: factories.NOW.replace(hour=2),
    ).run_once()
    edited = copy.deepcopy(events[0])
    edited["quantityList"][0]["quantity"] = 99
    from traceability.errors import ReportError

    with pytest.raises(ReportError):
        build_report(
            factories.GTIN,
            factories.LOT,
            [StoredEvent("ev0", edited, repo.window_of("ev0"))],
            generated_at=factories.NOW,
        )


def test_new_reports_state_hash_version_2(report: TraceReport) -> None:
    assert {e.hash_version for e in report.events} == {CURRENT_HASH_VERSION}


def test_reports_anchored_with_hash_version_1_still_verify(
    anvil: Anvil, deployed: ChainClient
) -> None:
    """Windows anchored before the GS1-conformant pre-hash keep their version 1 leaves; a
    report states it per event, and one written before the field existed defaults to 1."""
    report = _anchored_report(deployed, leaf_version=LEGACY_HASH_VERSION)
    versions = [(e.status, e.hash_version) for e in report.events]
    assert ("anchored", LEGACY_HASH_VERSION) in versions
    assert ("pending", CURRENT_HASH_VERSION) in versions
    assert verify_report(report, RpcRootLookup(anvil.url)).complete

    old = json.loads(report.model_dump_json())
    old["events"] = [e for e in old["events"] if e["status"] == "anchored"]
    for item in old["events"]:
        del item["hash_version"]
    loaded = load_report(old)
    assert {e.hash_version for e in loaded.events} == {LEGACY_HASH_VERSION}
    assert verify_report(loaded, RpcRootLookup(anvil.url)).complete


def test_claiming_the_other_hash_version_fails(anvil: Anvil, report: TraceReport) -> None:
    forged = copy.deepcopy(report)
    anchored = next(
        e
        for e in forged.events
        if e.status == "anchored"
        and event_hash(e.event, version=LEGACY_HASH_VERSION) != e.event_hash
    )
    anchored.hash_version = LEGACY_HASH_VERSION
    result = verify_report(forged, RpcRootLookup(anvil.url))
    assert result.first_failure is not None and result.first_failure.check == "hash"
    anchored.hash_version = 7
    failure = verify_report(forged, RpcRootLookup(anvil.url)).first_failure
    assert failure is not None and "unknown hash version 7" in failure.detail


def test_report_commits_the_lot_event_list(deployed: ChainClient) -> None:
    report = _anchored_report(deployed)
    (commitment,) = report.lot_commitments
    assert commitment.count == 5 and commitment.root == report.anchors[0].root
    # 10 event leaves, then one completeness leaf per lot (OTHER-0, OTHER-1, then ours).
    assert commitment.proof.leaf_index == 12 and commitment.proof.tree_size == 13
    checks = [c for c in verify_report(report, None).checks if c.check == "completeness"]
    assert [c.status for c in checks] == ["pass"]
    assert "all 5 events of the lot in this window" in checks[0].detail


def test_report_that_omits_an_event_fails_verification(anvil: Anvil, deployed: ChainClient) -> None:
    data = _anchored_report(deployed).model_dump(mode="json")
    del data["events"][2]  # the receiving event, silently left out
    result = verify_report(load_report(data), RpcRootLookup(anvil.url))
    assert not result.ok
    failure = result.first_failure
    assert failure is not None and failure.check == "completeness"
    assert failure.detail == (
        "incomplete report: this window commits 5 events of lot "
        f"{factories.GTIN}/{factories.LOT}, the report shows 4"
    )
    # Every event left is intact: only the completeness check can tell.
    assert all(c.status != "fail" for c in result.checks if c.check != "completeness")


def test_swapped_or_forged_commitments_fail(deployed: ChainClient) -> None:
    data = _anchored_report(deployed).model_dump(mode="json")
    data["lot_commitments"][0]["count"] = 4  # claims fewer events: its leaf no longer folds
    del data["events"][2]
    failure = verify_report(load_report(data), None).first_failure
    assert failure is not None and failure.detail.startswith("wrong completeness proof")
    data = _anchored_report(deployed).model_dump(mode="json")
    data["lot_commitments"] = []  # stripped: the window then checks as uncommitted, not passed
    result = verify_report(load_report(data), None)
    assert not result.complete
    assert [c.status for c in result.checks if c.check == "completeness"] == ["skip"]
