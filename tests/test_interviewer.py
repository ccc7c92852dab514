"""ivr.interviewer: the dialog policy over the sample template, turn by turn, and its follow-ups phrased
by the real embedded LLM behind the guard."""
from __future__ import annotations

import asyncio
import socket

import pytest

from config.settings import LlmSettings
from config.templates import load_template_file, sample_template_path
from ivr.guard import contains_sensitive_topic, guard_question
from ivr.interviewer import Interviewer, InterviewState, Reply, ResumePoint, example_probe, sentences
from ivr.llm.base import LlmUnavailable
from ivr.llm.embedded import EmbeddedChat
from ivr.llm.ollama_llm import OllamaChat
from ivr.phrasing import SYSTEM_PROMPT, FollowUpPhraser, does_the_job
from models.records import TurnEvaluation
from ollama_double import OllamaDouble

TEMPLATE = load_template_file(sample_template_path())
FACTORS = TEMPLATE.factors
# Strong answers (rated 88-90 by the hiring team, data/ratings): each should move the interview on.
CONCRETE = {
    "Communication clarity": "I'd start by saying I can see why that's a surprise. Then I'd go line by line: your "
                             "plan is the same, but last month you had a one-time credit of ten dollars, and this "
                             "month there's an extra charge for the international call on the fifth. So it's about "
                             "twenty dollars more. I'd check that they see the same lines on their copy, and tell "
                             "them how to avoid the call charge next time.",
    "Customer empathy": "An older man called because his phone was cut off and he was worried his daughter couldn't "
                        "reach him. I told him I understood how scary that is, put a temporary restore on the line "
                        "first so he was connected, and then we sorted out the unpaid bill together. He thanked me "
                        "by name at the end.",
    "Problem solving": "I'd ask when they last checked, whether a neighbour or the front desk could have it, and "
                       "look at the carrier's delivery photo and location. If the photo shows another door, I'd "
                       "contact the carrier and set a follow-up for tomorrow. If there's no proof, I'd start a "
                       "lost-package claim and tell the customer a replacement ships in two days unless it turns up.",
    "Reliability and availability": "I can do any shift, weekends and evenings included. At the warehouse I had "
                                    "perfect attendance for eighteen months, and when my car broke down I took two "
                                    "buses and still clocked in on time.",
}
VAGUE = "I guess I'm pretty good with that kind of stuff, it depends."


def spoken(reply: Reply) -> str:
    return " ".join(reply.say)


async def consented(name: str = "Dana") -> Interviewer:
    interviewer = Interviewer(TEMPLATE, name)
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    return interviewer


async def test_full_interview_asks_every_factor_in_order_and_closes() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana Reyes")
    opening = interviewer.opening()
    assert opening.kind == "greeting" and not opening.end_call
    assert spoken(opening) == f"{TEMPLATE.render_greeting('Dana Reyes')} {TEMPLATE.consent}"
    assert "Dana Reyes" in opening.say[0] and opening.say[-1] == "Say yes or press 1."
    assert interviewer.state is InterviewState.CONSENT and interviewer.current_factor is None

    reply = await interviewer.on_candidate_turn("Yeah, sure.")
    for index, factor in enumerate(FACTORS):
        assert reply.kind == "question" and reply.factor == factor.name
        assert spoken(reply).endswith(factor.questions[0])  # after a short "Thank you."
        assert interviewer.current_factor == factor.name and interviewer.state is InterviewState.QUESTIONS
        reply = await interviewer.on_candidate_turn(CONCRETE[factor.name])

    assert reply.kind == "closing" and reply.end_call
    assert reply.say == sentences(TEMPLATE.closing)
    assert interviewer.finished and interviewer.state is InterviewState.DONE
    assert interviewer.end_reason == "completed" and interviewer.current_factor is None
    assert [(q.factor, q.question, q.kind, q.answers) for q in interviewer.asked] == [
        (f.name, f.questions[0], "main", (CONCRETE[f.name],)) for f in FACTORS]


