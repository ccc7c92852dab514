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
from fakes import HANG_UP, FakeCandidate, FakeChatModel, Line, fake_engines, talk
from ivr.engines import VoiceEngines
from ivr.interviewer import BEGIN, GOODBYE, REPROMPTS, shortened
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


# -- the interviewer's decisions -----------------------------------------------------------------------
PHRASED = "Can you walk me through how you would explain each charge on the bill, step by step?"


async def test_a_vague_answer_is_followed_up_with_the_template_probe(store, sample_template, engines,
                                                                   tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, VAGUE, *CONCRETE)
    leg = await talk(session, who)
    assert leg.status == "completed"
    first = sample_template.factors[0].name
    assert [q.kind for q in session.interviewer.asked if q.factor == first] == ["main", "follow_up"]
    follow_up = agent_turns(store, session)[2].text
    assert follow_up == "Could you walk me through it step by step, with the exact words you would use?"
    assert [t.reply_source for t in session.timings][1] == "template"
    assert_stored_as_heard(store, session, who)


async def test_the_llm_words_a_follow_up_that_passes_the_guard(store, sample_template, tmp_path) -> None:
    llm = FakeChatModel([PHRASED] * 10)
    engines = fake_engines(llm=llm)
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, VAGUE, CONCRETE[0], HANG_UP)
    assert (await talk(session, who)).status == "partial"
    assert agent_turns(store, session)[2].text == PHRASED
    assert session.timings[1].reply_source == "llm"
    assert VAGUE in llm.requests[-1][-1].content  # the answer is in the prompt
    assert_stored_as_heard(store, session, who)


@pytest.mark.parametrize("llm", [
    FakeChatModel(error=LlmUnavailable("the model server is down")),
    FakeChatModel(["Tell me, what is your favourite colour?"]),  # off task: not spoken
    FakeChatModel([PHRASED], delay_s=2.0),  # past the 0.3 s deadline
], ids=["failed", "off-task", "late"])
async def test_a_follow_up_the_llm_cannot_word_uses_the_template(store, sample_template, tmp_path, llm) -> None:
    engines = fake_engines(llm=llm, llm_deadline_s=0.3)
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, VAGUE, HANG_UP)
    assert (await talk(session, who)).status == "partial"
    assert agent_turns(store, session)[2].text.startswith("Could you walk me through it step by step")
    assert session.timings[1].reply_source == "fallback"


# -- turn-taking ---------------------------------------------------------------------------------------
async def test_barge_in_stops_playback_and_keeps_only_what_was_heard(store, sample_template, engines,
                                                                      tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    over = Line(CONCRETE[0], over="Imagine a customer calls", after_words=4)
    who = candidate(engines, CONSENT, over, *CONCRETE[1:])
    leg = await talk(session, who)
    assert leg.status == "completed"
    assert leg.clears == 1  # the leg was told to drop its buffered audio once
    assert who.said[1].over_ai
    cut = [t for t in store.turns(session.interview_id) if t.interrupted]
    assert len(cut) == 1 and cut[0].role == "agent" and cut[0].text.startswith(BEGIN)
    question = sample_template.factors[0].questions[0]
    words_heard = len(cut[0].text.split()) - len(BEGIN.split())
    assert 4 <= words_heard < len(question.split())
    # Playback paused after barge_in_ms of voiced speech: the AI said at most that much more.
    assert words_heard - 4 <= VOICE.barge_in_ms // 240 + 1
    assert cut[0].end_ms <= who.said[1].start_ms + VOICE.barge_in_ms + 100
    assert CONCRETE[0] in candidate_texts(store, session)  # the answer given over the question counts
    assert [q.kind for q in session.interviewer.asked] == ["main"] * len(sample_template.factors)
    assert_stored_as_heard(store, session, who)


@pytest.mark.parametrize("nod, partials, clears", [
    ("Mm-hmm.", True, 0),  # shorter than barge_in_ms: playback never pauses
    ("Mm-hmm, yeah, right.", False, 1),  # no partials (Whisper on short speech): a pause, then on where it was
], ids=["short", "long without partials"])
async def test_a_backchannel_over_the_ai_does_not_interrupt(store, sample_template, tmp_path, nod, partials,
                                                            clears) -> None:
    engines = fake_engines(stt_partials=partials)
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, Line(nod, over="Imagine a customer calls", after_words=2), CONCRETE[0],
                    HANG_UP)
    leg = await talk(session, who)
    assert leg.status == "partial"
    turns = store.turns(session.interview_id)
    assert not any(t.interrupted for t in turns)
    assert candidate_texts(store, session) == [CONSENT, CONCRETE[0]]  # the nod is no turn
    assert leg.clears == clears
    assert agent_turns(store, session)[1].text.endswith(sample_template.factors[0].questions[0])
    assert_stored_as_heard(store, session, who)


