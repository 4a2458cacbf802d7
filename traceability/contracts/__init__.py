"""The Anchor contract: Vyper source, its compiled artifact, and the build that makes it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SOURCE_PATH = HERE / "Anchor.vy"
ARTIFACT_PATH = HERE / "Anchor.json"
VYPER_VERSION = "0.4.3"


def compile_anchor() -> dict[str, Any]:
    """Compile Anchor.vy with the pinned Vyper and return the artifact (abi, bytecode...)."""
    import vyper  # the compiler is only needed to build, never to run

    if vyper.__version__ != VYPER_VERSION:
        raise RuntimeError(f"Vyper {VYPER_VERSION} is pinned, found {vyper.__version__}")
    source = SOURCE_PATH.read_text()
    output = vyper.compile_code(source, output_formats=["abi", "bytecode", "bytecode_runtime"])
    return {
        "contractName": "Anchor",
        "compiler": f"vyper-{VYPER_VERSION}",
        "sourceSha256": hashlib.sha256(source.encode()).hexdigest(),
        "abi": output["abi"],
        "bytecode": output["bytecode"],
        "deployedBytecode": output["bytecode_runtime"],
    }


def load_artifact() -> dict[str, Any]:
    """The checked-in artifact (what deploys and clients use; no compiler needed)."""
    artifact: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text())
    return artifact


def build() -> Path:
    """Regenerate Anchor.json from Anchor.vy."""
    ARTIFACT_PATH.write_text(json.dumps(compile_anchor(), indent=2, sort_keys=True) + "\n")
    return ARTIFACT_PATH