async def test_vague_answer_gets_the_template_follow_up_until_max_follow_ups() -> None:
    interviewer = await consented()
    clarity, empathy, solving = FACTORS[0], FACTORS[1], FACTORS[2]
    assert (clarity.max_follow_ups, empathy.max_follow_ups) == (1, 2)

    follow_up = await interviewer.on_candidate_turn(VAGUE)
    assert follow_up.kind == "follow_up" and follow_up.source == "template"
    assert follow_up.factor == clarity.name
    assert spoken(follow_up) == example_probe(clarity, clarity.questions[0], 1)
    assert interviewer.current_factor == clarity.name

    # Still vague, but the one follow-up is used up: on to the next factor.
    reply = await interviewer.on_candidate_turn("It depends, I'd just explain stuff.")
    assert reply.kind == "question" and reply.factor == empathy.name

    first = await interviewer.on_candidate_turn(VAGUE)
    second = await interviewer.on_candidate_turn("Maybe, I don't know, I usually just stay calm.")
    assert (first.kind, second.kind) == ("follow_up", "follow_up")
    assert spoken(first) != spoken(second)  # the second asks differently
    third = await interviewer.on_candidate_turn("Kind of, I guess.")
    assert third.kind == "question" and third.factor == solving.name

    kinds = [(q.factor, q.kind, len(q.answers)) for q in interviewer.asked]
    assert kinds == [(clarity.name, "main", 1), (clarity.name, "follow_up", 1), (empathy.name, "main", 1),
                     (empathy.name, "follow_up", 1), (empathy.name, "follow_up", 1), (solving.name, "main", 0)]


async def test_a_concrete_answer_to_a_follow_up_moves_on() -> None:
    interviewer = await consented()
    await interviewer.on_candidate_turn("I'd just explain it.")
    reply = await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])
    assert reply.kind == "question" and reply.factor == FACTORS[1].name


async def test_a_short_answer_gets_a_follow_up() -> None:
    interviewer = await consented()
    reply = await interviewer.on_candidate_turn("I would explain the charges.")
    assert reply.kind == "follow_up"


async def test_repeat_request_repeats_verbatim_without_using_up_the_question() -> None:
    interviewer = await consented()
    clarity = FACTORS[0]
    repeat = await interviewer.on_candidate_turn("Sorry, can you repeat that please?")
    assert repeat.kind == "repeat" and repeat.factor == clarity.name
    assert repeat.say[0] == "Sure." and " ".join(repeat.say[1:]) == clarity.questions[0]
    assert interviewer.asked[-1].answers == ()

    # Asked again: the question is put another way with the factor's alternate question.
    rephrased = await interviewer.on_candidate_turn("what was the question")
    assert rephrased.kind == "question" and spoken(rephrased).endswith(clarity.questions[1])
    assert [q.question for q in interviewer.asked] == list(clarity.questions)

    reply = await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])
    assert reply.factor == FACTORS[1].name
    assert interviewer.asked[1].answers == (CONCRETE["Communication clarity"],)


async def test_repeat_of_a_follow_up_and_of_the_consent() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    repeat = await interviewer.on_candidate_turn("pardon")
    assert repeat.kind == "repeat" and " ".join(repeat.say[1:]) == TEMPLATE.consent
    await interviewer.on_candidate_turn("yes")
    follow_up = await interviewer.on_candidate_turn(VAGUE)
    for _ in range(2):  # no alternate for a follow-up: verbatim each time
        repeat = await interviewer.on_candidate_turn("say that again")
        assert repeat.say[1:] == follow_up.say


async def test_dtmf_1_consents_9_repeats_others_are_ignored() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    assert interviewer.on_dtmf("9").say[1:] == sentences(TEMPLATE.consent)
    assert interviewer.on_dtmf("5") == Reply((), kind="none")
    question = interviewer.on_dtmf("1")
    assert question.kind == "question" and spoken(question).endswith(FACTORS[0].questions[0])
    repeat = interviewer.on_dtmf("9")
    assert repeat.kind == "repeat" and " ".join(repeat.say[1:]) == FACTORS[0].questions[0]
    ignored = interviewer.on_dtmf("1")  # not a consent any more
    assert ignored.say == () and not ignored.end_call and interviewer.current_factor == FACTORS[0].name


async def test_silence_is_reprompted_kindly_and_never_cut_off_before_the_inactivity_timeout() -> None:
    interviewer = await consented()
    reprompt = interviewer.on_silence()
    assert reprompt.kind == "reprompt" and not reprompt.end_call
    assert reprompt.say == ("Take your time.", "How would you explain the charges to them?")
    # A candidate thinking for 60 s with an 8 s re-prompt: 7 more re-prompts, varied, none ends the call.
    later = [interviewer.on_silence() for _ in range(7)]
    assert not any(reply.end_call for reply in later) and not interviewer.finished
    assert len({reply.say[0] for reply in later}) >= 3
    goodbye = interviewer.on_timeout("inactivity")
    assert goodbye.end_call and goodbye.kind == "goodbye"
    assert goodbye.say[0].startswith("I haven't heard from you in a while")
    assert interviewer.finished and interviewer.end_reason == "no_response"
    assert interviewer.on_silence() == Reply((), end_call=True)


