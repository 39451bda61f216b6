"""What the README tells a newcomer to install is what is needed: no Python browser package (the
browser tests use node's playwright-core), and the celline lines CI runs are the README's own,
giving a celline that imports without polars' "binary is missing" warning."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec

from support import REPO, require_service

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

IMPORTS_PLAYWRIGHT = re.compile(r"^\s*(import|from)\s+playwright\b|importorskip\(\s*[\"']playwright", re.M)


def readme_celline_lines() -> list[str]:
    """The lines .ci/run runs: `pip install` lines of the code block after README's marker."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- celline-install", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("pip install ")]


def test_nothing_imports_python_playwright_and_dev_does_not_install_it():
    files = [p for p in REPO.rglob("*.py") if not {"node_modules", ".venv", ".git"} & set(p.parts)]
    assert [p for p in files if IMPORTS_PLAYWRIGHT.search(p.read_text(encoding="utf-8"))] == []
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not [r for r in extras["dev"] if r.lower().startswith("playwright")]


def test_the_readme_celline_lines_pin_polars_and_ci_runs_them():
    assert readme_celline_lines() == ['pip install toml "polars>=1.26,<2" rich',
                                      "pip install --no-deps celline==1.1.0"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "sed -n '/<!-- celline-install/" in ci and 'eval "python3 -m $line' in ci


def test_celline_imports_without_the_polars_warning():
    require_service(find_spec("celline") is not None, "celline is not installed: run the README's celline lines")
    result = subprocess.run([sys.executable, "-c", "import celline.interfaces"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "binary is missing" not in (result.stdout + result.stderr).lower()


def test_the_quick_part_leaves_out_every_cluster_and_browser_test():
    """`-m "not slow"` (the README's quick part) selects no test that needs SLURM or Chromium, also
    those that only ask for a SLURM fixture."""
    def collected(*args: str) -> set[str]:
        out = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *args,
                              "tests/integration/test_cli.py", "tests/integration/test_pbs.py",
                              "tests/integration/test_report_browser.py"],
                             cwd=REPO, capture_output=True, text=True, timeout=300).stdout
        return {line for line in out.splitlines() if "::" in line}

    everything, quick = collected(), collected("-m", "not slow")
    left_out = everything - quick
    assert quick and left_out and quick < everything
    assert {t.split("::")[1] for t in left_out if "test_cli.py" in t} == {  # the two using a SLURM fixture
        "test_stale_warnings_are_yellow_on_a_terminal_only", "test_the_schedulers_own_queue_is_data_too"}
    assert not [t for t in quick if "test_pbs.py" in t or "test_report_browser.py" in t or "stale_warnings" in t]
