"""Scoring hand-written call-center transcripts (tests/data/transcripts) stored through the real store and
graded by the default per-answer evaluator grader: the acceptance criteria of the scoring issue, masking
and the language read. The helpers here are shared by the other test_scoring_* modules."""
from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from config.settings import Settings
from config.templates import InterviewTemplate
from models.store import Conflict, SessionStore, default_expiry
from scoring import grade_transcript, score_interview
from scoring.base import Grading
from scoring.feature_grader import FeatureGrader
from scoring.masking import MASK, mask_sensitive, unmasked_fragment
from scoring.schema import SCORECARD_DATA_SCHEMA
from scoring.transcript import GradingInput, prepare
from server.http import camelize

TRANSCRIPTS = Path(__file__).parent / "data" / "transcripts"
NAMES = ("strong", "weak", "vague", "near_silent", "dropped")
GAP_MS = 700  # between turns


def load_transcript(name: str) -> dict[str, Any]:
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text(encoding="utf-8"))


def store_transcript(store: SessionStore, template: InterviewTemplate, name: str, *,
                     position_id: str | None = None, campaign_id: str | None = None,
                     candidate_id: str | None = None) -> str:
    """The transcript as the voice engine would leave it: a web interview, started, every turn added with
    its timing, then completed (or partial for a dropped call). Returns the interview id."""
    data = load_transcript(name)
    if position_id is None:
        position_id = store.create_position(template).id
    if candidate_id is None:
        candidate_id = store.upsert_candidate({"name": data["candidate"], "phone": "+14155550100"})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel="web",
                                          expires_at=default_expiry(), campaign_id=campaign_id)
    store.transition(interview.id, "in_progress")
    clock = 0
    for turn in data["turns"]:
        duration = int(turn["seconds"] * 1000)
        store.add_turn(interview.id, role=turn["role"], text=turn["text"], start_ms=clock, end_ms=clock + duration,
                       stt_confidence=turn.get("stt_confidence"))
        clock += duration + GAP_MS
    store.transition(interview.id, data["end_status"])
    return interview.id


