"""The language read: how the candidate speaks, from the (masked) transcript and its turn timings.

Speaking rate, filler words, lexical diversity, answer length and speech-to-text confidence are measured;
the CEFR level (A1-C2) is an estimate from the same transcript (clause length, lexical diversity, long
words, subordinate clauses, fillers), with a confidence that grows with the amount of speech and the STT
confidence. Nothing depends on punctuation or case: speech-to-text punctuates as it pleases, so clauses
are found from connecting words ("and", "because", "which"), not from full stops. Pronunciation is not
judged. Word lists are English: for other languages the measures are given and the CEFR estimate is left
out.
"""
from __future__ import annotations

import re
from typing import Any

from scoring.transcript import Answer, words_of

CEFR_LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")
MIN_WORDS_FOR_CEFR = 30
WORDS_FOR_FULL_CONFIDENCE = 200
MATTR_WINDOW = 40
_FILLER_WORDS = frozenset("um umm uh uhh uhm er erm ah hmm mm mhm".split())
_FILLER_PHRASES = re.compile(r"\b(?:you know|i mean|kind of|sort of|basically)\b|\blike,", re.IGNORECASE)
_SUBORDINATORS = re.compile(
    r"\b(?:because|although|though|while|whereas|unless|which|whose|whom|so that|in order to|if|when|"
    r"since|whether|until|however|therefore|after|before)\b", re.IGNORECASE)
# Words that start a new clause in speech; a clause is the run of words between them.
_CLAUSE_STARTS = frozenset("and but so because then which when if although though while since until after "
                           "before or whereas unless".split())


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def lexical_diversity(words: list[str]) -> float:
    """Moving-average type-token ratio (window MATTR_WINDOW): unlike a plain ratio it does not fall just
    because an answer is longer."""
    if not words:
        return 0.0
    if len(words) <= MATTR_WINDOW:
        return len(set(words)) / len(words)
    windows = [len(set(words[i:i + MATTR_WINDOW])) / MATTR_WINDOW for i in range(len(words) - MATTR_WINDOW + 1)]
    return sum(windows) / len(windows)


def _fillers(texts: list[str]) -> int:
    return sum(sum(w in _FILLER_WORDS for w in words_of(t)) + len(_FILLER_PHRASES.findall(t)) for t in texts)


def _clauses(texts: list[str]) -> int:
    """Clauses in the answers, counted from connecting words (at least one per answer)."""
    return sum(1 + sum(w in _CLAUSE_STARTS for w in words_of(t)[1:]) for t in texts)


def _cefr(words: list[str], texts: list[str], diversity: float, filler_rate: float,
          stt_confidence: float | None) -> dict[str, Any]:
    mean_clause = len(words) / max(1, _clauses(texts))
    long_share = sum(len(w) >= 7 and w.isalpha() for w in words) / len(words)
    # Subordinate clauses per ten words: a rate, so it needs no sentence boundaries.
    subordination = 10 * sum(len(_SUBORDINATORS.findall(" ".join(words_of(t)))) for t in texts) / len(words)
    composite = (0.3 * _clamp((mean_clause - 3) / 9) + 0.25 * _clamp((diversity - 0.55) / 0.35)
                 + 0.2 * _clamp((long_share - 0.06) / 0.2) + 0.25 * _clamp(subordination / 0.8)
                 - 0.1 * _clamp(filler_rate / 10))
    composite = _clamp(composite)
    band = 1 / len(CEFR_LEVELS)
    index = min(len(CEFR_LEVELS) - 1, int(composite / band))
    # Near a band edge the level could as well be the neighbour: less sure.
    margin = min(composite - index * band, (index + 1) * band - composite) / (band / 2)
    amount = min(1.0, len(words) / WORDS_FOR_FULL_CONFIDENCE)
    confidence = amount * (stt_confidence if stt_confidence is not None else 0.8) * (0.5 + 0.5 * _clamp(margin))
    return {"cefr": CEFR_LEVELS[index], "cefr_confidence": round(confidence, 2),
            "cefr_basis": {"mean_clause_words": round(mean_clause, 1), "long_word_share": round(long_share, 3),
                           "subordinate_clauses_per_10_words": round(subordination, 2),
                           "composite": round(composite, 3)}}


def language_read(answers: tuple[Answer, ...], language: str) -> dict[str, Any]:
    texts = [a.plain for a in answers]
    words = [w for t in texts for w in words_of(t)]
    speaking_ms = sum(max(0, a.end_ms - a.start_ms) for a in answers)
    confidences = [a.stt_confidence for a in answers if a.stt_confidence is not None]
    stt_confidence = round(sum(confidences) / len(confidences), 3) if confidences else None
    fillers = _fillers(texts)
    filler_rate = 100 * fillers / len(words) if words else 0.0
    diversity = lexical_diversity(words)
    read: dict[str, Any] = {
        "words": len(words),
        "answers": len(answers),
        "speaking_rate_wpm": round(len(words) / (speaking_ms / 60_000), 1) if speaking_ms >= 2000 and words else None,
        "filler_count": fillers,
        "filler_rate_per_100_words": round(filler_rate, 2),
        "lexical_diversity": round(diversity, 3),
        "mean_answer_words": round(len(words) / len(answers), 1) if answers else 0.0,
        "mean_stt_confidence": stt_confidence,
        "cefr": None, "cefr_confidence": None, "cefr_basis": None, "cefr_note": None,
    }
    if not language.lower().startswith("en"):
        read["cefr_note"] = f"the CEFR estimate is calibrated for English only, not {language}"
    elif len(words) < MIN_WORDS_FOR_CEFR:
        read["cefr_note"] = f"too little speech for a CEFR estimate ({len(words)} words, {MIN_WORDS_FOR_CEFR} needed)"
    else:
        read.update(_cefr(words, texts, diversity, filler_rate, stt_confidence))
    return read
