"""Transparent rubric features of a candidate's answers on one factor, and the sentences worth citing.

Concreteness, vagueness and topic words come from ivr.answers (the same counts the interviewer uses to
decide on a follow-up); this module adds what a grade needs on top: leaning toward the factor's strong
or weak anchor, structure (several sentences, reasons given), and length.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from config.templates import EvaluationFactor
from ivr.answers import AnswerFeatures, analyze_answer, content_stems
from scoring.masking import unmasked_fragment, without_masks
from scoring.transcript import Answer

MAX_QUOTE_CHARS = 240
_SENTENCE_RE = re.compile(r"[^.!?]+[.!?]*")
# Giving reasons and consequences: "because", "so that", "that way". The interviewer's features count
# what was done; these show why, which is what the anchors call a clear explanation.
_REASONING_RE = re.compile(
    r"\b(?:because|since|so that|so the|so they|so she|so he|so i|which means|that way|in order to|"
    r"to make sure|to check|otherwise|therefore)\b", re.IGNORECASE)


@dataclass(frozen=True)
class FactorFeatures:
    answer: AnswerFeatures  # ivr.answers over all the factor's answers together
    answers: int
    strong_words: tuple[str, ...]  # stems shared only with the strong anchor
    weak_words: tuple[str, ...]  # stems shared only with the weak anchor
    sentences: int  # with at least four words
    reasoning_links: int
    mean_sentence_words: float


def _anchor_stems(factor: EvaluationFactor) -> tuple[frozenset[str], frozenset[str]]:
    """Stems distinctive of the strong anchor and of the weak one (not in the other two)."""
    strong, adequate, weak = (content_stems(t) for t in
                              (factor.anchors.strong, factor.anchors.adequate, factor.anchors.weak))
    return frozenset(strong - adequate - weak), frozenset(weak - adequate - strong)


def sentences(text: str) -> list[str]:
    """Sentences of `text` as verbatim substrings, whitespace-stripped."""
    return [s.strip() for s in _SENTENCE_RE.findall(text) if s.strip()]


def factor_features(factor: EvaluationFactor, answers: tuple[Answer, ...]) -> FactorFeatures:
    plain = " ".join(a.plain for a in answers)
    stems = content_stems(plain)
    strong, weak = _anchor_stems(factor)
    lengths = [len(s.split()) for a in answers for s in sentences(a.plain)]
    real = [n for n in lengths if n >= 4]
    return FactorFeatures(
        answer=analyze_answer(plain, factor),
        answers=len(answers),
        strong_words=tuple(sorted(stems & strong)),
        weak_words=tuple(sorted(stems & weak)),
        sentences=len(real),
        reasoning_links=len(_REASONING_RE.findall(plain)),
        mean_sentence_words=round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
    )


def _sentence_weight(text: str, factor: EvaluationFactor) -> float:
    features = analyze_answer(text, factor)
    return (features.concrete_markers + features.first_person_actions + 0.5 * features.topic_words
            - features.vague_markers)


def verbatim_quote(sentence: str, answer: Answer) -> str | None:
    """A verbatim, mask-free piece of the answer's stored text, at most MAX_QUOTE_CHARS long; `sentence`
    is a piece of the answer's masked text."""
    fragment = unmasked_fragment(sentence, answer.original)
    if fragment is None:
        return None
    if len(fragment) > MAX_QUOTE_CHARS:
        fragment = fragment[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0]
    return fragment


def best_citations(factor: EvaluationFactor, answers: tuple[Answer, ...], limit: int = 2) -> list[dict]:
    """The `limit` sentences carrying the most evidence for the factor ({turn, quote}, in turn order); if
    none carries any, the start of the longest answer, so a graded factor always shows what was said."""
    ranked: list[tuple[float, int, int, str]] = []
    for answer in answers:
        for index, sentence in enumerate(sentences(answer.text)):
            quote = verbatim_quote(sentence, answer)
            if quote is not None:
                ranked.append((_sentence_weight(without_masks(sentence), factor), answer.turn, index, quote))
    chosen = sorted((r for r in ranked if r[0] > 0), key=lambda r: (-r[0], r[1], r[2]))[:limit]
    if not chosen and ranked:
        longest = max(answers, key=lambda a: (len(a.plain), -a.turn))
        chosen = [r for r in ranked if r[1] == longest.turn][:1]
    return [{"turn": turn, "quote": quote} for _, turn, _, quote in sorted(chosen, key=lambda r: (r[1], r[2]))]