def api_shaped(schema: Any) -> Any:
    """The OpenAPI 3.0 schema in plain JSON Schema (nullable -> a type list) for jsonschema_rs."""
    if isinstance(schema, dict):
        out = {k: api_shaped(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable"):
            out["type"] = [schema["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(schema, list):
        return [api_shaped(v) for v in schema]
    return schema


DATA_VALIDATOR = jsonschema_rs.validator_for(api_shaped(SCORECARD_DATA_SCHEMA))


def assert_citations_are_real(store: SessionStore, interview_id: str, data: dict[str, Any]) -> None:
    turns = {t.turn_number: t for t in store.turns(interview_id)}
    for factor in data["factors"]:
        for citation in factor["citations"]:
            turn = turns[citation["turn"]]
            assert turn.role == "candidate", citation
            assert citation["quote"] and citation["quote"] in turn.text, citation
            assert citation["turn"] in factor["answered_turns"], citation
            assert MASK not in citation["quote"]


@pytest.fixture
def scored(store: SessionStore, sample_template, settings: Settings) -> dict[str, Any]:
    """Every hand-written transcript stored and scored once: name -> (interview id, scorecard)."""
    position_id = store.create_position(sample_template).id
    out = {}
    for name in NAMES:
        iid = store_transcript(store, sample_template, name, position_id=position_id)
        out[name] = (iid, score_interview(store, iid, settings))
    return out


# -- the acceptance criteria -----------------------------------------------------------------------
def test_strong_scores_above_weak_and_vague_on_every_factor(scored) -> None:
    strong, weak, vague = (scored[n][1] for n in ("strong", "weak", "vague"))
    assert strong.status == weak.status == vague.status == "scored"
    for s, w, v in zip(strong.data["factors"], weak.data["factors"], vague.data["factors"]):
        assert s["name"] == w["name"] == v["name"]
        assert s["score"] > w["score"], (s["name"], s["score"], w["score"])
        assert s["score"] > v["score"], (s["name"], s["score"], v["score"])
    assert strong.overall > weak.overall and strong.overall > vague.overall


def test_near_silent_is_low_confidence_with_no_number(scored) -> None:
    _, card = scored["near_silent"]
    assert card.status == "low_confidence" and card.overall is None
    reasons = card.data["low_confidence_reasons"]
    assert any("words" in r for r in reasons) and any("factors answered" in r for r in reasons)
    # "I don't know." is a response (judged as a weak answer), "Okay." / "Um." / "Maybe." are not.
    assert card.data["coverage"]["factors_answered"] == 1
    assert card.data["language"]["cefr"] is None and "too little speech" in card.data["language"]["cefr_note"]


def test_dropped_call_is_partial_with_null_factors_it_never_reached(scored, store) -> None:
    iid, card = scored["dropped"]
    assert card.status == "partial"
    assert store.get_interview(iid).status == "partial"  # not report_ready: the call did not complete
    scores = {f["name"]: f["score"] for f in card.data["factors"]}
    assert scores["Communication clarity"] > 60 and scores["Customer empathy"] > 60
    # Problem solving was cut off five words in: not reached, never graded as a weak answer.
    assert scores["Problem solving"] is None and scores["Reliability and availability"] is None
    assert any("dropped" in note for note in card.data["notes"])
    graded = [f for f in card.data["factors"] if f["score"] is not None]
    expected = math.fsum(f["weight"] * f["score"] for f in graded) / math.fsum(f["weight"] for f in graded)
    assert card.overall == pytest.approx(expected, abs=0.06)
    assert "dropped" in card.data["ai_feedback"]["probe"]


def test_every_citation_quotes_real_text_of_the_cited_candidate_turn(scored, store) -> None:
    for name, (iid, card) in scored.items():
        assert_citations_are_real(store, iid, card.data)
        for factor in card.data["factors"]:
            assert bool(factor["citations"]) == (factor["score"] is not None), (name, factor["name"])


def test_the_same_input_gives_the_same_scorecard(scored, store, settings) -> None:
    for name, (iid, first) in scored.items():
        again = score_interview(store, iid, settings)
        assert again.version == first.version + 1
        assert (again.status, again.overall, again.rubric_version, again.data) == (
            first.status, first.overall, first.rubric_version, first.data), name
    assert [s.version for s in store.scorecards(scored["strong"][0])] == [1, 2]  # every version is kept


def test_a_completed_interview_becomes_report_ready_with_the_rubric_version(scored, store) -> None:
    iid, card = scored["strong"]
    interview = store.get_interview(iid)
    position = store.get_position(interview.position_id, version=interview.position_version)
    assert interview.status == "report_ready"
    assert card.rubric_version == position.rubric_version == card.data["rubric_version"]
    scored_events = [e for e in store.events(interview_id=iid) if e.type == "interview.scored"]
    assert [e.data["scorecardId"] for e in scored_events] == [card.id]


def test_overall_is_the_weighted_mean_and_data_matches_the_api_schema(scored) -> None:
    iid, card = scored["strong"]
    factors = card.data["factors"]
    assert math.fsum(f["weight"] for f in factors) == pytest.approx(1.0)
    assert [f["weight"] for f in factors] == [0.3, 0.3, 0.2, 0.2]  # template weights 3, 3, 2, 2
    assert card.overall == pytest.approx(math.fsum(f["weight"] * f["score"] for f in factors), abs=0.06)
    for _, scorecard in scored.values():
        errors = [str(e) for e in DATA_VALIDATOR.iter_errors(camelize(scorecard.data))]
        assert errors == []
    grader = card.data["grader"]
    assert grader["name"] == "evaluator" and grader["model"].startswith("answer-evaluator-2/tune-")
    assert (grader["requested"], grader["temperature"], grader["seed"]) == ("auto", 0.0, 42)


def test_reasoning_names_what_drove_each_answer_and_feedback_has_two_paragraphs(scored) -> None:
    strong, weak = scored["strong"][1], scored["weak"][1]
    for factor in strong.data["factors"]:
        assert re.match(r"\d+/100 from \d+ evaluated answers?\. Turn \d+: \d+/100: it ", factor["reasoning"])
    assert "says enough to show the approach" in strong.data["factors"][0]["reasoning"]
    assert "says very little" in weak.data["factors"][2]["reasoning"]
    assert "strongest on" in strong.data["ai_feedback"]["strengths"]
    weak_names = sorted(weak.data["factors"], key=lambda f: f["score"])[0]["name"].lower()
    assert weak_names in weak.data["ai_feedback"]["probe"]


def test_a_scheduled_interview_cannot_be_scored(store, sample_template, settings) -> None:
    position_id = store.create_position(sample_template).id
    candidate_id = store.upsert_candidate({"name": "Ana Ruiz"})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel="web",
                                          expires_at=default_expiry())
    with pytest.raises(Conflict):
        score_interview(store, interview.id, settings)
    assert store.scorecards(interview.id) == []


# -- what the grader is given ----------------------------------------------------------------------
class RecordingGrader:
    """The keyword feature grader, keeping what it was given so the test can read it."""
    name = "feature"

    def __init__(self) -> None:
        self.seen: list[GradingInput] = []

    def grade(self, material: GradingInput) -> Grading:
        self.seen.append(material)
        return FeatureGrader().grade(material)


def test_a_masked_sensitive_span_never_reaches_the_grader(store, sample_template, settings) -> None:
    iid = store_transcript(store, sample_template, "strong")
    grader = RecordingGrader()
    result = grade_transcript(sample_template, store.turns(iid), dropped=False, grader=grader, settings=settings)
    [material] = grader.seen
    given = " ".join(a.text for a in material.answers)
    assert "single mother" in " ".join(t.text for t in store.turns(iid))  # it was said...
    for word in ("single", "mother", "childcare"):
        assert word not in given.lower()  # ...and never given to the grader
    assert MASK in given and result.data["masked_spans"] == 2
    reliability = next(f for f in result.data["factors"] if f["name"] == "Reliability and availability")
    assert all("mother" not in c["quote"] for c in reliability["citations"])


def test_answers_are_attached_to_the_factor_whose_question_they_answer(store, sample_template) -> None:
    iid = store_transcript(store, sample_template, "weak")
    material = prepare(store.turns(iid), sample_template)
    by_factor = {f.name: [a.turn for a in material.for_factor(f.name)] for f in sample_template.factors}
    # Consent ("Yeah.", turn 2) is no answer; follow-ups stay on their factor; questions sharing an opening
    # ("Tell me about a time you...") still go to the right factor.
    assert by_factor == {"Communication clarity": [4, 6], "Customer empathy": [8, 10], "Problem solving": [12, 14],
                         "Reliability and availability": [16, 18]}


def test_low_confidence_thresholds_come_from_settings(store, sample_template, settings) -> None:
    iid = store_transcript(store, sample_template, "dropped")
    strict = dataclasses.replace(settings, scoring=dataclasses.replace(settings.scoring, min_candidate_words=500))
    card = score_interview(store, iid, strict)
    assert card.status == "low_confidence" and card.overall is None
    assert card.data["low_confidence_reasons"] == ["only 104 words in the candidate's answers (500 needed)"]
    assert [f["score"] is not None for f in card.data["factors"]] == [True, True, False, False]  # evidence shown


def test_few_words_to_every_factor_is_a_low_score_not_low_confidence(store, sample_template, settings) -> None:
    # The weak transcript has 106 words: under a 500-word bar, but every factor was answered, so the
    # answers can be judged (poorly) and the card gets a number.
    iid = store_transcript(store, sample_template, "weak")
    strict = dataclasses.replace(settings, scoring=dataclasses.replace(settings.scoring, min_candidate_words=500))
    card = score_interview(store, iid, strict)
    assert card.status == "scored" and card.overall < 40 and card.data["low_confidence_reasons"] == []


def store_answers(store: SessionStore, template: InterviewTemplate, replies: list[str]) -> str:
    """A completed interview: every question of the template asked in order, answered by the next reply."""
    position_id = store.create_position(template).id
    candidate_id = store.upsert_candidate({"name": "Sam Lee", "phone": "+14155550101"})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel="web",
                                          expires_at=default_expiry())
    store.transition(interview.id, "in_progress")
    answers, clock = iter(replies), 0
    for factor in template.factors:
        for question in factor.questions:
            for role, text in (("agent", question), ("candidate", next(answers))):
                store.add_turn(interview.id, role=role, text=text, start_ms=clock, end_ms=clock + 2000)
                clock += 2500
    store.transition(interview.id, "completed")
    return interview.id


def test_i_dont_know_to_every_question_gets_a_low_overall(store, sample_template, settings) -> None:
    iid = store_answers(store, sample_template, ["I don't know.", "No.", "Not really.", "I'm not sure.",
                                                 "No idea, sorry.", "Nope.", "I don't know.", "Not really, no.",
                                                 "I'm not sure."])
    card = score_interview(store, iid, settings)
    assert card.status == "scored" and card.overall is not None and card.overall <= 15
    assert card.data["coverage"]["factors_answered"] == 4
    assert all(f["score"] is not None and f["score"] <= 15 for f in card.data["factors"])
    # Every answer's evaluation is kept with the scorecard: what each factor's score was built from.
    evaluations = card.data["answer_evaluations"]
    assert {e["factor"] for e in evaluations} == {f.name for f in sample_template.factors}  # "No." is no answer
    assert all(e["score"] is None or e["score"] <= 15 for e in evaluations)


def test_integrity_signals_are_advisory_and_timestamped(store, sample_template, settings) -> None:
    story = ("At my last job a customer was charged twice for one order, and I went through the statement with "
             "her line by line, found the duplicate and refunded it the same day, then I emailed her the receipt.")
    read_back = ("I would ask clarifying questions first, check the facts, lay out options in a logical order, "
                 "set expectations with the customer, and name clear reasons to escalate.")
    iid = store_answers(store, sample_template, [story, story, "I stay calm and let them vent first, then I say "
                                                 "I understand and fix it.", "I let them finish before I talk.",
                                                 read_back, "I ask what happened.", "When I can't fix it.",
                                                 "Any shift, evenings and weekends too.", "I set two alarms."])
    card = score_interview(store, iid, settings)
    kinds = {(s["kind"], s["turn"]) for s in card.data["integrity"]}
    turns = {e["turn"]: e for e in card.data["answer_evaluations"]}
    read_back_turn = next(t for t, e in turns.items() if "rubric_read_back" in e["flags"])
    assert ("rubric_read_back", read_back_turn) in kinds
    assert all(s["at_ms"] == turns[s["turn"]]["start_ms"] for s in card.data["integrity"])
    assert [e for e in DATA_VALIDATOR.iter_errors(camelize(card.data))] == []


# -- the language read -----------------------------------------------------------------------------
def test_language_read_from_turn_timings_and_words(scored) -> None:
    strong = scored["strong"][1].data["language"]
    answer_seconds = 36 + 38 + 40 + 30 + 1.5  # the five answers (consent "Yes, I agree." is not an answer)
    assert strong["speaking_rate_wpm"] == pytest.approx(strong["words"] / (answer_seconds / 60), abs=0.1)
    assert 120 < strong["speaking_rate_wpm"] < 170
    assert strong["mean_stt_confidence"] == pytest.approx((0.91 + 0.9 + 0.92 + 0.89 + 0.93) / 5, abs=0.001)
    assert strong["filler_count"] == 0 and strong["cefr"] in ("B2", "C1", "C2") and strong["cefr_confidence"] > 0.5
    weak = scored["weak"][1].data["language"]
    assert weak["filler_count"] == 2  # "Um", "uh"
    vague = scored["vague"][1].data["language"]
    assert vague["filler_rate_per_100_words"] > 3  # "you know", "I mean", "kind of", "like,", "hmm"...
    assert weak["mean_answer_words"] < strong["mean_answer_words"]
    levels = ("A1", "A2", "B1", "B2", "C1", "C2")
    assert levels.index(weak["cefr"]) < levels.index(strong["cefr"])


def test_cefr_is_left_out_for_a_non_english_template(store, sample_template, settings) -> None:
    korean = dataclasses.replace(sample_template, language="ko")
    iid = store_transcript(store, sample_template, "strong")
    result = grade_transcript(korean, store.turns(iid), dropped=False, grader=FeatureGrader(), settings=settings)
    assert result.data["language"]["cefr"] is None and "English only" in result.data["language"]["cefr_note"]
    assert result.data["language"]["speaking_rate_wpm"] is not None


# -- masking ---------------------------------------------------------------------------------------
MASKED = [
    ("I am 52 years old and I never miss a shift.", ("52", "years old")),
    ("At my age, 52, I can still work nights.", ("age", "52")),
    ("I was born in 1971 in Mexico.", ("1971", "Mexico")),
    ("I'm originally from Nigeria, so I speak two languages.", ("Nigeria",)),
    ("I cannot work Sundays because of church.", ("church",)),
    ("As a Muslim I pray during breaks.", ("Muslim", "pray")),
    ("My son is 4 and my wife works nights, so I can do days.", ("son", "4", "wife")),
    ("I'm a single mother of two.", ("single", "mother", "two")),
    ("I had surgery on my back last year and was on medication.", ("surgery", "medication")),
    ("As a woman in tech support I was often underestimated.", ("woman",)),
    ("I have ADHD, which helps me multitask.", ("ADHD",)),
    ("I'm in my forties.", ("forties",)),
]


@pytest.mark.parametrize(("text", "hidden"), MASKED)
def test_sensitive_spans_are_masked(text: str, hidden: tuple[str, ...]) -> None:
    masked = mask_sensitive(text)
    assert masked.spans >= 1 and MASK in masked.text
    for word in hidden:
        assert word.lower() not in masked.text.lower(), masked.text


@pytest.mark.parametrize("text", [
    "I'm 10 minutes early every day and I have never missed a shift in two years.",
    "First I would check the tracking number, then I'd open a claim with the carrier.",
    "I manage my time well and I answered 50 calls a day.",
    "I told the customer I understood why she was upset and apologized.",
])
def test_job_talk_is_left_alone(text: str) -> None:
    assert mask_sensitive(text).text == text and mask_sensitive(text).spans == 0


def test_mask_free_fragments_are_verbatim_text_of_the_original() -> None:
    original = "I can work weekends. As a single mother I plan my childcare ahead, so I am always on time."
    masked = mask_sensitive(original).text
    fragment = unmasked_fragment(masked, original)
    assert fragment and fragment in original and "mother" not in fragment and MASK not in fragment


def test_the_cefr_estimate_does_not_depend_on_punctuation(store, sample_template, settings) -> None:
    # Speech-to-text punctuates as it pleases: the same words, unpunctuated and lower-case, read the same.
    iid = store_transcript(store, sample_template, "strong")
    turns = store.turns(iid)
    bare = [dataclasses.replace(t, text=re.sub(r"[.,;:!?]", "", t.text).lower()) if t.role == "candidate" else t
            for t in turns]
    read = grade_transcript(sample_template, turns, dropped=False, grader=FeatureGrader(), settings=settings)
    read_bare = grade_transcript(sample_template, bare, dropped=False, grader=FeatureGrader(), settings=settings)
    keys = ("cefr", "cefr_basis", "speaking_rate_wpm", "lexical_diversity")
    assert [read.data["language"][k] for k in keys] == [read_bare.data["language"][k] for k in keys]
