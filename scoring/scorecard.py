"""From a finished interview to a stored scorecard: mask, segment, grade, read the language, decide the
status, and save a new scorecard version (the store moves a completed interview to report_ready and emits
`interview.scored`).

Status: `low_confidence` when the candidate said too little to judge (too few factors responded to, or
too few words with some factor left unanswered), and then there is no overall score at all; weak but
sufficient answers, even "I don't know" to every question, get a low number instead; otherwise `partial`
for a dropped call (factors it never reached are null, not guessed) and `scored` for a completed one.
Overall = the weighted mean of the graded factors, weights renormalized over them.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from collections.abc import Mapping
from typing import Any

from config.settings import ScoringSettings, Settings
from config.templates import InterviewTemplate
from ivr.answers import SHORT_ANSWER_WORDS
from models.lifecycle import Status
from models.records import Scorecard, Turn, TurnEvaluation
from models.store import Conflict, SessionStore
from scoring.base import Grader, Grading, factor_key
from scoring.feature_grader import FeatureGrader
from scoring.feedback import compose_feedback
from scoring.integrity import integrity_signals
from scoring.language import language_read
from scoring.transcript import GradingInput, prepare, words_of
from understanding.answer_text import text_features

log = logging.getLogger("phonescreen.scoring")
SCORABLE = (Status.COMPLETED, Status.REPORT_READY, Status.PARTIAL)


@dataclass(frozen=True)
class ScoreResult:
    status: str  # scored | partial | low_confidence
    overall: float | None
    rubric_version: str
    data: dict[str, Any]


def _evaluator_grader() -> tuple[Grader, list[str]]:
    """The per-answer evaluator grader; the keyword feature grader only if its model cannot load."""
    try:
        from scoring.evaluator_grader import EvaluatorGrader
        return EvaluatorGrader(), []
    except (OSError, ImportError, RuntimeError) as exc:  # e.g. the embedding model package is missing
        log.warning("answer evaluator unavailable, using the feature grader: %s", exc)
        return FeatureGrader(), [f"the answer evaluator could not start ({exc}); graded by keyword features"]


def make_grader(settings: Settings) -> tuple[Grader, list[str]]:
    """The grader settings.scoring.grader asks for (auto: the LLM grader with an Ollama model, else the
    per-answer evaluator), and notes on why another had to be used."""
    choice = settings.scoring.grader
    if choice == "feature":
        return FeatureGrader(), []
    if choice == "evaluator" or (choice == "auto" and settings.llm.backend != "ollama"):
        return _evaluator_grader()
    from ivr.llm import make_chat_model  # the LLM libraries load only when an LLM grades
    from scoring.llm_grader import LlmGrader
    try:
        return LlmGrader(make_chat_model(settings.llm), settings.scoring), []
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. the embedded model file is missing
        log.warning("LLM grader unavailable, using the answer evaluator: %s", exc)
        grader, notes = _evaluator_grader()
        return grader, [f"the LLM grader could not start ({exc}); graded by the answer evaluator", *notes]


def _words(material: GradingInput, factor: str) -> int:
    return sum(len(words_of(a.plain)) for a in material.for_factor(factor))


def _without_cut_off_answer(material: GradingInput) -> tuple[GradingInput, list[str]]:
    """A dropped call often cuts the last answer after a few words: too little to grade, and not the
    candidate's fault, so that factor counts as not reached rather than as a weak answer."""
    last = material.answers[-1].factor if material.answers else None
    if last is None or _words(material, last) >= SHORT_ANSWER_WORDS:
        return material, []
    kept = tuple(a for a in material.answers if a.factor != last)
    return replace(material, answers=kept), [f"{last}: the call dropped during the answer; not graded"]


def _responded(material: GradingInput, factor: str) -> bool:
    """The candidate said something judgeable to the factor's questions: a real answer, or a clear "I
    don't know" (judged as a weak answer, not as missing)."""
    return any(len(words_of(a.plain)) >= SHORT_ANSWER_WORDS or text_features(a.plain).no_answer
               for a in material.for_factor(factor))


