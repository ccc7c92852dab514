"""InterviewSession end to end in-process: a simulated candidate (scripted answers in a Piper voice, sent
at 8 kHz through G.711) talks to the real engines (webrtcvad, Whisper tiny.en, Piper) and the real store."""
from __future__ import annotations

import dataclasses
import wave
from pathlib import Path

import numpy as np

from config.settings import VoiceSettings
from config.templates import InterviewTemplate
from dialer.simulator import SAMPLE_SCRIPTS, CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.engines import VoiceEngines
from ivr.session import ClearPlayback, InterviewSession
from models.store import SessionStore
from voice import word_error_rate

CONSENT = "Yes, that's fine."
CONCRETE = SAMPLE_SCRIPTS[0].answers[1:]  # strong answers, one per factor: no follow-ups


def start_session(store: SessionStore, template: InterviewTemplate, engines: VoiceEngines, tmp_path: Path,
                  voice: VoiceSettings = VoiceSettings()) -> InterviewSession:
    interview_id = connected_interview(store, template)
    return InterviewSession.for_interview(store, interview_id, engines=engines, voice=voice, recordings_dir=tmp_path)


def channel_rms(path: Path) -> tuple[float, float]:
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2).astype(np.float64)
    return float(np.sqrt(np.mean(pcm[:, 0] ** 2))), float(np.sqrt(np.mean(pcm[:, 1] ** 2)))


async def test_full_interview_is_transcribed_and_stored(store, sample_template, engines, tmp_path) -> None:
    session = start_session(store, sample_template, engines, tmp_path)
    candidate = SimulatedCandidate(CandidateScript("concrete", (CONSENT, *CONCRETE)))
    status = await run_call(session, candidate)
    assert status == "completed"
    turns = store.turns(session.interview_id)
    agent = [t for t in turns if t.role == "agent"]
    spoken = [t for t in turns if t.role == "candidate"]
    assert "Ana" in agent[0].text and sample_template.company in agent[0].text  # the greeting was played
    assert len(spoken) == len(candidate.said) == 5, (
        [(t.text, t.start_ms, t.end_ms, t.interrupted) for t in spoken],
        [(a.text[:30], a.start_ms, a.last_word_ms, a.barged_in) for a in candidate.said],
        [(t.text[:30], t.start_ms, t.end_ms) for t in agent])
    wer = word_error_rate(" ".join(a.text for a in candidate.said), " ".join(t.text for t in spoken))
    assert wer <= 0.15, [t.text for t in spoken]
    assert all(t.stt_confidence is not None and 0 <= t.stt_confidence <= 1 for t in spoken)
    assert [q.factor for q in session.interviewer.asked if q.kind == "main"] == \
        [f.name for f in sample_template.factors]
    assert sample_template.closing.split(".")[0] in agent[-1].text
    assert [t.turn_number for t in turns] == list(range(1, len(turns) + 1))
    assert all(a.start_ms < a.end_ms for a in turns) and turns == sorted(turns, key=lambda t: t.start_ms)
    interview = store.get_interview(session.interview_id)
    left, right = channel_rms(Path(interview.recording_path))
    assert left > 100 and right > 100  # both sides of the call are in the recording


async def test_vague_answer_gets_a_follow_up(store, sample_template, engines, tmp_path) -> None:
    session = start_session(store, sample_template, engines, tmp_path)
    answers = (CONSENT, "I guess I'm okay at it.", CONCRETE[0], *CONCRETE[1:])
    status = await run_call(session, SimulatedCandidate(CandidateScript("vague", answers)))
    assert status == "completed"
    asked = session.interviewer.asked
    first_factor = sample_template.factors[0].name
    assert [q.kind for q in asked if q.factor == first_factor] == ["main", "follow_up"]
    follow_up = next(q for q in asked if q.kind == "follow_up")
    agent_texts = [t.text for t in store.turns(session.interview_id) if t.role == "agent"]
    assert any(follow_up.question in text for text in agent_texts)


