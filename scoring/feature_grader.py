"""The rubric-feature grader: a 0-100 score per factor from counted, named features, no LLM. Pure: the
same answers and template always give the same scores, reasoning and citations.

Points (each part is shown in the reasoning):
- relevance, 30: words on the factor's topic (up to 6) and leaning toward the strong anchor's words
  rather than the weak anchor's;
- concreteness, 40: concrete details and first-person actions (up to 10), minus vague phrases;
- structure, 15: several real sentences, reasons given ("because", "so that"), sentences of a
  followable length;
- length, 15: from 8 words (less is too short to assess) up to 60; rambling past 300 loses 5.
"""
from __future__ import annotations

from config.templates import EvaluationFactor
from scoring.base import FactorResult, Grading
from scoring.features import FactorFeatures, best_citations, factor_features
from scoring.transcript import Answer, GradingInput

VERSION = "rubric-features-1"
TOPIC_WORDS_FOR_FULL = 6
EVIDENCE_FOR_FULL = 10
SHORT_WORDS = 8
FULL_LENGTH_WORDS = 60
RAMBLING_WORDS = 300


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _listed(words: tuple[str, ...], limit: int = 4) -> str:
    return ", ".join(words[:limit]) + (", ..." if len(words) > limit else "")


def _relevance(f: FactorFeatures) -> tuple[int, str]:
    lean = len(f.strong_words) - len(f.weak_words)
    points = round(20 * min(f.answer.topic_words, TOPIC_WORDS_FOR_FULL) / TOPIC_WORDS_FOR_FULL
                   + 10 * _clamp(0.5 + 0.25 * lean))
    parts = [f"{_n(f.answer.topic_words, 'word')} on the topic"]
    if f.strong_words:
        parts.append(f"strong-anchor words ({_listed(f.strong_words)})")
    if f.weak_words:
        parts.append(f"weak-anchor words ({_listed(f.weak_words)})")
    return points, "; ".join(parts)


def _concreteness(f: FactorFeatures) -> tuple[int, str]:
    evidence = f.answer.concrete_markers + f.answer.first_person_actions
    points = max(0, round(40 * min(evidence, EVIDENCE_FOR_FULL) / EVIDENCE_FOR_FULL
                          - 5 * min(f.answer.vague_markers, 3)))
    note = (f"{_n(f.answer.concrete_markers, 'concrete detail')}, "
            f"{_n(f.answer.first_person_actions, 'first-person action')}")
    if f.answer.vague_markers:
        note += f", {_n(f.answer.vague_markers, 'vague phrase')}"
    return points, note


def _structure(f: FactorFeatures) -> tuple[int, str]:
    parts, points = [], 0
    if f.sentences >= 2:
        points += 5
        parts.append(_n(f.sentences, "sentence"))
    else:
        parts.append("a single sentence" if f.sentences else "no full sentence")
    if f.reasoning_links:
        points += 5
        parts.append(f"{_n(f.reasoning_links, 'reason')} given")
    else:
        parts.append("no reasons given")
    if 6 <= f.mean_sentence_words <= 30:
        points += 5
    else:
        parts.append(f"sentences of {f.mean_sentence_words:g} words on average")
    return points, ", ".join(parts)


def _length(f: FactorFeatures) -> tuple[int, str]:
    words = f.answer.words
    if words < SHORT_WORDS:
        return 0, f"only {words} words"
    points = round(15 * min(words - SHORT_WORDS, FULL_LENGTH_WORDS - SHORT_WORDS) / (FULL_LENGTH_WORDS - SHORT_WORDS))
    if words > RAMBLING_WORDS:
        return max(0, points - 5), f"{words} words, long enough to ramble"
    return points, f"{words} words in {_n(f.answers, 'answer')}"


def grade_factor(factor: EvaluationFactor, answers: tuple[Answer, ...]) -> FactorResult:
    if not answers:
        return FactorResult(factor.name, None, "Not graded: the candidate gave no answer to this factor's "
                            "questions.", (), "feature")
    features = factor_features(factor, answers)
    parts = {"relevance": (_relevance(features), 30), "concreteness": (_concreteness(features), 40),
             "structure": (_structure(features), 15), "length": (_length(features), 15)}
    score = int(_clamp(sum(points for (points, _), _ in parts.values()), 0, 100))
    shown = "; ".join(f"{name} {points}/{top} ({note})" for name, ((points, note), top) in parts.items())
    reasoning = (f"{score}/100 from rubric features: {shown}. "
                 f"What was said: {'; '.join(features.answer.reasons)}.")
    return FactorResult(factor.name, score, reasoning, tuple(best_citations(factor, answers)), "feature",
                        tuple(a.turn for a in answers))


class FeatureGrader:
    name = "feature"

    def grade(self, material: GradingInput) -> Grading:
        return Grading(self.name, VERSION, tuple(grade_factor(factor, material.for_factor(factor.name))
                                                 for factor in material.template.factors))
