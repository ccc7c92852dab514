"""The interview plan of a recruiter-led call, from the template's factors: which factors are covered
(answered), which one to ask next, and the suggestion the copilot shows for it (the question, another
wording, an example of a strong answer). Read from the stored turn evaluations, so the media worker that
runs the call and the server that shows the copilot agree whatever process they are."""
from __future__ import annotations

from collections.abc import Iterable

from config.templates import EvaluationFactor, InterviewTemplate
from models.records import TurnEvaluation
from scoring.transcript import spoken_question, words_of

OVERLAP_MATCH = 0.6  # share of a question's words a recruiter's rephrasing must say to count as asking it


def covered_factors(evaluations: Iterable[TurnEvaluation]) -> frozenset[str]:
    """Factors with at least one evaluated answer."""
    return frozenset(e.factor for e in evaluations if e.role == "candidate" and e.kind == "answer" and e.factor)


def next_factor(template: InterviewTemplate, covered: frozenset[str]) -> EvaluationFactor | None:
    return next((f for f in template.factors if f.name not in covered), None)


def match_question(text: str, template: InterviewTemplate) -> tuple[str, str] | None:
    """(factor, question) when the recruiter's words ask one of the template's questions: its opening
    words as written, or most of its words in any order (a recruiter rephrases)."""
    factor, question, asked = spoken_question(words_of(text), template)
    if asked and factor is not None and question is not None:
        return factor, question
    said = set(words_of(text))
    best: tuple[float, str, str] | None = None
    for f in template.factors:
        for q in f.questions:
            words = set(words_of(q))
            share = len(words & said) / len(words) if words else 0.0
            if share >= OVERLAP_MATCH and (best is None or share > best[0]):
                best = (share, f.name, q)
    return (best[1], best[2]) if best else None


def alternative_wording(factor: EvaluationFactor, question: str) -> str:
    """Another way to ask: the factor's next seed question, else an open prompt for a concrete example."""
    others = [q for q in factor.questions if q != question]
    if others:
        return others[0]
    return (f"Thinking about {factor.name.lower()}: can you walk me through one real situation, what you did, "
            "and how it turned out?")


def suggestion(factor: EvaluationFactor, asked: Iterable[str] = ()) -> dict:
    """What the copilot suggests for `factor`: the first of its questions not asked yet."""
    asked = set(asked)
    question = next((q for q in factor.questions if q not in asked), factor.questions[0])
    return {"factor": factor.name, "question": question, "alternative": alternative_wording(factor, question),
            "strong_answer": factor.anchors.strong, "description": factor.description}
