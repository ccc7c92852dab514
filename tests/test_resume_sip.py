"""Resume over real SIP: a campaign interview cut off after question 2 (the line drops, or the media worker
is killed with SIGKILL) is redialled by the campaign's retry policy and goes on at question 3 — one
interview, one transcript, one recording, consent asked once."""
from __future__ import annotations

import asyncio
import os
import signal
import time
import wave

from campaign_harness import OffsetClock, make_campaign
from config.templates import load_template_text
from dialer.campaign.scheduler import CampaignScheduler
from dialer.sip.shared_pool import SharedPool
from models.lifecycle import Status
from models.store import SessionStore
from sip_harness import SHORT_TEMPLATE, sim_phone, sip_settings

PHONE = "+14155550142"
WAIT_S = 150
# The short template's opening, with three factors: the drop comes after question 2.
TEMPLATE = SHORT_TEMPLATE.split("[[factors]]")[0] + '''
[[factors]]
name = "Customer empathy"
weight = 1
description = "Acknowledges feelings and takes ownership."
max_follow_ups = 0
questions = ["Tell me about a time you calmed down an upset customer."]
[factors.anchors]
weak = "No example."
adequate = "An example."
strong = "A specific example with ownership."

[[factors]]
name = "Problem solving"
weight = 1
description = "Finds the cause and fixes it."
max_follow_ups = 0
questions = ["How would you handle a package that shows delivered but never arrived?"]
[factors.anchors]
weak = "No plan."
adequate = "Some steps."
strong = "Checks, claim, replacement and follow-up."

[[factors]]
name = "Reliability and availability"
weight = 1
description = "Shows up, covers shifts."
max_follow_ups = 0
questions = ["Which shifts can you work, and how do you make sure you are on time?"]
[factors.anchors]
weak = "Vague."
adequate = "Some availability."
strong = "Specific availability and a record of being on time."
'''
CONSENT = "Yes, I agree."
ANSWER_1 = ("Last spring a customer called because she was charged twice. I said I was sorry, fixed the bill "
            "during the call, and sent her an email the next morning.")
ANSWER_2 = ("I would check the delivery photo with the customer, open a claim with the carrier, and send a "
            "replacement the same day if there is no proof.")
ANSWER_3 = "I can work evenings and weekends, and I have not missed a shift in two years."
DROPS = {"name": "drops", "answers": [CONSENT, ANSWER_1, ANSWER_2], "hang_up_after": 3, "hang_up_after_reply": True}
TALKS_ON = {"name": "talks-on", "answers": [CONSENT, ANSWER_1, ANSWER_2, ANSWER_3]}
RESUMES = {"name": "resumes", "answers": [ANSWER_3]}


async def _until(predicate, what: str, run: asyncio.Task) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert not run.done(), run.exception()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {WAIT_S} s")
        await asyncio.sleep(0.2)


def _answered(store: SessionStore, interview_id: str, factor: str) -> bool:
    return any(e.role == "candidate" and e.kind == "answer" and e.factor == factor
               for e in store.turn_evaluations(interview_id).values())


async def _campaign_with_a_drop(settings, tmp_path, first_script: dict, cut_off) -> tuple[SessionStore, str]:
    """Runs a one-candidate campaign until its interview ends after a resume; `cut_off(pool, store, iid)`
    ends the first leg after question 2's answer. Returns the store and the interview id."""
    clock = OffsetClock()
    store = SessionStore(settings.store.path, clock=clock)
    with sim_phone(tmp_path, [first_script, RESUMES], assign={PHONE: f"{first_script['name']},resumes"}) as phone:
        settings = sip_settings(settings, domain=phone.address, rtp_timeout_s=4.0)
        campaign = make_campaign(store, load_template_text(TEMPLATE, "tests/test_resume_sip.py"), [PHONE],
                                 window={"start": "00:00", "end": "23:59", "weekdays": ["wed", "thu"]},
                                 retry={"partial": {"delay_s": 60, "max_attempts": 3}})
        store.campaign_action(campaign.id, "start")
        pool = SharedPool(settings, store, with_llm=False)
        scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign.id], poll_interval_s=0.2)
        run = asyncio.create_task(scheduler.run(until_done=True))
        try:
            [candidate_id] = campaign.candidate_ids
            await _until(lambda: store.list_attempts(campaign.id, candidate_id)[0].interview_id, "first call", run)
            iid = store.list_attempts(campaign.id, candidate_id)[0].interview_id
            await _until(lambda: _answered(store, iid, "Problem solving"), "answer to question 2", run)
            await cut_off(await pool.get(), store, iid)
            await _until(lambda: len(store.list_attempts(campaign.id, candidate_id)) == 2, "a redial", run)
            assert store.get_interview(iid).status == Status.PARTIAL  # cut off, then waiting for its retry
            clock.advance(60)  # the retry policy's delay
            await asyncio.wait_for(run, WAIT_S)
        finally:
            await scheduler.close(hang_up=True)
            await pool.close()
    attempts = store.list_attempts(campaign.id, candidate_id)
    assert [a.outcome for a in attempts] == ["partial", "completed"]
    assert {a.interview_id for a in attempts} == {iid}  # one interview across both calls
    return store, iid


def _check_one_resumed_interview(store: SessionStore, iid: str) -> None:
    interview = store.get_interview(iid)
    assert interview.status in (Status.COMPLETED, Status.REPORT_READY) and interview.legs == 2
    turns = store.turns(iid)
    agent = [t.text for t in turns if t.role == "agent"]
    assert sum("Do you agree to continue" in text for text in agent) == 1  # consent asked once, on leg 1
    [resumed_at] = [i for i, t in enumerate(turns) if "pick up where we left off" in t.text]
    # The resumed leg goes on at question 3; questions 1 and 2 are not asked again.
    assert "Which shifts can you work" in turns[resumed_at].text
    assert all("Tell me about a time" not in t.text and "never arrived" not in t.text for t in turns[resumed_at:])
    assert any("evenings and weekends" in t.text.lower() for t in turns[resumed_at:] if t.role == "candidate")
    # One timeline: the resumed leg starts after everything of the first.
    assert min(t.start_ms for t in turns[resumed_at:]) >= max(t.end_ms for t in turns[:resumed_at])
    # One recording holding both legs: at least as long as the transcript's timeline.
    with wave.open(interview.recording_path, "rb") as wav:
        assert wav.getnframes() / wav.getframerate() * 1000 >= turns[-1].end_ms - 1000


async def test_a_dropped_call_is_redialled_and_resumes_at_question_3(settings, tmp_path) -> None:
    async def phone_hangs_up(pool, store, iid) -> None:
        return None  # the phone's script hangs up once it heard the reply to its second answer

    store, iid = await _campaign_with_a_drop(settings, tmp_path, DROPS, phone_hangs_up)
    _check_one_resumed_interview(store, iid)
    assert store.get_interview(iid).end_reason == "completed"


async def test_a_killed_worker_mid_call_leads_to_a_redial_and_a_resume(settings, tmp_path) -> None:
    async def kill_9(pool, store, iid) -> None:
        [worker] = [w for w in pool.workers if iid in w.calls]
        os.kill(worker.process.pid, signal.SIGKILL)

    store, iid = await _campaign_with_a_drop(settings, tmp_path, TALKS_ON, kill_9)
    _check_one_resumed_interview(store, iid)
    events = [e.data for e in store.events(interview_id=iid) if e.data.get("to") == "partial"]
    assert events and events[0].get("outcomeCode") == "worker_lost"
