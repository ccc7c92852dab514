"""Inbound SIP calls over 127.0.0.1: a simulated candidate (tests/sim_caller.py, a pjsua2 caller in its own
process) calls a media worker's `sip.inbound_user` from a candidate's number and their interview runs and
is stored; a shared number confirms the name first and a dropped interview is resumed; an unknown number
hears one sentence and nothing is stored; other users, and every INVITE while inbound is off, get 403.
Real pjsua2 on both sides, Whisper and Piper in the worker, SQLite."""
from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import timedelta

from dialer.sip.pool import MediaWorkerPool
from dialer.sip.worker import worker_log_path
from models.lifecycle import Status
from models.store import SessionStore
from sip_harness import REPO, SHORT_ANSWERS, free_port_block, new_interview, short_template, sip_settings
from voice import word_error_rate

PHONE = "+14155550100"
INBOUND_USER = "interview"
CALLER_MARGIN_S = 40  # the caller hangs up this long before the test's own timeout, and reports
CALLER_EXIT_S = 15  # for the caller's pjsua2 teardown after its report


async def call_in(port: int, caller: str, answers: list[str] | tuple[str, ...] = (), *, user: str = INBOUND_USER,
                  timeout_s: float = 240) -> dict:
    """One call from `caller` to sip:USER@127.0.0.1:PORT; the caller's report once it is over. The caller
    gives up talking well before `timeout_s`, so a call the AI never ends comes back as a report (who hung
    up, what was heard), not as a timeout."""
    args = [sys.executable, str(REPO / "tests" / "sim_caller.py"), "--to", f"sip:{user}@127.0.0.1:{port}",
            "--caller", caller, "--answers", json.dumps(list(answers)), "--port", str(free_port_block(1)),
            "--rtp-port", str(free_port_block(20)), "--max-call-s", str(timeout_s - CALLER_MARGIN_S)]
    process = await asyncio.create_subprocess_exec(*args, cwd=REPO, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    errors = asyncio.create_task(process.stderr.read())  # drained meanwhile: a full pipe would block the caller
    try:
        report = await asyncio.wait_for(_report_of(process.stdout), timeout_s)
        # The report is printed before pjsua2's teardown: a caller stuck in it is the test phone's fault.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), CALLER_EXIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = await errors
    assert report is not None, err.decode()[-3000:]
    return report


async def _report_of(stdout: asyncio.StreamReader) -> dict | None:
    """The caller's JSON report line (pjsua2 may print other lines first); None if it ended without one."""
    while line := await stdout.readline():
        if line.startswith(b"{"):
            return json.loads(line.decode())
    return None


def candidate_text(store: SessionStore, interview_id: str) -> str:
    return " ".join(t.text for t in store.turns(interview_id) if t.role == "candidate")


def counts(store: SessionStore) -> dict[str, int]:
    return {table: store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("candidates", "interviews", "events", "turns")}


async def settled(pool: MediaWorkerPool, timeout_s: float = 15.0) -> None:
    """Until the pool has heard that every call ended."""
    for _ in range(int(timeout_s * 10)):
        if pool.active_calls == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pool.active_calls} calls still counted")


async def test_a_candidate_calling_in_gets_their_interview(settings, store, tmp_path) -> None:
    settings = sip_settings(settings, inbound_user=INBOUND_USER)
    interview_id = new_interview(store, short_template(), phone=PHONE)
    states: list[tuple[str, str]] = []
    async with MediaWorkerPool(settings, store, with_llm=False,
                               on_state=lambda iid, status: states.append((iid, status))) as pool:
        report = await call_in(settings.sip.port, PHONE, SHORT_ANSWERS)
        await settled(pool)
    assert report["code"] == 200 and report["said"] == list(SHORT_ANSWERS) and report["hung_up_by"] == "callee"
    interview = store.get_interview(interview_id)
    assert interview.status == Status.COMPLETED and interview.recording_path and interview.attempt_count == 0
    assert word_error_rate(" ".join(SHORT_ANSWERS), candidate_text(store, interview_id)) <= 0.15
    turns = store.turns(interview_id)
    assert "automated interviewer" in turns[0].text and turns[-1].role == "agent"
    assert (interview_id, "in_progress") in states and states[-1] == (interview_id, "completed")
    log = worker_log_path(settings, 0).read_text()
    assert "inbound call runs its interview" in log and PHONE not in log  # numbers are masked in logs


async def test_an_unknown_number_hears_a_message_and_other_users_are_refused(settings, store, tmp_path) -> None:
    settings = sip_settings(settings, inbound_user=INBOUND_USER)
    new_interview(store, short_template(), phone=PHONE)
    before = counts(store)
    async with MediaWorkerPool(settings, store, with_llm=False) as pool:
        unknown = await call_in(settings.sip.port, "+14155550199", timeout_s=60)
        withheld = await call_in(settings.sip.port, "anonymous", timeout_s=60)
        elsewhere = await call_in(settings.sip.port, PHONE, user="someone-else", timeout_s=60)
        await settled(pool)
    for report in (unknown, withheld):
        # "Thank you for calling. We have no interview waiting for this number. Goodbye." (~4 s), then our BYE.
        assert report["code"] == 200 and report["hung_up_by"] == "callee", report
        assert 1500 <= report["heard_loud_ms"] <= 8000, report
    assert elsewhere["code"] == 403
    assert counts(store) == before  # nothing stored about the callers


async def test_with_inbound_off_every_invite_is_refused(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)  # sip.inbound_user = ""
    interview_id = new_interview(store, short_template(), phone=PHONE)
    async with MediaWorkerPool(settings, store, with_llm=False) as pool:
        report = await call_in(settings.sip.port, PHONE, user=INBOUND_USER, timeout_s=60)
        assert pool.active_calls == 0
    assert report["code"] == 403
    assert store.get_interview(interview_id).status == Status.SCHEDULED


async def test_a_shared_number_confirms_the_name_and_resumes_a_dropped_interview(settings, store, tmp_path) -> None:
    settings = sip_settings(settings, inbound_user=INBOUND_USER)
    template = short_template()
    ana = new_interview(store, template, phone=PHONE)
    bo = store.create_candidate({"name": "Bo Li", "phone": PHONE, "timezone": "UTC"})
    dropped, _ = store.create_interview(candidate_id=bo.id, position_id=store.get_interview(ana).position_id,
                                        channel="sip", expires_at=store.clock() + timedelta(days=1))
    for status in (Status.DIALING, Status.IN_PROGRESS, Status.PARTIAL):  # the line dropped at the greeting
        store.transition(dropped.id, status)
    answers = ("No, I'm not.", "Yes, that's me.", *SHORT_ANSWERS)  # not Ana; Bo
    async with MediaWorkerPool(settings, store, with_llm=False) as pool:
        report = await call_in(settings.sip.port, PHONE, answers)
        await settled(pool)
    assert report["code"] == 200 and report["said"] == list(answers) and report["hung_up_by"] == "callee", report
    resumed = store.get_interview(dropped.id)
    assert resumed.status == Status.COMPLETED and resumed.legs == 2
    assert word_error_rate(" ".join(SHORT_ANSWERS), candidate_text(store, dropped.id)) <= 0.15
    assert "Hi Bo" in store.turns(dropped.id)[0].text
    assert store.get_interview(ana).status == Status.SCHEDULED and store.turns(ana) == []
