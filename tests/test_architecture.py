"""The import direction of DESIGN.md (factory <- jobs <- worker, submitter), and a fast CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("factory", "jobs", "worker", "submitter")
FORBIDDEN = {
    "factory": {"redis", "rq", "jobs", "worker", "submitter"},
    "jobs": {"worker", "submitter"},
    "worker": {"submitter", "factory"},
    "submitter": {"worker", "factory", "torch", "xgboost", "lightgbm", "catboost"},
}
MAX_LINES = 500


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package):
    bad = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in _sources(package)
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{package} imports what DESIGN.md forbids: {bad}"


def test_the_rule_catches_a_violation(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import redis\nfrom jobs.spec import Spec\n")
    assert _imports(sample) & FORBIDDEN["factory"] == {"redis", "jobs"}


@pytest.mark.parametrize("package", PACKAGES)
def test_files_stay_small(package):
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources(package)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_cli_start_up_loads_no_heavy_library():
    code = (
        "import sys, submitter.cli as c; c.build_parser();"
        "heavy = [m for m in ('torch', 'pandas', 'numpy', 'xgboost', 'redis') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"`factory --help` imports {out.stdout.strip()}"
