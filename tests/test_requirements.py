"""tests/requirements.py: a missing tool skips a test locally and fails it under CI=true."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from requirements import require

TESTS = Path(__file__).resolve().parent


def test_a_requirement_that_is_there_lets_the_test_go_on(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require("/usr/bin/sipp", "the sipp executable", "apt install sip-tester") is None


def test_a_missing_requirement_skips_locally_naming_what_and_how(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"the sipp executable is missing \(apt install sip-tester\)"):
        require(None, "the sipp executable", "apt install sip-tester")
    monkeypatch.setenv("CI", "false")  # only the exact value CI services set counts
    with pytest.raises(pytest.skip.Exception):
        require(False, "chromium", "apt install chromium")


def test_a_missing_requirement_fails_under_ci(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: chromium is missing \(apt install chromium\)"):
        require(False, "chromium", "apt install chromium")


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 failed")])
def test_pytest_reports_the_test_as_skipped_or_failed(tmp_path: Path, ci: str, outcome: str) -> None:
    """The whole way through pytest, as `./run test` and .ci/run see it."""
    (tmp_path / "test_needs_a_tool.py").write_text(
        "from requirements import require\n\n"
        "def test_needs_a_tool():\n"
        "    require(None, 'the no-such-tool executable', 'apt install no-such-tool')\n")
    env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert outcome in run.stdout, run.stdout + run.stderr
    assert "no-such-tool executable is missing" in run.stdout
    assert run.returncode == (1 if ci else 0)