async def test_any_candidate_turn_resets_the_silence_count() -> None:
    interviewer = await consented()
    interviewer.on_silence()
    listening = await interviewer.on_candidate_turn("mm-hmm")
    assert listening.say == () and not listening.end_call  # not an answer: keep listening
    assert interviewer.asked[-1].answers == ()
    assert interviewer.on_silence().kind == "reprompt"


async def test_silence_during_consent_asks_again_briefly() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    assert interviewer.on_silence().say == ("Are you still there?", "Do you agree to continue?",
                                            "Say yes or press 1.")


async def test_consent_no_ends_the_call() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    reply = await interviewer.on_candidate_turn("No, I don't agree.")
    assert reply.end_call and reply.kind == "goodbye"
    assert interviewer.end_reason == "declined" and interviewer.asked == []


async def test_unclear_consent_is_asked_once_more_then_the_call_ends() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    again = await interviewer.on_candidate_turn("hmm well")
    assert again.kind == "consent" and not again.end_call and spoken(again).endswith("Say yes or press 1.")
    end = await interviewer.on_candidate_turn("purple elephant banana")  # no word of agreement
    assert end.end_call and interviewer.end_reason == "no_consent"


async def test_a_question_during_consent_is_answered_then_consent_is_asked_again() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    reply = await interviewer.on_candidate_turn("Wait, am I talking to a robot?")
    assert "automated AI interviewer" in spoken(reply) and spoken(reply).endswith("Say yes or press 1.")
    assert interviewer.state is InterviewState.CONSENT
    unknown = await interviewer.on_candidate_turn("is there free parking?")
    assert "recruiter will follow up" in spoken(unknown) and interviewer.state is InterviewState.CONSENT
    assert (await interviewer.on_candidate_turn("Yes, I consent to the recording.")).kind == "question"


async def test_unclear_then_yes_starts_the_questions() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    await interviewer.on_candidate_turn("Is this about the job?")
    reply = await interviewer.on_candidate_turn("okay yes")
    assert reply.kind == "question" and interviewer.current_factor == FACTORS[0].name


async def test_stop_request_ends_the_interview_and_keeps_the_record() -> None:
    interviewer = await consented()
    await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])
    reply = await interviewer.on_candidate_turn("I want to stop the interview.")
    assert reply.end_call and interviewer.end_reason == "stopped"
    assert [q.factor for q in interviewer.asked] == [FACTORS[0].name, FACTORS[1].name]
    assert await interviewer.on_candidate_turn("hello?") == Reply((), end_call=True)


async def test_timeout_closes_the_call() -> None:
    interviewer = await consented()
    reply = interviewer.on_timeout("max_duration")
    assert reply.end_call and reply.kind == "goodbye" and "time limit" in spoken(reply)
    assert interviewer.end_reason == "max_duration"


def test_template_follow_ups_pass_the_guard() -> None:
    """The fallback wording obeys the same rules as LLM text: one safe question to the candidate."""
    for factor in FACTORS:
        for attempt in (1, 2):
            probe = example_probe(factor, factor.questions[0], attempt)
            assert guard_question(probe) == probe


# -- follow-ups phrased by the real embedded LLM -------------------------------------------------------

@pytest.fixture(scope="module")
def embedded_llm() -> EmbeddedChat:
    return EmbeddedChat(LlmSettings())


async def _quiesce() -> None:
    """Let a phrasing abandoned at its deadline finish in the background before the test's loop closes."""
    while len(asyncio.all_tasks()) > 1:
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("answer", [
    VAGUE,
    "I'd just explain it to them, it depends on the bill.",
    "Um, I would just say sorry and try to fix it, stuff like that.",
])
async def test_llm_follow_up_is_guarded_or_the_fallback(embedded_llm, answer: str) -> None:
    # A generous deadline, so the model's own text is what gets judged (speed is for the benchmarks).
    interviewer = Interviewer(TEMPLATE, "Dana", FollowUpPhraser(embedded_llm, deadline_s=60))
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    reply = await interviewer.on_candidate_turn(answer)
    assert reply.kind == "follow_up" and reply.source in ("llm", "fallback")
    text = spoken(reply)
    assert guard_question(text) == text and not contains_sensitive_topic(text)
    if reply.source == "fallback":
        assert text == example_probe(FACTORS[0], FACTORS[0].questions[0], 1)
    assert interviewer.asked[-1].question == text and interviewer.asked[-1].kind == "follow_up"


