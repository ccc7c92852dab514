"""What the interviewer needs to understand a turn, in one place: the intent (with a callback's time in
the candidate's zone), the answer's evaluation against the factor, and the template's job fact that
answers a candidate's question. The models load once per process; a listener is per interview (its
zone and clock are the candidate's)."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from config.templates import EvaluationFactor
from understanding.embedder import load_embedder
from understanding.intents import DialogState, IntentClassifier, Understanding, load_intent_classifier

if TYPE_CHECKING:
    from understanding.evaluator import AnswerEvaluation

# A question and a fact closer than this (cosine) is the fact; measured on the sample template's facts:
# questions on a listed topic scored 0.34-0.7, unlisted topics (parking, insurance, dress code) <= 0.2.
FACT_MATCH = 0.3


def warm_up() -> None:
    """Load every model a turn needs (embedder, intent classifier, evaluator, date parser) now, not on the
    first candidate turn: the first turn of a cold process would otherwise wait seconds for them, and a
    caller takes that silence as their turn."""
    from understanding.evaluator import load_evaluator
    classifier = load_intent_classifier()
    classifier.classify("can you call me back tomorrow at ten", DialogState.CONSENT)
    load_evaluator()


def prepare_rubrics(factors: Sequence[EvaluationFactor]) -> None:
    """Embed a template's factors (description, anchors, questions: ~40 ms each) now, while the greeting
    plays: the first answer of a process would otherwise wait ~0.35 s for all of them."""
    from understanding.evaluator import load_evaluator
    evaluator = load_evaluator()
    for factor in factors:
        evaluator.prepare(factor)


def utc_now() -> datetime:
    return datetime.now(dt_timezone.utc)


class Listener:
    def __init__(self, *, timezone: str = "UTC", clock: Callable[[], datetime] = utc_now,
                 classifier: IntentClassifier | None = None) -> None:
        self.timezone = timezone
        self.clock = clock
        self._classifier = classifier

    def read(self, text: str, state: DialogState) -> Understanding:
        classifier = self._classifier or load_intent_classifier()
        return classifier.classify(text, state, timezone=self.timezone, now=self.clock())

    def evaluate(self, answer: str, question: str, factor: EvaluationFactor,
                 siblings: tuple[EvaluationFactor, ...] = ()) -> "AnswerEvaluation":
        """The answer judged against the factor (siblings: the template's other factors, so an answer to
        another factor's question is caught)."""
        from understanding.evaluator import load_evaluator  # scoring's model, loaded on first answer
        return load_evaluator().evaluate(answer, question, factor, siblings=siblings)

    def job_fact(self, question: str, facts: tuple[tuple[str, str], ...]) -> str | None:
        """The template's answer to the candidate's question, or None: the recruiter follows up."""
        if not facts:
            return None
        embedder = load_embedder()
        asked = embedder.embed_one(question)
        # The topic alone and the topic with its answer: either may be what the candidate's words echo.
        similarity = np.maximum(embedder.embed([topic for topic, _ in facts]) @ asked,
                                embedder.embed([f"{topic}. {answer}" for topic, answer in facts]) @ asked)
        best = int(np.argmax(similarity))
        return facts[best][1] if similarity[best] >= FACT_MATCH else None
