"""The arrows of the layout (DESIGN.md): reports -> paylinks -> clinics -> clinics.provet; nothing
in production imports the demo or the sandbox. The contracts are in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # lint-imports runs as a process of its own

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_every_import_runs_the_way_the_layout_says():
    checked = lint_imports()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout


def test_control_an_arrow_the_code_breaks_is_caught(tmp_path):
    """paylinks does import clinics: a contract forbidding it must fail."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["clinics", "paylinks"]\n'
        '[[tool.importlinter.contracts]]\nname = "backwards"\ntype = "forbidden"\n'
        'source_modules = ["paylinks"]\nforbidden_modules = ["clinics"]\n'
    )
    checked = lint_imports("--config", str(config))
    assert checked.returncode != 0
    assert "backwards BROKEN" in checked.stdout
