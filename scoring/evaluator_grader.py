"""The default grader: each factor's score comes from the per-answer evaluations
(understanding.evaluator), calibrated against human ratings. Pure for the same answers, template and
weights file.

A factor's score combines its answers (the main answer and any follow-ups): half the best answer, half
the word-weighted mean, so a follow-up that adds the missing detail lifts the factor without one long
answer drowning a short one. A flag that caps an answer (hostile, contradiction, read-back...) caps the
factor too: a good follow-up does not undo hostility. A factor whose answers were all too short to
judge ("No.") gets a low score, not none: the candidate was asked and did not answer.
"""
from __future__ import annotations

from dataclasses import dataclass

from config.templates import EvaluationFactor
from scoring.base import FactorResult, Grading
from scoring.features import best_citations
from scoring.transcript import Answer, GradingInput, words_of
from understanding.evaluator import CAPS, AnswerEvaluation, AnswerEvaluator, load_evaluator

NAME = "evaluator"
ONLY_SHORT_SCORE = 5  # every answer on the factor too short to judge: answered, but nothing said
FACTOR_CAPS = ("hostile", "contradiction")


@dataclass(frozen=True)
class EvaluatedAnswer:
    answer: Answer
    evaluation: AnswerEvaluation


def evaluate_answers(evaluator: AnswerEvaluator, factor: EvaluationFactor, answers: tuple[Answer, ...],
                     siblings: tuple[EvaluationFactor, ...]) -> list[EvaluatedAnswer]:
    return [EvaluatedAnswer(a, evaluator.evaluate(a.plain, a.question or factor.questions[0], factor,
                                                  siblings=siblings)) for a in answers]


def answer_records(evaluated: dict[str, list[EvaluatedAnswer]]) -> tuple[dict, ...]:
    """The per-answer evaluations as the scorecard stores them, in turn order."""
    rows = [{"turn": e.answer.turn, "start_ms": e.answer.start_ms, **e.evaluation.to_dict()}
            for answers in evaluated.values() for e in answers]
    return tuple(sorted(rows, key=lambda r: r["turn"]))


def combine(evaluated: list[EvaluatedAnswer]) -> int | None:
    """The factor's score from its answers' evaluations (None: no answers at all)."""
    if not evaluated:
        return None
    judged = [(e.evaluation.score, max(len(words_of(e.answer.plain)), 1)) for e in evaluated
              if e.evaluation.score is not None]
    if not judged:
        return ONLY_SHORT_SCORE
    best = max(score for score, _ in judged)
    mean = sum(score * words for score, words in judged) / sum(words for _, words in judged)
    score = 0.5 * best + 0.5 * mean
    caps = [CAPS[flag][0] for e in evaluated for flag in e.evaluation.flags if flag in FACTOR_CAPS]
    return int(round(min([score, *caps])))


def _reasoning(score: int, evaluated: list[EvaluatedAnswer]) -> str:
    parts = [f"Turn {e.answer.turn}: {e.evaluation.reasoning}" for e in evaluated]
    return f"{score}/100 from {len(evaluated)} evaluated answer{'s' * (len(evaluated) != 1)}. " + " ".join(parts)


def grade_factor(evaluator: AnswerEvaluator, factor: EvaluationFactor, answers: tuple[Answer, ...],
                 siblings: tuple[EvaluationFactor, ...]) -> tuple[FactorResult, list[EvaluatedAnswer]]:
    if not answers:
        return FactorResult(factor.name, None, "Not graded: the candidate gave no answer to this factor's "
                            "questions.", (), NAME), []
    evaluated = evaluate_answers(evaluator, factor, answers, siblings)
    score = combine(evaluated)
    assert score is not None
    return FactorResult(factor.name, score, _reasoning(score, evaluated), tuple(best_citations(factor, answers)),
                        NAME, tuple(a.turn for a in answers)), evaluated


class EvaluatorGrader:
    name = NAME

    def __init__(self, evaluator: AnswerEvaluator | None = None) -> None:
        self.evaluator = evaluator or load_evaluator()

    def evaluations(self, material: GradingInput) -> dict[str, list[EvaluatedAnswer]]:
        """Every answer's evaluation, by factor (for the LLM grader's prompt and for audits)."""
        siblings = material.template.factors
        return {f.name: evaluate_answers(self.evaluator, f, material.for_factor(f.name), siblings)
                for f in material.template.factors}

    def grade(self, material: GradingInput) -> Grading:
        siblings = material.template.factors
        graded = [grade_factor(self.evaluator, f, material.for_factor(f.name), siblings) for f in siblings]
        return Grading(self.name, self.evaluator.version, tuple(result for result, _ in graded),
                       answers=answer_records({f.name: ev for f, (_, ev) in zip(siblings, graded)}))
