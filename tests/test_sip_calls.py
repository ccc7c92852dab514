"""Real SIP calls: media worker processes (pjsua2) dial simulated candidate phones (dialer.sim_phone, a
pjsua2 UAS in another process) over 127.0.0.1; real Whisper, Piper, SQLite on both sides."""
from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from dialer.sip.pool import MediaWorkerPool
from dialer.sip.worker import worker_log_path
from models.lifecycle import Status
from sip_harness import SHORT_ANSWERS, new_interview, short_template, sim_phone, sip_settings
from voice import transcribe_wav, word_error_rate

SHORT_SCRIPT = {"name": "short", "answers": list(SHORT_ANSWERS)}


def candidate_text(store, interview_id: str) -> str:
    return " ".join(t.text for t in store.turns(interview_id) if t.role == "candidate")


async def test_interview_over_sip_completes_with_the_scripted_answers(settings, store, engines, tmp_path) -> None:
    settings = sip_settings(settings)
    interview_id = new_interview(store, short_template())
    states: list[str] = []
    with sim_phone(tmp_path, [SHORT_SCRIPT]) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False,
                                   on_state=lambda _id, status: states.append(status)) as pool:
            result = await pool.dial(interview_id, phone.uri("short"))
    assert result.status == Status.COMPLETED and result.sip_code == 200
    assert states[:3] == ["dialing", "ringing", "in_progress"] and states[-1] == "completed"
    assert word_error_rate(" ".join(SHORT_ANSWERS), candidate_text(store, interview_id)) <= 0.15
    interview = store.get_interview(interview_id)
    assert interview.status == Status.COMPLETED and interview.recording_path
    # Both directions are in the stereo recording: the candidate left, the AI right.
    assert "charged twice" in transcribe_wav(engines.stt, interview.recording_path, channel=0).lower()
    assert "automated interviewer" in transcribe_wav(engines.stt, interview.recording_path, channel=1).lower()
    # The phone heard the greeting over RTP.
    [report] = phone.reports()
    assert report["answered"] == 200 and [a["text"] for a in report["said"]] == list(SHORT_ANSWERS)
    heard = transcribe_wav(engines.stt, phone.record_dir / "call-1.wav").lower()
    # The whole closing reached the phone: its last word is heard (Whisper tiny sometimes writes "bye bye").
    assert "automated interviewer" in heard and ("goodbye" in heard or "bye bye" in heard)


async def test_phone_outcomes_busy_decline_no_answer(settings, store, tmp_path) -> None:
    settings = sip_settings(settings, ring_timeout_s=3.0)
    template = short_template()
    outcomes = {"busy": Status.BUSY, "decline": Status.DECLINED, "noanswer": Status.NO_ANSWER}
    ids = {user: new_interview(store, template, phone=f"+1415555010{i}") for i, user in enumerate(outcomes)}
    with sim_phone(tmp_path) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            results = await asyncio.gather(*(pool.dial(ids[user], phone.uri(user)) for user in outcomes))
    codes = {user: result.sip_code for user, result in zip(outcomes, results)}
    assert codes["busy"] == 486 and codes["decline"] == 603
    for user, status in outcomes.items():
        interview = store.get_interview(ids[user])
        assert interview.status == status, user
        assert store.turns(ids[user]) == []
    assert store.get_interview(ids["busy"]).outcome_code == "486"


async def test_candidate_hanging_up_mid_interview_ends_partial_with_the_transcript(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)
    interview_id = new_interview(store, short_template())
    script = {"name": "leaves", "answers": ["Yes, I agree."], "hang_up_after": 1}
    with sim_phone(tmp_path, [script]) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(interview_id, phone.uri("leaves"))
    assert result.status == Status.PARTIAL
    turns = store.turns(interview_id)
    assert [t.role for t in turns][:2] == ["agent", "candidate"] and "agree" in turns[1].text.lower()
    [report] = phone.reports()
    assert report["hung_up_by"] == "phone"


async def test_four_calls_in_one_worker_and_eight_across_two(settings, store, tmp_path) -> None:
    settings = sip_settings(settings, workers=2)
    template = short_template()
    ids = [new_interview(store, template, phone=f"+141555502{i:02d}") for i in range(8)]
    with sim_phone(tmp_path, [SHORT_SCRIPT], name="a") as phone_a, sim_phone(tmp_path, [SHORT_SCRIPT], name="b") as phone_b:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            assert pool.capacity == 8
            calls = [pool.dial(iid, (phone_a if i % 2 else phone_b).uri("short")) for i, iid in enumerate(ids)]
            dialing = asyncio.gather(*calls)
            await asyncio.sleep(3)
            assert sorted(len(w.calls) for w in pool.workers) == [4, 4]  # four at once in each worker
            results = await dialing
    assert [r.status for r in results] == [Status.COMPLETED] * 8
    for iid in ids:  # eight calls on two cores: looser than the single call's 15 %, still the same words
        assert word_error_rate(" ".join(SHORT_ANSWERS), candidate_text(store, iid)) <= 0.25


async def test_a_worker_crash_ends_only_its_own_calls(settings, store, tmp_path, caplog) -> None:
    caplog.set_level("ERROR", logger="phonescreen.sip")
    settings = sip_settings(settings, workers=2)
    template = short_template()
    script = {"name": "long", "answers": list(SHORT_ANSWERS)}
    ids = [new_interview(store, template, phone=f"+141555503{i:02d}") for i in range(2)]
    with sim_phone(tmp_path, [script]) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            calls = asyncio.gather(*(pool.dial(iid, phone.uri("long")) for iid in ids))
            doomed = pool.workers[0]
            await _until(lambda: any(t.role == "candidate" for iid in doomed.calls for t in store.turns(iid)))
            [doomed_id] = doomed.calls
            os.kill(doomed.process.pid, signal.SIGKILL)
            results = {r.interview_id: r for r in await calls}
            assert pool.restarts == 1
            await _until(lambda: pool.workers[0].ready.done())
            # The replacement worker takes calls again.
            again = new_interview(store, template, phone="+14155550399")
            assert (await pool.dial(again, phone.uri("long"))).status == Status.COMPLETED
    [survivor_id] = [iid for iid in ids if iid != doomed_id]
    assert results[doomed_id].status == Status.PARTIAL
    assert store.get_interview(doomed_id).outcome_code == "worker_lost"
    # The pool says why: the signal, the calls the worker had, and where its log is.
    [death] = pool.deaths
    assert death.cause == "killed by SIGKILL" and death.calls == {doomed_id: Status.PARTIAL}
    assert f"killed by SIGKILL; it had 1 call ({doomed_id} ended partial); its log: {death.log_path}" in str(death)
    assert death.log_path == worker_log_path(settings, 0) and "media worker 0" in death.log_path.read_text()
    assert any(str(death) in record.getMessage() for record in caplog.records)
    assert any(t.role == "candidate" for t in store.turns(doomed_id))  # the turns so far are kept
    assert results[survivor_id].status == Status.COMPLETED


async def test_a_worker_that_cannot_listen_fails_the_start_naming_the_setting(settings, store) -> None:
    settings = sip_settings(settings)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((settings.sip.bind_address, settings.sip.port))  # as another phonescreen would
        pool = MediaWorkerPool(settings, store, with_llm=False)
        with pytest.raises(RuntimeError) as failure:
            await pool.start()
    assert f"cannot use SIP 127.0.0.1:{settings.sip.port}: Address already in use" in str(failure.value)
    assert "set sip.port" in str(failure.value)
    assert pool.workers == [] and pool.restarts == 0  # stopped, not restarted over and over


async def _until(condition, timeout_s: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)