async def test_llm_past_its_deadline_gives_the_fallback(embedded_llm) -> None:
    interviewer = Interviewer(TEMPLATE, "Dana", FollowUpPhraser(embedded_llm, deadline_s=0.001))
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    reply = await interviewer.on_candidate_turn(VAGUE)
    assert reply.source == "fallback"
    assert spoken(reply) == example_probe(FACTORS[0], FACTORS[0].questions[0], 1)
    await _quiesce()


# -- what the phraser lets through, over a real Ollama client and a stand-in server on 127.0.0.1 ---------

async def _follow_up_via(double: OllamaDouble, answer: str = VAGUE, deadline_s: float = 5.0) -> Reply:
    model = OllamaChat(LlmSettings(backend="ollama", ollama_host=double.url, timeout_s=5))
    interviewer = Interviewer(TEMPLATE, "Dana", FollowUpPhraser(model, deadline_s=deadline_s))
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])  # on to Customer empathy
    try:
        return await interviewer.on_candidate_turn(answer)
    finally:
        await model.close()


async def test_a_good_llm_question_is_spoken_and_the_prompt_prefix_is_stable() -> None:
    double = await OllamaDouble(pieces=("Can you tell me about ", "a time you calmed ", "an upset caller?")).start()
    try:
        first = await _follow_up_via(double)
        second = await _follow_up_via(double, "I always stay calm, I guess, things like that.")
    finally:
        await double.close()
    assert (first.source, first.say) == ("llm", ("Can you tell me about a time you calmed an upset caller?",))
    assert second.source == "llm"
    prompts = [request["messages"] for request in double.requests]
    assert [p[0] for p in prompts] == [{"role": "system", "content": SYSTEM_PROMPT}] * 2  # KV cache prefix
    assert VAGUE in prompts[0][1]["content"] and "things like that" in prompts[1][1]["content"]
    # The model sees the question asked, the factor's strong anchor and the conversation so far.
    user = prompts[0][1]["content"]  # the follow-up is on Customer empathy, after a clarity answer
    assert f'Question asked: "{FACTORS[1].questions[0]}"' in user and FACTORS[1].anchors.strong[:40] in user
    assert "The interview so far:" in user and f"Interviewer: {FACTORS[0].questions[0]}" in user
    assert f"Candidate: {CONCRETE['Communication clarity']}" in user
    options = double.requests[0]["options"]
    assert (options["num_predict"], options["temperature"], options["seed"]) == (40, 0.0, 0)


@pytest.mark.parametrize("pieces", [
    ("How old were you ", "when you started?"),  # a question no employer may ask
    ("I worked at a bank ", "for two years."),  # the model answering as the candidate
    ("Can you give me an example ", "of using blockchain?"),  # safe, but not about the factor
    ("When the candidate's answer is vague, ", "you ask: Can you give an example?"),  # the prompt echoed
])
async def test_unusable_llm_text_falls_back_to_the_template(pieces: tuple[str, ...]) -> None:
    double = await OllamaDouble(pieces=pieces).start()
    try:
        reply = await _follow_up_via(double)
    finally:
        await double.close()
    assert reply.source == "fallback"
    assert reply.say == (example_probe(FACTORS[1], FACTORS[1].questions[0], 1),)


async def test_a_slow_llm_gives_the_fallback_at_the_deadline() -> None:
    double = await OllamaDouble(pieces=("Can you tell me about a time ", "you calmed a caller?")).start()
    double.piece_delay_s = 2.0
    try:
        reply = await _follow_up_via(double, deadline_s=0.2)
        await _quiesce()
    finally:
        await double.close()
    assert reply.source == "fallback" and reply.kind == "follow_up"