async def test_barge_in_stops_playback_and_keeps_only_what_was_heard(store, sample_template, engines,
                                                                      tmp_path) -> None:
    session = start_session(store, sample_template, engines, tmp_path)
    script = CandidateScript("interrupts", (CONSENT, *CONCRETE), interrupt_answer=1, interrupt_after_ms=1200)
    candidate = SimulatedCandidate(script)
    controls: list = []
    await run_call(session, candidate, controls=controls)
    assert any(isinstance(c, ClearPlayback) for c in controls)
    cut = [t for t in store.turns(session.interview_id) if t.interrupted]
    assert len(cut) == 1
    question = session.interviewer.asked[0].question
    full = next(t for t in store.turns(session.interview_id) if t.role == "agent" and t.turn_number > 1)
    assert cut[0] is not None and len(cut[0].text.split()) < len((full.text + " " + question).split())
    barged = candidate.said[1]
    assert barged.barged_in
    # Playback stopped within a frame of the barge-in decision (barge_in_ms of voiced speech + VAD onset).
    assert cut[0].end_ms - barged.start_ms <= session.voice.barge_in_ms + 200
    with wave.open(session.recorder.path.as_posix()) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    after = pcm[(cut[0].end_ms + 20) * 8:(cut[0].end_ms + 400) * 8, 1].astype(np.float64)
    assert np.sqrt(np.mean(after ** 2)) < 50  # the AI's channel went quiet at once


async def test_silence_is_reprompted_until_the_inactivity_timeout(store, sample_template, engines,
                                                                 tmp_path) -> None:
    # 8 s re-prompts, 30 s of total silence allowed: a candidate thinking is re-prompted, not cut off early.
    template = dataclasses.replace(sample_template, silence_reprompt_s=8, inactivity_timeout_s=30)
    session = start_session(store, template, engines, tmp_path)
    status = await run_call(session, SimulatedCandidate(CandidateScript("silent", (CONSENT,), silent_from=1)))
    assert status == "no_response" and session.interviewer.end_reason == "no_response"
    agent = [t.text for t in store.turns(session.interview_id) if t.role == "agent"]
    assert len(agent) >= 5  # greeting+consent, first question, three re-prompts, goodbye
    assert session.media_ms >= template.inactivity_timeout_s * 1000


async def test_hang_up_mid_interview_is_partial_and_keeps_the_transcript(store, sample_template, engines,
                                                                         tmp_path) -> None:
    session = start_session(store, sample_template, engines, tmp_path)
    script = CandidateScript("hangs up", (CONSENT, *CONCRETE), hang_up_after=2)
    assert await run_call(session, SimulatedCandidate(script)) == "partial"
    interview = store.get_interview(session.interview_id)
    assert interview.status == "partial" and interview.recording_path
    assert [t.role for t in store.turns(session.interview_id)].count("candidate") == 2


async def test_backchannel_does_not_interrupt(store, sample_template, engines, tmp_path) -> None:
    template = dataclasses.replace(sample_template, inactivity_timeout_s=20)  # the call ends soon after
    session = start_session(store, template, engines, tmp_path)
    script = CandidateScript("nods along", (CONSENT,), silent_from=1, backchannel_after_ms=1500)
    candidate = SimulatedCandidate(script)
    await run_call(session, candidate)
    turns = store.turns(session.interview_id)
    assert candidate._backchannel_done  # it did say "Mm-hmm." over the AI
    assert not any(t.interrupted for t in turns), [(t.text, t.interrupted) for t in turns]  # paused, then went on
    assert turns[0].role == "agent" and turns[0].text == " ".join(session.interviewer.opening().say)
    assert not any("mm" in t.text.lower() for t in turns if t.role == "candidate")


async def test_inactivity_ends_the_interview_and_keeps_the_transcript(store, sample_template, engines,
                                                                      tmp_path) -> None:
    template = dataclasses.replace(sample_template, silence_reprompt_s=60, inactivity_timeout_s=12)
    session = start_session(store, template, engines, tmp_path)
    status = await run_call(session, SimulatedCandidate(CandidateScript("leaves", (CONSENT,), silent_from=1)))
    assert status == "no_response"
    assert session.interviewer.end_reason == "no_response"
    assert [t.role for t in store.turns(session.interview_id)].count("candidate") == 1
