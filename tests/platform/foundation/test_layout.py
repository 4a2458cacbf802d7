"""The repository layout promises: no `platform` package shadowing, a lean edge install."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLATFORM_ONLY = {"fastapi", "sqlalchemy", "celery", "web3", "alembic", "psycopg", "uvicorn"}


def test_platform_is_the_standard_library_module() -> None:
    import platform

    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.python_version)
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert (ROOT / "platform" / "tuanbox" / "__init__.py").exists()


def test_layout_matches_architecture() -> None:
    for folder in ("platform/tuanbox", "edge", "firmware_sim", "telemetry", "traceability",
                   "tests", "bench"):  # fmt: skip
        assert (ROOT / folder).is_dir(), folder
    for file in ("pyproject.toml", "docker-compose.yml", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / file).is_file(), file


def _requirement_names(extra: str) -> set[str]:
    """Names the edge extra pulls in directly, following our own self-referencing extras."""
    reqs = importlib.metadata.requires("tuanbox") or []
    names: set[str] = set()
    for req in reqs:
        name, _, marker = req.partition(";")
        if marker and f'extra == "{extra}"' not in marker:
            continue
        names.add(name.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower())
    return names


def test_edge_extra_pulls_no_platform_dependency() -> None:
    names = _requirement_names("edge") | _requirement_names("")
    assert "paho-mqtt" in names and "pyserial" in names
    assert not names & PLATFORM_ONLY, names & PLATFORM_ONLY
    assert "tuanbox" not in names  # no self-reference dragging the platform extra in


@pytest.mark.parametrize("package", ["edge", "firmware_sim"])
def test_edge_side_code_never_imports_the_platform(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0].lower()
                if top == "tuanbox" or top in PLATFORM_ONLY:
                    offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not offenders, offenders


def test_every_module_starts_with_a_docstring() -> None:
    missing = []
    for package in ("platform/tuanbox", "edge", "firmware_sim", "telemetry", "traceability"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations/versions" in str(path) or path.stat().st_size == 0:
                continue
            if ast.get_docstring(ast.parse(path.read_text())) is None:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing


def test_python_is_recent_enough() -> None:
    assert sys.version_info >= (3, 11)


@pytest.mark.slow
def test_pip_resolves_the_edge_extra_without_platform_packages(tmp_path: Path) -> None:
    """What a Raspberry Pi would really install: pip's resolver, not just our declarations."""
    import json
    import subprocess

    report = tmp_path / "report.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            f"{ROOT}[edge]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"paho-mqtt", "pyserial", "pydantic"} <= names
    assert not names & (PLATFORM_ONLY | {"starlette", "redis", "eth-account", "vyper"})
