"""ivr.answers: the transparent features behind every interviewer decision, on realistic call-center
answers to the sample template's questions, and intents as speech-to-text writes them."""
from __future__ import annotations

import pytest

from config.templates import EvaluationFactor, load_template_file, sample_template_path
from ivr.answers import SHORT_ANSWER_WORDS, Intent, analyze_answer, detect_intent, is_backchannel

TEMPLATE = load_template_file(sample_template_path())
FACTORS = {factor.name: factor for factor in TEMPLATE.factors}

VAGUE = {
    "Communication clarity": [
        "I'd just explain it to them, I guess. It depends on what the bill says really.",
        "I'm pretty good at explaining stuff, I usually keep things simple for people.",
    ],
    "Customer empathy": [
        "I guess I'm pretty good with people, it depends.",
        "I always stay calm and kind of just listen to them, things like that, you know.",
    ],
    "Problem solving": [
        "I'd probably just refund it, or maybe escalate it, I don't know, it depends on the customer.",
        "It depends on the situation really, I would just handle it like I usually do.",
    ],
    "Reliability and availability": [
        "I can work whatever shifts, usually, I mean it kind of depends on the week.",
        "I'm usually on time, I never really have problems with that kind of stuff.",
    ],
}
CONCRETE = {
    "Communication clarity": [
        "First I'd pull up both bills and compare them line by line. Then I'd tell the customer in plain "
        "words that the $15 promotional discount ended in March, and I'd ask them to confirm it makes sense.",
        "At my last job a customer didn't understand why her phone bill went up. I walked her through each "
        "charge, showed her the new data fee, and asked her to repeat back what changed.",
    ],
    "Customer empathy": [
        "Last March a customer called about a double charge; I apologized, refunded $40 within the call "
        "and followed up by email the next day.",
        "A man called yelling because his internet had been down for three days. I let him vent, told him I "
        "understood how frustrating that was, and booked a technician for the next morning.",
    ],
    "Problem solving": [
        "First I'd confirm the address and ask if a neighbor could have it. Then I'd check the tracking "
        "number and the delivery photo, open a claim with the carrier, and call the customer back in 48 hours.",
        "Once a coworker's register froze during a sale. I restarted it, checked the receipt log, and when "
        "that failed I called the manager, who voided the sale so we could ring it up again.",
    ],
    "Reliability and availability": [
        "I can work evenings Monday to Friday and every other weekend, and I'm fine with rotating shifts.",
        "At my last job I worked the 6 am shift for two years and was never late once. When my bus route "
        "changed I took an earlier bus and told my supervisor a week ahead.",
    ],
}


def _cases(answers: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(name, text) for name, texts in answers.items() for text in texts]


@pytest.mark.parametrize(("factor_name", "answer"), _cases(VAGUE))
def test_vague_answers_are_vague_and_say_why(factor_name: str, answer: str) -> None:
    features = analyze_answer(answer, FACTORS[factor_name])
    assert features.is_vague
    assert features.vague_markers >= features.concrete_markers + features.first_person_actions
    assert any(reason.startswith(("no concrete example", f"{features.vague_markers} vague phrase"))
               for reason in features.reasons), features.reasons


@pytest.mark.parametrize(("factor_name", "answer"), _cases(CONCRETE))
def test_concrete_answers_are_neither_vague_nor_short(factor_name: str, answer: str) -> None:
    features = analyze_answer(answer, FACTORS[factor_name])
    assert not features.is_vague, features.reasons
    assert not features.is_short
    assert features.concrete_markers >= 3
    assert features.topic_words >= 1
    assert f"{features.concrete_markers} concrete details" in " ".join(features.reasons)


def test_the_double_charge_story_counts_what_was_done() -> None:
    features = analyze_answer(CONCRETE["Customer empathy"][0], FACTORS["Customer empathy"])
    reasons = " ".join(features.reasons)
    assert features.words == 24
    assert features.first_person_actions == 1 and "'i apologized'" in reasons
    # A month, a verb in the past, an amount and a named outcome are all concrete details.
    for detail in ("'march'", "'called'", "'apologized'", "'refunded'"):
        assert detail in reasons
    assert features.vague_markers == 0


def test_short_answer_reason_names_the_word_count() -> None:
    features = analyze_answer("Evenings, I guess.", FACTORS["Reliability and availability"])
    assert features.is_short and features.words == 3 < SHORT_ANSWER_WORDS
    assert features.reasons[0] == "only 3 words"
    assert "1 vague phrase ('i guess')" in features.reasons


