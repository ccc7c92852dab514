"""The voice engine's behaviour with fakes (tests/fakes.py): the real InterviewSession, Playback, Endpointer,
interviewer, bridge and store, with coded audio instead of Whisper, Piper and webrtcvad, run in media time.

Each call also checks one invariant: every word stored for the AI is a word the candidate heard, in order,
and nothing the candidate heard is missing from the transcript (`assert_stored_as_heard`).
Real-model versions of the main paths stay in tests/test_session.py.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.settings import VoiceSettings
from config.templates import InterviewTemplate
from dialer.simulator import SAMPLE_SCRIPTS, connected_interview
from fakes import HANG_UP, FakeCandidate, FakeChatModel, FakeLeg, Line, fake_engines, talk
from ivr.engines import VoiceEngines
from ivr.interviewer import BEGIN, GOODBYE, REPROMPTS
from ivr.llm.base import LlmUnavailable
from ivr.session import InterviewSession
from ivr.tts.phrase_cache import ACKNOWLEDGEMENTS
from models.store import SessionStore

CONSENT = "Yes, that's fine."
CONCRETE = SAMPLE_SCRIPTS[0].answers[1:]  # strong answers, one per factor: no follow-ups
VAGUE = "I guess I'm okay at it."
# With fakes a reply is ready within milliseconds; a generous deadline keeps acknowledgements out of the
# tests that are not about them, whatever the machine's load.
VOICE = VoiceSettings(reply_deadline_ms=2000)


@pytest.fixture
def engines() -> VoiceEngines:  # shadows conftest's real engines: nothing here loads a speech model
    engines = fake_engines()
    yield engines
    engines.executor.shutdown(wait=False)


def start(store: SessionStore, template: InterviewTemplate, engines: VoiceEngines, tmp_path: Path,
          voice: VoiceSettings = VOICE) -> InterviewSession:
    interview_id = connected_interview(store, template)
    return InterviewSession.for_interview(store, interview_id, engines=engines, voice=voice, recordings_dir=tmp_path)


def candidate(engines: VoiceEngines, *lines: Line | str) -> FakeCandidate:
    return FakeCandidate(engines.tts.voice, [Line(line) if isinstance(line, str) else line for line in lines])


def agent_turns(store: SessionStore, session: InterviewSession):
    return [t for t in store.turns(session.interview_id) if t.role == "agent"]


def candidate_texts(store: SessionStore, session: InterviewSession) -> list[str]:
    return [t.text for t in store.turns(session.interview_id) if t.role == "candidate"]


def assert_stored_as_heard(store: SessionStore, session: InterviewSession, who: FakeCandidate) -> None:
    stored = " ".join(t.text for t in agent_turns(store, session))
    assert stored == who.heard_text()


async def test_full_interview(store, sample_template, engines, tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, *CONCRETE)
    leg = await talk(session, who)
    assert leg.status == "completed" and leg.hung_up == "completed" and leg.clears == 0
    turns = store.turns(session.interview_id)
    assert [t.role for t in turns] == ["agent", "candidate"] * 5 + ["agent"]
    assert candidate_texts(store, session) == [CONSENT, *CONCRETE]  # the fake STT is exact
    agent = agent_turns(store, session)
    assert agent[0].text.startswith("Hi Ana,") and agent[0].text.endswith("Say yes or press 1.")
    assert agent[1].text.startswith(BEGIN)
    assert [q.kind for q in session.interviewer.asked] == ["main"] * len(sample_template.factors)
    assert agent[-1].text == sample_template.closing
    assert not any(t.interrupted for t in turns)
    assert [t.turn_number for t in turns] == list(range(1, len(turns) + 1))
    assert turns == sorted(turns, key=lambda t: t.start_ms) and all(t.start_ms < t.end_ms for t in turns)
    assert_stored_as_heard(store, session, who)
    assert not any(timing.acknowledged for timing in session.timings)
    assert store.get_interview(session.interview_id).recording_path
