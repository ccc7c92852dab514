"""The `phonescreen` command, run for real as a subprocess against a SQLite file in tmp_path."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

from config.templates import sample_template_path
from models.schema import LATEST
from models.store import SessionStore
from config.logging_setup import configure_logging

Cli = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The test runner's environment minus any PHONESCREEN_* settings, with the store in tmp_path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")}
    return {**clean, "PHONESCREEN_STORE_PATH": str(tmp_path / "store.db"), "PHONESCREEN_LOG_FORMAT": "text"}


@pytest.fixture
def cli(tmp_path: Path, env: dict[str, str]) -> Cli:
    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=tmp_path, env={**env, **extra_env},
                              capture_output=True, text=True, timeout=60)
    return run


@pytest.fixture
def stored(env: dict[str, str]) -> Iterator[SessionStore]:
    """The CLI's store opened in-process, to check what a command left behind without another subprocess."""
    store = SessionStore(env["PHONESCREEN_STORE_PATH"])
    yield store
    store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def server(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """`phonescreen serve` on a free loopback port; yields its base URL, then stops it with SIGTERM."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, f"serve exited early: {(tmp_path / 'serve.log').read_text()}"
            try:
                if _status(f"{base}/api/v1/openapi.json") == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer within 15 s"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        returncode = proc.wait(timeout=10)
        log.close()
    assert returncode == 0, "serve should stop cleanly on SIGTERM"
    assert f"phonescreen listening on {base}" in (tmp_path / "serve.log").read_text()


def test_db_migrate_then_status(cli: Cli) -> None:
    first = cli("db", "migrate")
    assert first.returncode == 0, first.stderr
    assert f"schema version 0 -> {LATEST}" in first.stdout
    status = cli("db", "status")
    assert re.search(r"^api_keys\s+0$", status.stdout, re.M), status.stdout
    assert f"schema version: {LATEST}" in status.stdout


def test_key_authenticates_against_serve_until_revoked(cli: Cli, server: str) -> None:
    created = cli("keys", "create", "--name", "ats-sync", "--scopes", "positions:read,interviews:read")
    assert created.returncode == 0, created.stderr
    secret = re.search(r"psk_\S+", created.stdout).group()
    key_id = re.search(r"key_\w+", created.stdout).group()
    positions = f"{server}/api/v1/positions"
    assert _status(positions, secret) == 200
    assert _status(positions) == 401

    listed = cli("keys", "list", "--json")
    [key] = json.loads(listed.stdout)
    assert key["id"] == key_id and key["scopes"] == ["interviews:read", "positions:read"]
    assert key["revokedAt"] is None
    assert secret not in listed.stdout

    assert cli("keys", "revoke", key_id).returncode == 0
    assert _status(positions, secret) == 401


def test_keys_create_rejects_an_unknown_scope(cli: Cli, stored: SessionStore) -> None:
    result = cli("keys", "create", "--name", "x", "--scopes", "positions:read,positions:delete")
    assert result.returncode == 2
    assert "unknown scope 'positions:delete'" in result.stderr and "Traceback" not in result.stderr
    assert stored.list_api_keys() == []


def test_positions_import_sample_and_broken_template(cli: Cli, tmp_path: Path, stored: SessionStore) -> None:
    imported = cli("positions", "import", str(sample_template_path()))
    assert imported.returncode == 0, imported.stderr
    position_id = re.search(r"pos_\w+", imported.stdout).group()
    [position], _ = stored.list_positions()
    assert position.id == position_id and position.title == "Customer Support Agent — Inbound Call Center"

    broken = tmp_path / "broken.toml"
    broken.write_text(sample_template_path().read_text().replace("weight = 2", "weight = -2", 1))
    result = cli("positions", "import", str(broken))
    assert result.returncode == 2
    assert f"{broken}: factors[2].weight:" in result.stderr and "Traceback" not in result.stderr
    assert [p.id for p in stored.list_positions()[0]] == [position_id]


CSV = """name,phone,email,timezone,external_id,tags,source
Ana Ruiz,+1 (415) 555-0100,ana.ruiz@example.org,America/Los_Angeles,ats-1001,night-shift;bilingual,job board
Tom Okafor,not-a-number,tom.okafor@example.org,America/New_York,ats-1004,,job board
Bad Zone,+14155550199,,Mars/Olympus,,,
Marcus Webb,+14155550101,marcus.webb@example.org,America/Chicago,ats-1002,weekend,referral
"""


def test_candidates_import_reports_row_errors_and_reimport_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "candidates.csv"
    path.write_text(CSV)
    first = cli("candidates", "import", str(path), "--quiet")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created 2, updated 0, failed 2",
        "line 3: phone: must be an E.164 number: '+', country code, up to 15 digits",
        "line 4: timezone: must be an IANA time zone name such as America/Chicago"]
    again = cli("candidates", "import", str(path))
    assert again.returncode == 0 and again.stdout.startswith("created 0, updated 2, failed 2\n")
    listed = json.loads(cli("candidates", "list", "--json").stdout)
    assert sorted((c["name"], c["phone"], c["metadata"]["source"]) for c in listed) == [
        ("Ana Ruiz", "+14155550100", "job board"), ("Marcus Webb", "+14155550101", "referral")]


def test_candidates_import_exit_status_for_failed_rows_and_broken_files(cli: Cli, tmp_path: Path,
                                                                        stored: SessionStore) -> None:
    all_bad = tmp_path / "all_bad.csv"
    all_bad.write_text("name,phone\nTom Okafor,not-a-number\n")
    result = cli("candidates", "import", str(all_bad))
    assert result.returncode == 1 and "created 0, updated 0, failed 1" in result.stdout
    no_header = tmp_path / "no_header.csv"
    no_header.write_text("Ana Ruiz,+14155550100\n")
    result = cli("candidates", "import", str(no_header))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{no_header}: line 1: the header row has no 'name' column" in result.stderr
    assert stored.list_candidates()[1] == 0


def test_unknown_setting_in_environment_is_named(cli: Cli) -> None:
    result = cli("db", "status", PHONESCREEN_SERVER_PROT="1")
    assert result.returncode == 2
    assert "PHONESCREEN_SERVER_PROT" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def log_stream() -> Iterator[Callable[[str], io.StringIO]]:
    """configure_logging(fmt) onto a fresh stream; the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(fmt, "info", stream=stream)
        return stream
    yield configure
    root.handlers[:], root.level = handlers, level


def test_json_logs_mask_phones_keys_secrets_and_tokens(log_stream) -> None:
    stream = log_stream("json")
    logging.getLogger("phonescreen.test").warning(
        "dialing %s for %s with key %s, signing with whsec_abc-123, token tok-9f8e",
        "+14155550100", "Ana", "psk_S3cr3t_value", extra={"interview_id": "int_1", "token": "tok-9f8e",
                                                         "phone": "+447700900123"})
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "warning" and entry["logger"] == "phonescreen.test" and entry["ts"]
    assert entry["msg"] == ("dialing ***0100 for Ana with key [redacted], signing with [redacted], "
                            "token [redacted]")
    assert entry["interview_id"] == "int_1" and entry["token"] == "[redacted]" and entry["phone"] == "***0123"


def test_text_logs_are_masked_too(log_stream) -> None:
    stream = log_stream("text")
    logging.getLogger("phonescreen.test").info("caller +4930901820 used psk_abc", extra={"call_id": "c-1"})
    line = stream.getvalue().strip()
    assert line.endswith("INFO    phonescreen.test: caller ***1820 used [redacted] [call_id=c-1]"), line