async def test_an_unreachable_llm_gives_the_fallback() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OllamaChat(LlmSettings(backend="ollama", ollama_host=f"http://127.0.0.1:{port}", timeout_s=2))
    interviewer = Interviewer(TEMPLATE, "Dana", FollowUpPhraser(model))
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    reply = await interviewer.on_candidate_turn(VAGUE)
    await model.close()
    assert reply.source == "fallback" and reply.say == (example_probe(FACTORS[0], FACTORS[0].questions[0], 1),)


@pytest.mark.parametrize(("question", "usable"), [
    # Real SmolLM2-135M outputs for vague answers, all of which pass the safety guard.
    ("Can you tell me about a time when you had to make a difficult decision, and you had to listen to "
     "your customers?", True),
    ("Can you explain the concept of blockchain in a way that is easy for a non-tech person to understand?",
     False),
    ("Can you tell me more about your personal experience of customer empathy?", False),
    ("Can you explain the process of creating a new product?", False),
])
def test_does_the_job_on_real_small_model_output(question: str, usable: bool) -> None:
    assert guard_question(question) == question
    assert does_the_job(question, FACTORS[1], FACTORS[1].questions[0]) is usable


# -- what candidates ask for besides answering ---------------------------------------------------------

async def test_a_job_question_mid_interview_is_answered_and_the_question_asked_again() -> None:
    interviewer = await consented()
    reply = await interviewer.on_candidate_turn("Before I answer, is this full time?")
    assert "full-time position" in spoken(reply) and spoken(reply).endswith("How would you explain the charges to them?")
    assert interviewer.current_factor == FACTORS[0].name and interviewer.asked[-1].answers == ()


async def test_asking_for_a_person_is_noted_and_asking_twice_ends_politely() -> None:
    interviewer = await consented()
    first = await interviewer.on_candidate_turn("Can I talk to a real person instead?")
    assert "a recruiter will call you back" in spoken(first) and not first.end_call
    assert interviewer.human_requested and interviewer.current_factor == FACTORS[0].name
    second = await interviewer.on_candidate_turn("no really, get me a human please")
    assert second.end_call and interviewer.end_reason == "human_requested"


async def test_every_turn_is_kept_with_what_was_understood() -> None:
    interviewer = await consented()
    await interviewer.on_candidate_turn("sorry what was that")
    await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])
    intents = [heard.understanding.intent.value for heard in interviewer.heard]
    assert intents == ["consent_yes", "repeat", "answer"]
    answer = interviewer.heard[-1]
    assert answer.factor == FACTORS[0].name and answer.question == FACTORS[0].questions[0]
    assert answer.evaluation is not None and 0 <= answer.evaluation["score"] <= 100


async def test_a_yes_before_the_consent_question_was_heard_in_full_is_not_consent() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    greeting = interviewer.opening()
    interviewer.prompt_cut_short(greeting)  # "Yes, go ahead." said into a pause of the greeting
    reply = await interviewer.on_candidate_turn("Yes, go ahead.")
    assert reply.kind == "consent" and spoken(reply).endswith(TEMPLATE.consent.split(". ")[-1])
    assert interviewer.state is InterviewState.CONSENT and interviewer.asked == []
    assert (await interviewer.on_candidate_turn("yes")).kind == "question"  # now it was heard in full


async def test_keypad_1_during_the_consent_question_counts() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.prompt_cut_short(interviewer.opening())
    assert interviewer.on_dtmf("1").kind == "question"


async def test_our_own_voice_echoed_back_is_not_a_turn() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana")
    interviewer.opening()
    echo = await interviewer.on_candidate_turn("Do you agree to continue? Say yes or press 1.")
    assert echo.say == () and interviewer.state is InterviewState.CONSENT
    assert (await interviewer.on_candidate_turn("Yes, I agree to continue.")).kind == "question"


async def test_a_callback_time_exchange_cannot_go_round_in_circles() -> None:
    interviewer = await consented()
    await interviewer.on_candidate_turn("can you call me back tomorrow at ten")
    same = await interviewer.on_candidate_turn("tomorrow at ten")  # the same time again: a yes
    assert same.end_call and interviewer.end_reason == "callback_scheduled" and interviewer.callback_at
    circling = await consented()
    for when in ("call me back monday morning", "no, tuesday at three", "no, wednesday at four",
                 "no, thursday at five"):
        reply = await circling.on_candidate_turn(when)
    assert reply.end_call and circling.end_reason == "callback_scheduled" and circling.callback_at is None


