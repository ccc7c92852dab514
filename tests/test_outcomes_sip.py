"""How an answered call ends, over real SIP (a media worker calling the simulated phone on 127.0.0.1): a
"yes" said over the greeting is not consent, a refusal deletes the recording and is never scored, a
candidate thinking in silence for a minute is re-prompted and not cut off, and "call me back tomorrow at
ten" schedules the next call at 10:00 in the candidate's zone."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from config.templates import load_template_text
from dialer.sip.pool import MediaWorkerPool
from models.lifecycle import Status
from models.store import SessionStore
from scoring.job import pending_interviews
from sip_harness import SHORT_ANSWERS, SHORT_TEMPLATE, new_interview, short_template, sim_phone, sip_settings

ZONE = "America/Chicago"


async def _call(settings, store: SessionStore, tmp_path: Path, script: dict, template=None, zone: str = "UTC") -> str:
    """One interview of `template` (the short one) with the phone playing `script`; its id."""
    iid = new_interview(store, template or short_template())
    store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100", "timezone": zone})  # the candidate's zone
    with sim_phone(tmp_path, [script]) as phone:
        async with MediaWorkerPool(sip_settings(settings), store, with_llm=False) as pool:
            await pool.dial(iid, phone.uri(script["name"]))
    return iid


def _agent(store: SessionStore, iid: str) -> list[str]:
    return [t.text for t in store.turns(iid) if t.role == "agent"]


async def test_a_yes_over_the_greeting_is_not_consent(settings, store, tmp_path) -> None:
    # "Yes, go ahead." 1.5 s into the greeting, before the consent question was heard; then a real yes.
    script = {"name": "eager", "answers": ["Yes, go ahead.", *SHORT_ANSWERS], "interrupt_answer": 0,
              "interrupt_after_ms": 1500}
    iid = await _call(settings, store, tmp_path, script)
    agent = _agent(store, iid)
    assert "Do you agree" not in agent[0]  # cut off by the eager yes
    assert "Before we go on, I need to ask you this." in agent[1] and "Do you agree" in agent[1]
    assert "Tell me about a time" in agent[2]  # the questions start only after the second yes
    assert store.get_interview(iid).status == Status.COMPLETED


async def test_a_refusal_deletes_the_recording_and_is_never_scored(settings, store, tmp_path) -> None:
    iid = await _call(settings, store, tmp_path, {"name": "refuses", "answers": ["No, I don't want to be recorded."]})
    interview = store.get_interview(iid)
    assert interview.status == Status.DECLINED and interview.end_reason == "declined"
    assert interview.recording_path is None
    assert not list(Path(settings.store.recordings_dir).glob(f"{iid}*"))  # the file is gone
    assert [t.role for t in store.turns(iid)] == ["agent", "candidate", "agent"]  # only the consent exchange
    assert iid not in pending_interviews(store) and store.scorecards(iid) == []


async def test_a_minute_of_silence_is_re_prompted_and_not_cut_off(settings, store, tmp_path) -> None:
    template = load_template_text(SHORT_TEMPLATE.replace("inactivity_timeout_s = 60", "inactivity_timeout_s = 120"),
                                  "tests/test_outcomes_sip.py")
    script = {"name": "thinker", "answers": list(SHORT_ANSWERS), "hold_before": 1, "hold_ms": 60_000}
    iid = await _call(settings, store, tmp_path, script, template)
    agent = _agent(store, iid)
    reprompts = [text for text in agent if text.startswith(("Take your time", "No rush", "Whenever you're ready",
                                                            "I'm still here"))]
    assert len(reprompts) >= 3, agent  # every 15 s of the minute, kindly
    interview = store.get_interview(iid)
    assert interview.status == Status.COMPLETED, agent
    assert any("charged twice" in t.text for t in store.turns(iid) if t.role == "candidate")


async def test_call_me_back_tomorrow_at_ten_schedules_the_call_at_ten_in_their_zone(settings, store, tmp_path) -> None:
    script = {"name": "busy-now", "answers": ["Yes, I agree.", "I'm at work, can you call me back tomorrow at ten?",
                                              "Yes, that's right."]}
    iid = await _call(settings, store, tmp_path, script, zone=ZONE)
    interview = store.get_interview(iid)
    assert interview.status == Status.CALLBACK_SCHEDULED
    when = datetime.fromisoformat(interview.callback_at).astimezone(ZoneInfo(ZONE))
    assert (when.hour, when.minute) == (10, 0)
    assert when.date() == datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    [again] = [i for i in store.list_interviews()[0] if i.rerun_of == iid]  # the next call, scheduled for then
    assert again.status == Status.SCHEDULED and datetime.fromisoformat(again.scheduled_for) == when
