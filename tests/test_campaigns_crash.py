"""kill -9 of the campaign dialer (`phonescreen campaign run`) mid-campaign, then a restart: no candidate is
dialed twice, none is forgotten, and the interviews the crash cut off end partial with their transcripts."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from campaign_sipp import ANSWERS, BUSY, campaign_uas
from models.store import SessionStore
from sip_harness import REPO, free_port_block, short_template

WAIT_S = 150


def _dialer(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "server.cli", "--log-format", "text", "campaign", "run", *args, "--no-llm",
               "--quiet", "--lease-s", "5", "--max-concurrent", "3", "--attempts-per-second", "5",
               "--window", "00:00-23:59", "--weekdays", "mon,tue,wed,thu,fri,sat,sun",
               "--retry", "busy=60:1", "--retry", "failed=60:1",
               "--retry", "partial=60:1"]  # SIPp hangs up every call: no resumes here (tests/test_resume_sip.py)
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait(predicate, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the dialer exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {WAIT_S} s")
        time.sleep(0.2)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_kill_9_mid_campaign_then_restart(settings, tmp_path: Path) -> None:
    phones = [f"{ANSWERS}{n:03d}" for n in range(5)] + [f"{BUSY}{n:03d}" for n in range(2)]
    csv_file = tmp_path / "candidates.csv"
    csv_file.write_text("name,phone,timezone\n" + "".join(f"Candidate {i},{p},UTC\n" for i, p in enumerate(phones)))
    store = SessionStore(settings.store.path)
    position = store.create_position(short_template())
    log = tmp_path / "dialer.log"
    with campaign_uas(tmp_path, hang_up_after_ms=12_000) as uas:
        sip_port = free_port_block(1)
        env = {**os.environ, "PHONESCREEN_STORE_PATH": settings.store.path, "PHONESCREEN_SIP_DOMAIN": uas.domain,
               "PHONESCREEN_SIP_PORT": str(sip_port), "PHONESCREEN_SIP_RTP_PORT_START": str(free_port_block(40)),
               "PHONESCREEN_SIP_RTP_PORTS_PER_WORKER": "40", "PHONESCREEN_SIP_RING_TIMEOUT_S": "3",
               "PHONESCREEN_SIP_RTP_TIMEOUT_S": "60", "PHONESCREEN_STORE_RECORDINGS_DIR": str(tmp_path / "rec"),
               "PHONESCREEN_CONFIG": str(tmp_path / "none.toml")}
        (tmp_path / "none.toml").write_text("")
        first = _dialer(env, log, str(csv_file), "--position", position.id)

        def talking() -> list:
            rows = store.db.query("SELECT i.id FROM interviews i WHERE i.status = 'in_progress' AND "
                                  "(SELECT COUNT(*) FROM turns t WHERE t.interview_id = i.id) >= 1")
            return [r["id"] for r in rows]

        try:
            _wait(lambda: len(talking()) >= 2, "two interviews under way", first)
            cut_off = talking()
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        [campaign] = store.list_campaigns()[0]
        assert campaign.status == "running"  # nobody paused it: the dialer just died
        # Its orphaned media worker hangs up its calls and leaves; wait for it to free the SIP port.
        _wait(lambda: _port_free(sip_port), "free SIP port after the crash")
        second = _dialer(env, log, "--campaign", campaign.id)
        try:
            assert second.wait(timeout=WAIT_S) == 0, log.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()

        assert store.get_campaign(campaign.id).status == "completed"
        progress = store.campaign_progress(campaign.id)
        assert progress["in_progress"] == progress["retry_pending"] == progress["not_started"] == 0
        assert progress["partial"] + progress["completed"] + progress["failed"] == len(phones)  # none forgotten
        invites = uas.invites()
        for candidate_id in campaign.candidate_ids:
            attempts = store.list_attempts(campaign.id, candidate_id)
            phone = store.get_candidate(candidate_id).phone
            dialed = [a for a in attempts if a.interview_id and store.get_interview(a.interview_id).attempt_count]
            assert len(dialed) == 1 and len(invites.get(phone, ())) == 1, (phone, attempts)  # never twice
            assert attempts[-1].status == "done"
        for interview_id in cut_off:
            interview = store.get_interview(interview_id)
            assert interview.status == "partial", interview
            assert store.turns(interview_id), "the cut-off interview kept its transcript"
        assert "Traceback" not in log.read_text()
    store.close()
