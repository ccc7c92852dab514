"""Integrity signals: advisory, timestamped notes for the hiring team that never change a score.

From what the transcript shows today:
- `rubric_read_back`: an answer that repeats the factor's rubric wording (from its evaluation), i.e.
  copied from a known text rather than told from experience;
- `same_answer_repeated`: the candidate gave nearly the same answer to different questions (word
  overlap), which scripted or read answers tend to do.
Signals that need audio (a second voice on the channel, reading cadence) are not produced here.
"""
from __future__ import annotations

from scoring.transcript import Answer, GradingInput, words_of

REPEAT_OVERLAP = 0.8  # share of word pairs two answers have in common to count as the same answer
MIN_REPEAT_WORDS = 12


def _pairs(text: str) -> set[tuple[str, str]]:
    words = words_of(text)
    return set(zip(words, words[1:]))


def _repeats(answers: tuple[Answer, ...]) -> list[dict]:
    out, seen = [], []
    for answer in answers:
        pairs = _pairs(answer.plain)
        if len(pairs) >= MIN_REPEAT_WORDS:
            for earlier, earlier_pairs in seen:
                if earlier.factor != answer.factor and \
                        len(pairs & earlier_pairs) / min(len(pairs), len(earlier_pairs)) >= REPEAT_OVERLAP:
                    out.append({"kind": "same_answer_repeated", "turn": answer.turn, "at_ms": answer.start_ms,
                                "detail": f"nearly the same words as turn {earlier.turn}, given to another question"})
                    break
            seen.append((answer, pairs))
    return out


def integrity_signals(material: GradingInput, evaluations: tuple[dict, ...]) -> list[dict]:
    """Advisory signals ({kind, turn, at_ms, detail}), in turn order."""
    signals = [{"kind": "rubric_read_back", "turn": e["turn"], "at_ms": e.get("start_ms", 0),
                "detail": "repeats the scoring rubric's wording"}
               for e in evaluations if "rubric_read_back" in e.get("flags", ())]
    signals += _repeats(material.answers)
    return sorted(signals, key=lambda s: (s["turn"], s["kind"]))
