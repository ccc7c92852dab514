"""Answering-machine detection on SIP: the detector on real Piper speech and a synthesized beep, and end to
end a campaign calling the simulated phone's voicemail (a greeting, a beep, then it records): the machine
gets the campaign's message after the beep, the interview ends no_answer / voicemail, and the voicemail
retry policy applies; a person on the same campaign is interviewed."""
from __future__ import annotations

import asyncio
import time

import numpy as np

from campaign_harness import OffsetClock, make_campaign
from dialer.campaign.scheduler import CampaignScheduler
from dialer.simulator import candidate_audio
from dialer.sim_phone import VOICEMAIL_GREETING
from dialer.sip.amd import HUMAN, MACHINE, AnsweringMachineDetector
from dialer.sip.shared_pool import SharedPool
from ivr.frames import frames_of
from models.store import SessionStore
from sip_harness import short_template, sim_phone, sip_settings

RATE = 8000


def _verdict(pcm: np.ndarray):
    detector = AnsweringMachineDetector(RATE)
    for frame in frames_of(pcm, RATE):
        verdict = detector.step(frame)
        if verdict:
            return verdict
    return None


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def test_a_long_greeting_is_a_machine() -> None:
    verdict = _verdict(np.concatenate([_silence(0.3), candidate_audio(VOICEMAIL_GREETING)]))
    assert (verdict.kind, verdict.reason) == (MACHINE, "long_greeting")
    assert 3000 <= verdict.at_ms <= 4500


def test_hello_then_a_pause_is_a_person() -> None:
    verdict = _verdict(np.concatenate([_silence(0.3), candidate_audio("Hello?"), _silence(2.0)]))
    assert (verdict.kind, verdict.reason) == (HUMAN, "pause_after_speech")
    assert _verdict(_silence(3.0)).reason == "initial_silence"  # says nothing: waits for us, a person


def test_a_beep_is_a_machine() -> None:
    beep = (6000 * np.sin(2 * np.pi * 1000 * np.arange(int(0.4 * RATE)) / RATE)).astype(np.int16)
    verdict = _verdict(np.concatenate([_silence(0.5), beep, _silence(1.0)]))
    assert (verdict.kind, verdict.reason) == (MACHINE, "beep")
    noise = np.random.default_rng(1).normal(0, 2000, int(2 * RATE)).astype(np.int16)  # loud, but no tone
    assert _verdict(np.concatenate([noise, _silence(3.0)])).reason != "beep"


async def test_campaign_leaves_a_message_on_voicemail_and_retries(settings, tmp_path) -> None:
    machine, person = "+12025559001", "+12025559002"
    message = "Hello, this is Acme Support calling about your job application. We will call you again soon."
    clock = OffsetClock()
    with sim_phone(tmp_path, assign={machine: "voicemail", person: "hangs-up"}) as phone:
        settings = sip_settings(settings, ring_timeout_s=5.0, rtp_timeout_s=6.0, domain=phone.address)
        store = SessionStore(settings.store.path, clock=clock)
        campaign = make_campaign(store, short_template(), [machine, person], max_concurrent_calls=2, retry={
            "voicemail": {"delay_s": 600, "max_attempts": 2}},
            voicemail={"detect": True, "action": "leave_message", "message": message})
        machine_id, person_id = campaign.candidate_ids
        store.campaign_action(campaign.id, "start")
        pool = SharedPool(settings, store, with_llm=False)
        scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign.id], poll_interval_s=0.2)
        run = asyncio.create_task(scheduler.run(until_done=True))
        try:
            deadline = time.monotonic() + 150
            while len(store.list_attempts(campaign.id, machine_id)) < 2 or scheduler.active:
                assert time.monotonic() < deadline and not run.done()
                await asyncio.sleep(0.2)
            first, retry = store.list_attempts(campaign.id, machine_id)
            assert first.outcome == "voicemail" and retry.status == "pending"
            interview = store.get_interview(first.interview_id)
            assert (interview.status, interview.outcome_code) == ("no_answer", "voicemail")
            assert store.turns(first.interview_id) == []  # the machine never heard the interview
            [talked] = store.list_attempts(campaign.id, person_id)
            assert talked.outcome in ("completed", "partial") and store.turns(talked.interview_id)  # interviewed
            clock.advance(600)
            await asyncio.wait_for(run, 150)
        finally:
            await scheduler.close(hang_up=True)
            await pool.close()
    assert [a.outcome for a in store.list_attempts(campaign.id, machine_id)] == ["voicemail", "voicemail"]
    assert store.campaign_progress(campaign.id)["failed"] == 1
    reports = [r for r in phone.reports() if r.get("script") == "voicemail"]
    assert len(reports) == 2
    for report in reports:
        assert report["hung_up_by"] == "caller"
        assert report["message_ms"] >= 2000  # the message was spoken after the beep
    store.close()
