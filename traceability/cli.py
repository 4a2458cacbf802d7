"""``tuanbox trace …`` commands: verify a trace report, deploy the Anchor contract."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from traceability.errors import TraceError
from traceability.verify import Check, VerificationResult

app = typer.Typer(
    help="Provenance: verify trace reports, deploy the anchor contract.", no_args_is_help=True
)


def format_table(checks: list[Check]) -> str:
    """Checks as an aligned plain-text table."""
    rows = [("SUBJECT", "CHECK", "STATUS", "DETAIL")]
    rows += [(c.subject, c.check, c.status.upper(), c.detail) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


def run_verify(report_path: Path, rpc: str | None, offline: bool) -> tuple[int, str]:
    """Verify a report file; returns (exit code, printed text)."""
    from traceability.lookup import RpcRootLookup
    from traceability.report import load_report
    from traceability.verify import verify_report

    try:
        report = load_report(json.loads(report_path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        return 2, f"FAILED: cannot read {report_path}: {exc}"
    except TraceError as exc:
        return 2, f"FAILED: {exc.message}"
    if rpc is None and not offline:
        return 2, "FAILED: give --rpc URL of a node of the chain (or --offline to skip it)"
    result: VerificationResult = verify_report(report, RpcRootLookup(rpc) if rpc else None)
    lines = [
        f"Trace report {report.digital_link}: {len(report.events)} events, "
        f"{report.pending_count} pending, {len(report.anchors)} anchors",
        "",
        format_table(result.checks),
        "",
    ]
    failure = result.first_failure
    if failure is not None:
        lines.append(f"FAILED: {failure.subject} {failure.check}: {failure.detail}")
        return 1, "\n".join(lines)
    lines.append(
        "OK: every event hash, proof and root checked"
        if rpc
        else "OK offline: hashes and proofs checked, roots NOT checked on chain"
    )
    return 0, "\n".join(lines)


@app.command()
def verify(
    report: Path = typer.Argument(..., help="Trace report JSON (GET /api/v1/trace/{gtin}/{lot})."),
    rpc: str | None = typer.Option(None, "--rpc", help="JSON-RPC URL of any node of the chain."),
    offline: bool = typer.Option(False, help="Skip the on-chain check of the roots."),
) -> None:
    """Recompute every event hash, fold every Merkle proof, check every root on chain."""
    code, text = run_verify(report, rpc, offline)
    typer.echo(text, err=code != 0 and not text.startswith("Trace"))
    raise typer.Exit(code)


@app.command()
def deploy() -> None:
    """Deploy the Anchor contract with the configured signer; prints TRACE_CONTRACT_ADDRESS."""
    from traceability.chain import ChainClient
    from traceability.settings import get_settings

    client = ChainClient(get_settings())
    try:
        client.check_chain()
        result = client.deploy()
    except TraceError as exc:
        typer.echo(f"FAILED: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"TRACE_CONTRACT_ADDRESS={result.contract_address}")
    typer.echo(f"# tx {result.tx_hash} block {result.block_number} gas {result.gas_used}")