async def test_silence_is_reprompted_until_the_inactivity_timeout(store, sample_template, engines,
                                                                 tmp_path) -> None:
    template = dataclasses.replace(sample_template, silence_reprompt_s=4, inactivity_timeout_s=13)
    session = start(store, template, engines, tmp_path)
    who = candidate(engines, CONSENT)  # then says nothing
    leg = await talk(session, who)
    assert leg.status == "no_response" and session.interviewer.end_reason == "no_response"
    agent = [t.text for t in agent_turns(store, session)]
    assert [text[:len(lead)] for text, lead in zip(agent[2:5], REPROMPTS)] == list(REPROMPTS[:3])
    assert agent[2] == f"{REPROMPTS[0]} {shortened(sample_template.factors[0].questions[0])}"  # asks again
    assert agent[5] == "I haven't heard from you in a while, so I'll end the call here. " + GOODBYE
    assert len(agent) == 6
    assert store.get_interview(session.interview_id).status == "no_response"
    assert_stored_as_heard(store, session, who)


async def test_a_hang_up_mid_answer_ends_partial_with_every_turn_kept(store, sample_template, engines,
                                                                       tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, CONCRETE[0], Line(CONCRETE[1], hang_up_after_words=6))
    leg = await talk(session, who)
    assert leg.status == "partial" and leg.ended == "remote_hangup" and leg.hung_up is None
    assert candidate_texts(store, session) == [CONSENT, CONCRETE[0], " ".join(CONCRETE[1].split()[:6])]
    assert [t.role for t in store.turns(session.interview_id)] == ["agent", "candidate"] * 3
    interview = store.get_interview(session.interview_id)
    assert interview.status == "partial" and interview.recording_path
    assert_stored_as_heard(store, session, who)


async def test_keys_give_consent_and_repeat_the_question(store, sample_template, engines, tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, Line("", keys="1"), Line("", keys="9"), CONCRETE[0], HANG_UP)
    assert (await talk(session, who)).status == "partial"
    agent = agent_turns(store, session)
    question = sample_template.factors[0].questions[0]
    assert agent[1].text == f"{BEGIN} {question}" and agent[2].text.endswith(question)  # said again on 9
    assert candidate_texts(store, session) == [CONCRETE[0]]  # keys are no turns
    assert_stored_as_heard(store, session, who)


@pytest.mark.parametrize("put_through, status", [(True, "transferred"), (False, "callback_scheduled")])
async def test_a_request_for_a_person_is_put_through_when_the_leg_can(store, sample_template, engines, tmp_path,
                                                                     put_through, status) -> None:
    interview_id = connected_interview(store, sample_template)
    session = InterviewSession.for_interview(store, interview_id, engines=engines, voice=VOICE,
                                             recordings_dir=tmp_path, can_transfer=lambda: True)
    who = candidate(engines, CONSENT, "Can I speak to a real person, please?")
    leg = await talk(session, who, transfers=put_through)
    assert leg.status == status
    agent = [t.text for t in agent_turns(store, session)]
    assert agent[2] == "Of course. I'll put you through to a recruiter now. Please hold."
    assert put_through or agent[3].startswith("I'm sorry, I couldn't reach a recruiter just now.")
    assert_stored_as_heard(store, session, who)


async def test_a_hang_up_while_the_ai_speaks_keeps_the_words_it_heard(store, sample_template, engines,
                                                                        tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, CONCRETE[0], Line("", over="Tell me about a time", after_words=3,
                                                        hang_up_after_words=0))
    assert (await talk(session, who)).status == "partial"
    last = agent_turns(store, session)[-1]
    assert last.interrupted and last.text == "Thank you. Tell me about"
    assert_stored_as_heard(store, session, who)


async def test_the_time_limit_reached_mid_answer_keeps_the_answer_and_is_heard(store, sample_template, engines,
                                                                              tmp_path) -> None:
    template = dataclasses.replace(sample_template, max_duration_s=60)  # reached during the third answer
    session = start(store, template, engines, tmp_path)
    who = candidate(engines, CONSENT, *CONCRETE)
    leg = await talk(session, who)
    assert leg.status == "completed" and session.interviewer.end_reason == "max_duration"
    assert candidate_texts(store, session) == [CONSENT, *CONCRETE[:3]]
    assert who.said[3].start_ms < 60_000 < who.said[3].end_ms
    # Begun over the answer, the goodbye was cut at once; it is said once the candidate has finished.
    last = agent_turns(store, session)[-1]
    assert last.text.endswith("We've reached the time limit for this interview, so I'll stop here. " + GOODBYE)
    assert not last.interrupted and last.start_ms > who.said[3].end_ms
    assert_stored_as_heard(store, session, who)