async def test_a_resumed_interview_goes_on_at_the_first_unanswered_question() -> None:
    stored = [TurnEvaluation("int_x", 1, "agent", None, None, "greeting", None),
              TurnEvaluation("int_x", 2, "candidate", None, None, "consent_yes", None),
              TurnEvaluation("int_x", 3, "agent", FACTORS[0].name, None, "question", None),
              TurnEvaluation("int_x", 4, "candidate", FACTORS[0].name, "q", "answer", {"score": 70}),
              TurnEvaluation("int_x", 5, "agent", FACTORS[1].name, None, "question", None),
              TurnEvaluation("int_x", 6, "candidate", FACTORS[1].name, "q", "answer", {"score": 60})]
    resume = ResumePoint.from_evaluations(stored)
    assert resume == ResumePoint(consented=True, answered=frozenset({FACTORS[0].name, FACTORS[1].name}))
    interviewer = Interviewer(TEMPLATE, "Dana", resume=resume)
    opening = interviewer.opening()
    # No second consent question: a word about the drop, the recording reminder, then question 3.
    assert "We got cut off, so let's pick up where we left off." in opening.say
    assert "As before, this call is recorded." in opening.say
    assert spoken(opening).endswith(FACTORS[2].questions[0]) and opening.factor == FACTORS[2].name
    assert interviewer.state is InterviewState.QUESTIONS and interviewer.current_factor == FACTORS[2].name
    reply = await interviewer.on_candidate_turn(CONCRETE[FACTORS[2].name])
    assert reply.factor == FACTORS[3].name  # and on through the rest


async def test_a_resume_before_consent_or_after_every_answer() -> None:
    # Cut off before saying yes: the call starts over with the consent question.
    fresh = Interviewer(TEMPLATE, "Dana", resume=ResumePoint(consented=False, answered=frozenset()))
    assert fresh.opening().kind == "greeting" and fresh.state is InterviewState.CONSENT
    # Cut off during the closing: only the closing is left.
    done = Interviewer(TEMPLATE, "Dana", resume=ResumePoint(True, frozenset(f.name for f in FACTORS)))
    closing = done.opening()
    assert closing.end_call and done.end_reason == "completed" and spoken(closing).endswith(
        " ".join(sentences(TEMPLATE.closing)))


async def test_a_person_on_request_within_the_recruiters_hours_is_a_transfer() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana", can_transfer=lambda: True)
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    reply = await interviewer.on_candidate_turn("Can I speak to a real person, please?")
    assert reply.end_call and reply.kind == "transfer" and interviewer.end_reason == "transferred"
    assert "put you through to a recruiter" in spoken(reply)
    # The leg could not put the call through: a recruiter calls back, said before the goodbye.
    fallback = interviewer.transfer_failed()
    assert fallback.end_call and interviewer.end_reason == "human_requested" and interviewer.human_requested
    assert "call you back" in spoken(fallback)


async def test_a_person_on_request_outside_the_hours_is_a_callback_and_the_interview_goes_on() -> None:
    interviewer = Interviewer(TEMPLATE, "Dana", can_transfer=lambda: False)
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    reply = await interviewer.on_candidate_turn("Can I speak to a real person, please?")
    assert not reply.end_call and interviewer.human_requested and "a recruiter will call you back" in spoken(reply)
    again = await interviewer.on_candidate_turn("I would rather talk to a human recruiter.")
    assert again.end_call and interviewer.end_reason == "human_requested"  # asked twice: ends politely


