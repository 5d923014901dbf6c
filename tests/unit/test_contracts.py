"""The import contracts in pyproject.toml hold, and they catch a forbidden import: a copy of the
package with `import docker` added to the planner fails them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the package under `tree` (found first on PYTHONPATH), with its pyproject."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def copy_of_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "pgtopo", tmp_path / "pgtopo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_planner_importing_docker_breaks_them(tmp_path: Path) -> None:
    tree = copy_of_package(tmp_path)
    with open(tree / "pgtopo" / "plan.py", "a") as plan:
        plan.write("\nimport docker  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "pgtopo.plan is not allowed to import docker" in result.stdout


def test_an_adapter_importing_the_executor_breaks_them(tmp_path: Path) -> None:
    tree = copy_of_package(tmp_path)
    with open(tree / "pgtopo" / "docker_ops.py", "a") as ops:
        ops.write("\nfrom pgtopo import execute  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "pgtopo.docker_ops is not allowed to import pgtopo.execute" in result.stdout
