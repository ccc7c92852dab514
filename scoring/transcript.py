"""What a grader gets: the candidate's answers, masked, each attached to the evaluation factor whose
question it answers.

The interviewer asks one main question per factor, in template order, and its follow-ups stay on that
factor (ivr.interviewer). So an answer belongs to the factor of the last template question spoken
before it; anything before the first question (consent) or after the closing is not an answer to a
factor. Listening noises, yeses and repeat requests are not answers either (ivr.answers.detect_intent).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from config.templates import InterviewTemplate
from ivr.answers import Intent, detect_intent
from models.records import Turn, TurnEvaluation
from scoring.masking import mask_sensitive, without_masks

# A question is recognized by its first words, so an agent turn cut short by a barge-in still counts.
_QUESTION_WORDS = 6
ASKING_ROLES = ("agent", "recruiter")  # whoever asks the questions: the AI, or a recruiter on a live call
_WORD_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Answer:
    turn: int  # the turn number in the transcript
    text: str  # masked: what graders read
    original: str  # as stored; citations must quote it verbatim
    factor: str | None  # the factor's name, None outside the questions (consent, closing)
    start_ms: int
    end_ms: int
    stt_confidence: float | None
    masked_spans: int
    question: str | None = None  # the template question it answers (the last one asked before it)

    @property
    def plain(self) -> str:
        """The masked text without the markers, for counting words and features."""
        return without_masks(self.text)


@dataclass(frozen=True)
class GradingInput:
    template: InterviewTemplate
    answers: tuple[Answer, ...]  # every candidate answer, in turn order

    def for_factor(self, name: str) -> tuple[Answer, ...]:
        return tuple(a for a in self.answers if a.factor == name)

    @property
    def masked_spans(self) -> int:
        return sum(a.masked_spans for a in self.answers)


def words_of(text: str) -> list[str]:
    """Lower-case words and numbers, apostrophes dropped ("don't" = "dont")."""
    return _WORD_RE.findall(text.lower().replace("’", "").replace("'", ""))


def _prefix_found(words: list[str], question: list[str]) -> int:
    """How many of the question's first words appear, in order and contiguously, in `words`."""
    best = 0
    for i, word in enumerate(words):
        if word == question[0]:
            n = 0
            while n < len(question) and i + n < len(words) and words[i + n] == question[n]:
                n += 1
            best = max(best, n)
    return best


def spoken_question(words: list[str], template: InterviewTemplate) -> tuple[str | None, str | None, bool]:
    """(factor, question, True) when the agent turn asks one of the template's questions (or reads the
    closing: factor and question None). Questions may share an opening ("Tell me about a time you..."),
    so the longest match wins, and a match needs the question's first words (the whole question if
    shorter)."""
    candidates: list[tuple[list[str], str | None, str | None]] = [
        (words_of(q), f.name, q) for f in template.factors for q in f.questions]
    candidates.append((words_of(template.closing), None, None))
    best: tuple[int, str | None, str | None] | None = None
    for question, factor, text in candidates:
        found = _prefix_found(words, question) if question else 0
        if found >= min(_QUESTION_WORDS, len(question)) and (best is None or found > best[0]):
            best = (found, factor, text)
    return (best[1], best[2], True) if best else (None, None, False)


def _spoken_factor(words: list[str], template: InterviewTemplate) -> tuple[str | None, bool]:
    factor, _, asked = spoken_question(words, template)
    return factor, asked


def factor_in_progress(turns: list[Turn], template: InterviewTemplate) -> str | None:
    """The factor of the last template question the agent has asked (None before the first or after the
    closing): what a live call is on, read from its stored turns whatever process runs it."""
    for turn in reversed(turns):
        if turn.role in ASKING_ROLES:
            factor, asked = _spoken_factor(words_of(turn.text), template)
            if asked:
                return factor
    return None


def prepare(turns: list[Turn], template: InterviewTemplate,
            understood: Mapping[int, TurnEvaluation] | None = None) -> GradingInput:
    """The candidate's answers, each with its factor and question. Where the interviewer stored what it
    understood of a turn (understood: turn number -> TurnEvaluation), that decides: an answer is what
    the understanding component called an answer, to the factor and question the interviewer had asked,
    whatever the stored wording of the question (cut short by a barge-in, or rephrased). Older
    interviews without it fall back to matching the template's questions in the agent turns."""
    current: str | None = None
    question: str | None = None
    answers: list[Answer] = []
    for turn in turns:
        known = (understood or {}).get(turn.turn_number)
        if turn.role == "candidate" and known is not None:
            if known.kind == "answer" and known.factor and turn.text.strip():
                masked = mask_sensitive(turn.text)
                answers.append(Answer(turn.turn_number, masked.text, turn.text, known.factor, turn.start_ms,
                                      turn.end_ms, turn.stt_confidence, masked.spans, known.question))
            continue
        if turn.role in ASKING_ROLES:
            factor, asked_question, asked = spoken_question(words_of(turn.text), template)
            if asked:
                current, question = factor, asked_question
            continue
        if not turn.text.strip() or detect_intent(turn.text) is not Intent.ANSWER:
            continue
        masked = mask_sensitive(turn.text)
        answers.append(Answer(turn.turn_number, masked.text, turn.text, current, turn.start_ms, turn.end_ms,
                              turn.stt_confidence, masked.spans, question))
    return GradingInput(template, tuple(answers))
