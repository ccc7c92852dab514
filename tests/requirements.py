"""The one way a test says it needs something outside Python (a tool, a browser, a model file).

Locally a missing requirement skips the test, so a developer without, say, SIPp still runs the rest. Under CI
(`CI=true`, as CI services and .ci/run set it) it fails the test: a CI run must never pass because the thing
under test was not there.
"""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require(condition: object, what: str, install_hint: str) -> None:
    """Go on if `condition` is truthy; otherwise skip the test (locally) or fail it (under CI=true)."""
    if condition:
        return
    message = f"{what} is missing ({install_hint})"
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)