async def test_a_model_that_keeps_missing_its_deadline_is_rested_not_waited_for() -> None:
    from fakes import FakeChatModel
    from ivr.phrasing import MISSES_TO_REST, RETRY_EVERY
    phrased = "Can you tell me about a time you explained a bill step by step?"
    model = FakeChatModel([phrased] * 2, delay_s=0.5)  # (a wording stopped at its deadline takes none)
    phraser = FollowUpPhraser(model, deadline_s=0.02)
    factor = TEMPLATE.factors[0]
    for _ in range(MISSES_TO_REST):
        assert await phraser.follow_up(factor, factor.questions[0], VAGUE) is None
    assert phraser.resting and len(model.requests) == MISSES_TO_REST
    # Resting: the template's wording at once, and only every RETRY_EVERY-th follow-up asks the model again.
    for _ in range(RETRY_EVERY - 1):
        started = asyncio.get_running_loop().time()
        assert await FollowUpPhraser(model, deadline_s=0.02).follow_up(factor, factor.questions[0], VAGUE) is None
        assert asyncio.get_running_loop().time() - started < 0.01
    assert len(model.requests) == MISSES_TO_REST  # a new call's phraser shares the model's record
    # The RETRY_EVERY-th asks it in the background: still no wait, and still late, so it rests on.
    started = asyncio.get_running_loop().time()
    assert await phraser.follow_up(factor, factor.questions[0], VAGUE) is None
    assert asyncio.get_running_loop().time() - started < 0.01
    await asyncio.sleep(0.6)
    assert len(model.requests) == MISSES_TO_REST + 1 and phraser.resting
    # A model that keeps up again (the machine is less busy) is waited for from the next follow-up on.
    model.delay_s = 0.0
    for _ in range(RETRY_EVERY - 1):
        assert await phraser.follow_up(factor, factor.questions[0], VAGUE) is None
    assert await phraser.follow_up(factor, factor.questions[0], VAGUE) is None  # in time, unheard
    await asyncio.sleep(0.05)
    assert not phraser.resting
    assert await phraser.follow_up(factor, factor.questions[0], VAGUE) == phrased
    await _quiesce()


@pytest.mark.parametrize("delay_s, error, keeps_up", [
    (0.0, None, True),  # in time at warm-up: every follow-up asks it
    (0.45, None, False),  # slower than the deadline and a pause's head start: the template words them all
    (0.0, LlmUnavailable("no Ollama"), False),
])
async def test_a_model_too_slow_at_warm_up_rests_from_the_first_call(delay_s, error, keeps_up) -> None:
    from fakes import FakeChatModel
    from ivr.phrasing import ask_in_time
    model = FakeChatModel(delay_s=delay_s, error=error)
    seconds = await ask_in_time(model, deadline_s=0.05)
    asked = len(model.requests)
    assert (seconds is None, asked) == ((True, 1) if error else (False, 2))
    if not error:  # two warm-up wordings to different answers: the second is not the first one's cached prompt
        assert model.requests[0][0] == model.requests[1][0] and model.requests[0][1] != model.requests[1][1]
    phraser = FollowUpPhraser(model, deadline_s=0.05)
    assert phraser.resting is not keeps_up
    factor = TEMPLATE.factors[0]
    started = asyncio.get_running_loop().time()
    assert await phraser.follow_up(factor, factor.questions[0], VAGUE) is None
    assert (len(model.requests) == asked + 1) is keeps_up
    if not keeps_up:  # no wait at all for a wording that cannot come
        assert asyncio.get_running_loop().time() - started < 0.01
    await _quiesce()


async def test_a_follow_up_is_worded_while_the_candidate_pauses() -> None:
    """At a pause after a vague answer the interviewer has the model start wording the follow-up; when the
    turn ends on those words the wording is taken over, so the reply does not wait the model's 0.4 s.
    Words that earn no follow-up start nothing; other words than the pause's start a fresh request."""
    from fakes import FakeChatModel
    phrased = "Can you tell me about a time you calmed an upset caller?"
    model = FakeChatModel([phrased] * 3, delay_s=0.4)
    interviewer = Interviewer(TEMPLATE, "Dana", FollowUpPhraser(model, deadline_s=1.0))
    interviewer.opening()
    await interviewer.on_candidate_turn("yes")
    interviewer.anticipate(CONCRETE["Communication clarity"])
    await asyncio.sleep(0)
    assert model.requests == []  # a concrete answer moves on: nothing to word
    await interviewer.on_candidate_turn(CONCRETE["Communication clarity"])  # on to Customer empathy
    interviewer.anticipate(VAGUE)
    await asyncio.sleep(0.45)  # the candidate's pause, and the turn ends on the same words
    started = asyncio.get_running_loop().time()
    reply = await interviewer.on_candidate_turn(VAGUE)
    assert asyncio.get_running_loop().time() - started < 0.1
    assert (reply.source, reply.say) == ("llm", (phrased,)) and len(model.requests) == 1

    interviewer.anticipate("I guess")  # the candidate went on after this pause
    await asyncio.sleep(0.01)
    reply = await interviewer.on_candidate_turn("I guess I just stay calm, things like that.")
    assert reply.source == "llm" and len(model.requests) == 3
    assert "things like that" in model.requests[-1][-1].content
    await _quiesce()
