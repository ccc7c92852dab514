"""How an answered call ends: the interviewer's reason becomes the interview's status and event reason,
a refused consent deletes the recording at once and is never scored, and a callback request is handed to
the dialer (a scheduled re-run outside campaigns, the next attempt inside one)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from dialer.simulator import CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.session import InterviewSession
from models.lifecycle import END_REASON_STATUS, Status, check_transition
from models.store import SessionStore


def test_every_end_reason_has_a_legal_final_status() -> None:
    for reason, status in END_REASON_STATUS.items():
        assert check_transition(Status.IN_PROGRESS, status) == status, reason


async def test_a_refused_consent_ends_declined_deletes_the_recording_and_is_not_scored(
        store: SessionStore, sample_template, engines, tmp_path: Path) -> None:
    interview_id = connected_interview(store, sample_template)
    session = InterviewSession.for_interview(store, interview_id, engines=engines, voice=_voice(),
                                             recordings_dir=tmp_path)
    status = await run_call(session, SimulatedCandidate(CandidateScript("refuses", (
        "No, I don't want to be recorded.",))))
    assert status == Status.DECLINED
    interview = store.get_interview(interview_id)
    assert interview.status == "declined" and interview.end_reason == "declined"
    assert interview.recording_path is None and not list(tmp_path.glob("*.wav"))  # deleted at once
    turns = store.turns(interview_id)
    assert [t.role for t in turns] == ["agent", "candidate", "agent"]  # only the consent exchange
    assert store.get_interview(interview_id).status not in ("completed", "report_ready")  # never scored
    change = [e for e in store.events(interview_id=interview_id) if e.type == "interview.status_changed"][-1]
    assert change.data["to"] == "declined" and change.data["reason"] == "declined"


def test_a_callback_outside_a_campaign_schedules_a_re_run_for_that_moment(store: SessionStore,
                                                                          sample_template) -> None:
    interview_id = connected_interview(store, sample_template)
    at = store.clock() + timedelta(hours=20)
    again = store.schedule_callback(interview_id, at.astimezone(timezone(timedelta(hours=-6))))
    store.transition(interview_id, Status.CALLBACK_SCHEDULED, reason="callback_scheduled")
    assert again is not None and again.rerun_of == interview_id and again.status == "scheduled"
    assert datetime.fromisoformat(store.get_interview(interview_id).callback_at) == at
    assert again.channel == store.get_interview(interview_id).channel
    assert again.id not in [i.id for i in store.due_calls(again.channel, 10)]  # not before its time
    store.clock = lambda: at + timedelta(minutes=1)
    assert again.id in [i.id for i in store.due_calls(again.channel, 10)]


def _voice():
    from config.settings import VoiceSettings
    return VoiceSettings()