def _low_confidence_reasons(material: GradingInput, settings: ScoringSettings) -> tuple[list[str], dict[str, int]]:
    """Low confidence means too little was said to judge, not poor answers: a candidate who responded to
    every factor, however briefly, gets a (low) number."""
    factors = material.template.factors
    answered = sum(_responded(material, f.name) for f in factors)
    words = sum(_words(material, f.name) for f in factors)
    needed = math.ceil(settings.min_answered_share * len(factors))
    reasons = []
    if words < settings.min_candidate_words and answered < len(factors):
        reasons.append(f"only {words} words in the candidate's answers ({settings.min_candidate_words} needed)")
    if answered < needed:
        reasons.append(f"only {answered} of {len(factors)} factors answered ({needed} needed)")
    coverage = {"factors_total": len(factors), "factors_answered": answered, "candidate_words": words,
                "min_candidate_words": settings.min_candidate_words, "min_factors_answered": needed}
    return reasons, coverage


def _overall(template: InterviewTemplate, grading: Grading) -> float | None:
    weights = template.normalized_weights()
    graded = [(weights[r.name], r.score) for r in grading.factors if r.score is not None]
    total = math.fsum(w for w, _ in graded)
    return round(math.fsum(w * s for w, s in graded) / total, 1) if graded and total > 0 else None


def grade_transcript(template: InterviewTemplate, turns: list[Turn], *, dropped: bool, grader: Grader,
                     understood: Mapping[int, TurnEvaluation] | None = None,
                     settings: Settings, notes: list[str] | None = None) -> ScoreResult:
    """The scorecard for a transcript, not yet stored. Deterministic for the same turns, template and
    grader (the LLM grader runs at temperature 0 with a fixed seed)."""
    material = prepare(turns, template, understood)
    notes = list(notes or [])
    if dropped:
        material, cut = _without_cut_off_answer(material)
        notes += cut
    grading = grader.grade(material)
    reasons, coverage = _low_confidence_reasons(material, settings.scoring)
    language = language_read(material.answers, template.language)
    status = "low_confidence" if reasons else ("partial" if dropped else "scored")
    overall = None if reasons else _overall(template, grading)
    weights = template.normalized_weights()
    data = {
        "grader": {"name": grading.grader, "model": grading.model, "requested": settings.scoring.grader,
                   "temperature": 0.0, "seed": settings.scoring.seed},
        "rubric_version": template.fingerprint(),
        "template": {"title": template.title, "language": template.language},
        "factors": [{"key": factor_key(r.name), "name": r.name, "weight": round(weights[r.name], 4),
                     "score": r.score, "reasoning": r.reasoning, "citations": list(r.citations), "source": r.source,
                     "answered_turns": list(r.answered_turns)} for r in grading.factors],
        "answer_evaluations": list(grading.answers),
        "integrity": integrity_signals(material, grading.answers),
        "coverage": coverage,
        "language": language,
        "ai_feedback": compose_feedback(material, grading.factors, dropped=dropped, language=language),
        "masked_spans": material.masked_spans,
        "low_confidence_reasons": reasons,
        "notes": notes + list(grading.notes),
    }
    return ScoreResult(status, overall, template.fingerprint(), data)


def score_interview(store: SessionStore, interview_id: str, settings: Settings) -> Scorecard:
    """Grade a finished interview and store the result as its next scorecard version. Blocking (the
    LLM grader runs its own event loop): call it from a worker or the CLI, never on a running loop."""
    interview = store.get_interview(interview_id)
    if interview.status not in SCORABLE:
        raise Conflict(f"only a finished interview can be scored; this one is {interview.status}")
    position = store.get_position(interview.position_id, version=interview.position_version)
    grader, notes = make_grader(settings)
    result = grade_transcript(position.template, store.turns(interview_id),
                              understood=store.turn_evaluations(interview_id),
                              dropped=interview.status == Status.PARTIAL, grader=grader, settings=settings,
                              notes=notes)
    scorecard = store.save_scorecard(interview_id, status=result.status, overall=result.overall,
                                     rubric_version=position.rubric_version, data=result.data)
    log.info("scored interview %s: version %d, %s, overall %s, grader %s", interview_id, scorecard.version,
             scorecard.status, scorecard.overall, result.data["grader"]["name"], extra={"interview_id": interview_id})
    return scorecard