def test_a_concrete_but_off_topic_answer_is_vague_for_the_factor() -> None:
    answer = "I worked at a pizza place for two years and then I drove to Denver in 2019 to study music."
    features = analyze_answer(answer, FACTORS["Customer empathy"])
    assert features.concrete_markers >= 3  # concrete, just not about empathy
    assert features.topic_words == 0 and features.is_vague
    assert "nothing about customer empathy" in features.reasons


def test_speech_to_text_spelling_does_not_change_the_features() -> None:
    factor = FACTORS["Problem solving"]
    written = analyze_answer("I don't know, I'd handle it, it depends.", factor)
    transcribed = analyze_answer("i dont know id handle it it depends", factor)
    assert (written.vague_markers, written.words, written.is_vague) == (transcribed.vague_markers,
                                                                          transcribed.words, True)


def test_hedges_outweigh_a_single_detail() -> None:
    # "on time" is concrete, but three hedges around it leave nothing to assess.
    features = analyze_answer("I'm usually on time, I never really have problems with that stuff.",
                              FACTORS["Reliability and availability"])
    assert features.concrete_markers == 1 and features.vague_markers == 3 and features.is_vague


def test_topic_vocabulary_comes_from_the_factor_text() -> None:
    custom = EvaluationFactor(name="Upselling", weight=1, description="Offers the premium plan when it fits.",
                              anchors=FACTORS["Problem solving"].anchors, questions=("How do you sell?",))
    on_topic = analyze_answer("I offered the premium plan to 3 callers last week and two upgraded.", custom)
    assert on_topic.topic_words >= 2 and not on_topic.is_vague


@pytest.mark.parametrize(("text", "intent"), [
    ("can you repeat that please", Intent.REPEAT_REQUEST),
    ("Sorry, what was the question?", Intent.REPEAT_REQUEST),
    ("sorry what was the question", Intent.REPEAT_REQUEST),
    ("Pardon?", Intent.REPEAT_REQUEST),
    ("say that again", Intent.REPEAT_REQUEST),
    ("I didn't catch that.", Intent.REPEAT_REQUEST),
    ("uh could you say that again", Intent.REPEAT_REQUEST),
    ("what", Intent.REPEAT_REQUEST),
    ("yes", Intent.CONSENT_YES),
    ("Yeah, sure.", Intent.CONSENT_YES),
    ("yeah sure", Intent.CONSENT_YES),
    ("okay", Intent.CONSENT_YES),
    ("um yes I agree", Intent.CONSENT_YES),
    ("Go ahead.", Intent.CONSENT_YES),
    ("no", Intent.CONSENT_NO),
    ("No, I don't agree.", Intent.CONSENT_NO),
    ("nope no thanks", Intent.CONSENT_NO),
    ("stop", Intent.STOP_REQUEST),
    ("I want to stop.", Intent.STOP_REQUEST),
    ("end the call", Intent.STOP_REQUEST),
    ("please hang up", Intent.STOP_REQUEST),
    ("I'd like to end the interview now", Intent.STOP_REQUEST),
    ("mm hmm", Intent.BACKCHANNEL),
    ("Mm-hmm.", Intent.BACKCHANNEL),
    ("uh huh", Intent.BACKCHANNEL),
    ("right", Intent.BACKCHANNEL),
    # Request words inside an answer leave it an answer.
    ("I would never hang up on a customer, I'd stay on the line.", Intent.ANSWER),
    ("I had to repeat the steps twice before she understood.", Intent.ANSWER),
    ("No, I've never missed a shift in two years.", Intent.ANSWER),
    ("Yes, I can work weekends and evenings.", Intent.ANSWER),
])
def test_detect_intent(text: str, intent: Intent) -> None:
    assert detect_intent(text) is intent


@pytest.mark.parametrize("text", [
    "mm-hmm", "Mm hmm.", "mhm", "uh-huh", "Yeah.", "okay", "OK", "right", "yeah yeah",
    "MMM.", "Oh.",  # Whisper tiny.en's transcripts of Piper saying "Mm-hmm." and "Uh-huh."
    "um", "",  # a filler or nothing at all doesn't take the floor either
])
def test_backchannels_do_not_take_the_floor(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["yes I agree", "can you repeat that", "wait", "no", "stop",
                                  "Last March a customer called about a double charge."])
def test_anything_else_is_not_a_backchannel(text: str) -> None:
    assert not is_backchannel(text)
