"""Two dialer nodes (separate `phonescreen campaign run --campaign ID` processes, each with its own SIP port
and media worker) on one PostgreSQL store, a 40-candidate campaign against SIPp, and one node killed with
SIGKILL mid-batch: every candidate dialled exactly once per attempt, the campaign's cap and pacing never
exceeded between the two (from SIPp's own statistics), the interviews the kill cut off resumed by the
surviving node, and no stored turn lost."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from campaign_harness import make_campaign
from campaign_sipp import ANSWERS, campaign_uas, dialer_node, paced
from models.store import SessionStore
from sip_harness import REPO, short_template

CANDIDATES, CAP, RATE = 40, 6, 2.0  # two nodes of 4 call slots each: the cap, not the slots, must bind
WAIT_S = 420
EVERY_DAY = {"start": "00:00", "end": "23:59", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def _wait(predicate, what: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a dialer node exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {WAIT_S} s")
        time.sleep(0.2)


def test_two_dialer_nodes_one_killed_mid_batch(pg_cluster, tmp_path: Path) -> None:
    url = pg_cluster.new_database()
    store = SessionStore(url)
    phones = [f"{ANSWERS}{n:03d}" for n in range(CANDIDATES)]
    campaign = make_campaign(store, short_template(), phones, max_concurrent_calls=CAP, attempts_per_second=RATE,
                             window=EVERY_DAY, retry={"partial": {"delay_s": 60, "max_attempts": 2},
                                                      "failed": {"delay_s": 60, "max_attempts": 2}},
                             resume={"max_resumes": 1})
    store.campaign_action(campaign.id, "start")
    logs = [tmp_path / "node-a.log", tmp_path / "node-b.log"]
    with campaign_uas(tmp_path, hang_up_after_ms=8000) as uas:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")},
               "PHONESCREEN_STORE_URL": url, "PHONESCREEN_STORE_PATH": str(tmp_path / "node.db"),
               "PHONESCREEN_SIP_DOMAIN": uas.domain,
               "PHONESCREEN_SIP_RING_TIMEOUT_S": "3", "PHONESCREEN_SIP_RTP_TIMEOUT_S": "60",
               "PHONESCREEN_STORE_RECORDINGS_DIR": str(tmp_path / "rec"),  # the folder both nodes share
               "PHONESCREEN_CONFIG": str(tmp_path / "none.toml"), "PYTHONPATH": str(REPO)}
        (tmp_path / "none.toml").write_text("")
        nodes = [dialer_node(env, log, campaign.id) for log in logs]

        def talking_on(owner_pid: int) -> list[str]:  # the node's interviews under way with a stored turn
            rows = store.db.query(
                "SELECT i.id FROM interviews i JOIN call_attempts a ON a.interview_id = i.id "
                "WHERE i.status = 'in_progress' AND a.status = 'active' AND a.lease_owner LIKE ? "
                "AND (SELECT COUNT(*) FROM turns t WHERE t.interview_id = i.id) >= 1", [f"%:{owner_pid}:%"])
            return [r["id"] for r in rows]

        try:
            victim, survivor = nodes
            _wait(lambda: len(talking_on(victim.pid)) >= 2 and store.campaign_progress(campaign.id)["dialed"] >= 8,
                  "two interviews under way on the first node", nodes)
            cut_off = {iid: [t.text for t in store.turns(iid)] for iid in talking_on(victim.pid)}
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            assert survivor.wait(timeout=WAIT_S) == 0, logs[1].read_text()[-3000:]
        finally:
            for node in nodes:
                if node.poll() is None:
                    node.kill()
                    node.wait(timeout=10)

        assert store.get_campaign(campaign.id).status == "completed"
        progress = store.campaign_progress(campaign.id)
        assert progress["in_progress"] == progress["retry_pending"] == progress["not_started"] == 0
        assert progress["partial"] + progress["completed"] + progress["failed"] == CANDIDATES  # none forgotten

        # Every candidate dialled exactly once per attempt: SIPp's INVITEs = the dialings the store counted.
        invites = uas.invites()
        for candidate_id in campaign.candidate_ids:
            attempts = store.list_attempts(campaign.id, candidate_id)
            interviews = {a.interview_id for a in attempts if a.interview_id}
            dialings = sum(store.get_interview(iid).attempt_count for iid in interviews)
            phone = store.get_candidate(candidate_id).phone
            assert len(invites.get(phone, ())) == dialings >= 1, (phone, attempts)
            assert attempts[-1].status == "done"

        # The cap and the pacing held between the two nodes, as SIPp saw the calls.
        assert 2 <= uas.peak_concurrent_calls() <= CAP, uas.errors()
        assert paced(uas.new_calls_per_second(), RATE), uas.new_calls_per_second()

        # The cut-off interviews: redialled and resumed by the survivor (the other node was dead by then) as
        # the same interview, one more leg and one more dialing; every turn stored before the kill kept.
        for iid, before in cut_off.items():
            interview = store.get_interview(iid)
            assert (interview.legs, interview.attempt_count) == (2, 2), interview
            assert interview.status in ("partial", "completed", "report_ready"), interview
            assert [t.text for t in store.turns(iid)][:len(before)] == before
        assert "Traceback" not in logs[1].read_text()
    store.close()