# -- the end of a turn ---------------------------------------------------------------------------------
async def test_a_finished_thought_ends_the_turn_sooner(store, sample_template, engines, tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, CONCRETE[0], HANG_UP)
    await talk(session, who)
    # The words up to the pause were transcribed and end on a full stop: no need to wait end_silence_ms.
    assert [t.endpoint_delay_ms for t in session.timings] == [-(-VOICE.complete_silence_ms // 20) * 20] * 2  # whole frames
    assert VOICE.complete_silence_ms < VOICE.end_silence_ms


async def test_no_partial_transcript_waits_the_whole_end_silence(store, sample_template, tmp_path) -> None:
    engines = fake_engines(stt_partials=False)  # nothing tells the turn detector what was said
    session = start(store, sample_template, engines, tmp_path)
    await talk(session, candidate(engines, CONSENT, HANG_UP))
    assert [t.endpoint_delay_ms for t in session.timings] == [VOICE.end_silence_ms]


@pytest.mark.parametrize("pause_ms", [1000, 1500])
async def test_a_candidate_pausing_to_think_mid_answer_is_not_talked_over(store, sample_template, engines, tmp_path,
                                                                        pause_ms) -> None:
    answer = "I was handling a billing complaint and um then I called the customer back the next day."
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, CONSENT, Line(answer, pause_after_words=7, mid_pause_ms=pause_ms), HANG_UP)
    await talk(session, who)
    assert candidate_texts(store, session)[1] == answer  # one turn: the pause after "um" did not end it
    assert len(session.timings) == 2


# -- acknowledgements ----------------------------------------------------------------------------------
async def test_an_acknowledgement_only_when_the_reply_is_late(store, sample_template, tmp_path) -> None:
    engines = fake_engines(llm=FakeChatModel([PHRASED], delay_s=1.0), llm_deadline_s=5.0)
    session = start(store, sample_template, engines, tmp_path, dataclasses.replace(VOICE, reply_deadline_ms=400))
    who = candidate(engines, CONSENT, VAGUE, CONCRETE[0], CONCRETE[1], HANG_UP)
    await talk(session, who)
    # Only the follow-up waits for the (slow) LLM; every other reply is ready at once.
    assert [t.acknowledged for t in session.timings] == [False, True, False, False]
    said = agent_turns(store, session)[2].text  # one utterance
    assert any(said == f"{acknowledgement} {PHRASED}" for acknowledgement in ACKNOWLEDGEMENTS), said
    assert_stored_as_heard(store, session, who)


async def test_acknowledgements_never_on_two_turns_running_and_varied(store, sample_template, tmp_path) -> None:
    engines = fake_engines(stt_delay_s=0.3)  # every final transcript is late: every reply is
    session = start(store, sample_template, engines, tmp_path, dataclasses.replace(VOICE, reply_deadline_ms=50))
    who = candidate(engines, CONSENT, CONCRETE[0], CONCRETE[1], CONCRETE[2], HANG_UP)
    await talk(session, who)
    # Every reply is late, but the turn after an acknowledged one waits in silence.
    assert [t.acknowledged for t in session.timings] == [True, False, True, False]
    said = [t.text.split()[0] for t in agent_turns(store, session)[1:]]
    acknowledged = [word for word, timing in zip(said, session.timings) if timing.acknowledged]
    assert all(a != b for a, b in zip(acknowledged, acknowledged[1:])), said
    assert_stored_as_heard(store, session, who)


# -- consent and the closing ---------------------------------------------------------------------------
@pytest.mark.parametrize("yes", [
    Line("Yes, that's fine, go ahead with the interview.", over="this is the automated", after_words=3),  # greeting
    Line("Yes, sure.", over="Say yes or press 1.", after_words=2),  # begun well before the question ended
], ids=["barge-in", "early"])
async def test_a_yes_said_over_the_consent_question_is_not_consent(store, sample_template, engines, tmp_path,
                                                                  yes) -> None:
    session = start(store, sample_template, engines, tmp_path)
    who = candidate(engines, yes, CONSENT, HANG_UP)
    assert (await talk(session, who)).status == "partial"
    agent = agent_turns(store, session)
    assert agent[1].text.startswith("Before we go on, I need to ask you this.")
    assert agent[1].text.endswith(sample_template.consent.split(". ")[-1])
    assert agent[2].text.startswith(BEGIN)  # the yes after the question heard in full is consent
    assert candidate_texts(store, session) == [yes.text, CONSENT]
    assert_stored_as_heard(store, session, who)


async def test_the_closing_is_said_again_after_being_talked_over(store, sample_template, engines, tmp_path) -> None:
    session = start(store, sample_template, engines, tmp_path)
    over = Line("Thank you, and I can also start next week if you need me to.", over="That's all my questions",
                after_words=2)
    who = candidate(engines, CONSENT, *CONCRETE, over)
    leg = await talk(session, who)
    assert leg.status == "completed" and leg.hung_up == "completed"
    agent = agent_turns(store, session)
    assert agent[-2].interrupted and agent[-2].text.startswith("That's all")
    assert agent[-1].text == "Sorry, as I was saying. " + sample_template.closing and not agent[-1].interrupted
    assert candidate_texts(store, session)[-1] == over.text  # the words said over it are kept
    assert_stored_as_heard(store, session, who)
