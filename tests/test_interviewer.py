"""ivr.interviewer: the dialog policy over the sample template, turn by turn, and its follow-ups phrased
by the real embedded LLM behind the guard."""
from __future__ import annotations

import asyncio
import socket

import pytest

from config.settings import LlmSettings
from config.templates import load_template_file, sample_template_path
from ivr.guard import contains_sensitive_topic, guard_question
from ivr.interviewer import Interviewer, InterviewState, Reply, example_probe, sentences
from ivr.llm.llama_cpp_llm import EmbeddedChat
from ivr.llm.ollama_llm import OllamaChat
from ivr.phrasing import SYSTEM_PROMPT, FollowUpPhraser, does_the_job
from ollama_double import OllamaDouble

TEMPLATE = load_template_file(sample_template_path())
FACTORS = TEMPLATE.factors
CONCRETE = {
    "Communication clarity": "First I'd pull up both bills and compare them line by line, then I'd tell the "
                             "customer the $15 discount ended in March and ask them to confirm it makes sense.",
    "Customer empathy": "Last March a customer called about a double charge; I apologized, refunded $40 within "
                        "the call and followed up by email the next day.",
    "Problem solving": "First I'd confirm the address, then I'd check the tracking number and the delivery "
                       "photo, open a claim with the carrier and call the customer back within 48 hours.",
    "Reliability and availability": "I can work evenings Monday to Friday and every other weekend, and at my "
                                    "last job I was never late once in two years.",
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


async def test_silence_reprompts_then_says_goodbye() -> None:
    interviewer = await consented()
    reprompt = interviewer.on_silence()
    assert reprompt.kind == "reprompt" and not reprompt.end_call
    assert reprompt.say == ("Take your time.", "How would you explain the charges to them?")
    goodbye = interviewer.on_silence()
    assert goodbye.end_call and goodbye.kind == "goodbye"
    assert goodbye.say[0].startswith("I haven't heard anything, so I'll end the call here")
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
    again = await interviewer.on_candidate_turn("Who is this?")
    assert again.kind == "consent" and not again.end_call and spoken(again).endswith("Say yes or press 1.")
    end = await interviewer.on_candidate_turn("mm-hmm")  # not a clear yes
    assert end.end_call and interviewer.end_reason == "no_consent"


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
