"""What a candidate's turn asks for, in the state where it is said: consent, a repeat, to stop, a
callback (with its time), a person, a question about the job, a listening noise, or an answer.

A small classifier per state over the turn's sentence embedding (all-MiniLM-L6-v2) and a few lexical
cues that embeddings blur (yes vs. no, a named time), trained at load time on labelled exemplars
(understanding/data/intent_examples.json, never the test set) by multinomial logistic regression. Rules
only where they are clearer than a model: a bare keypad-like "yes" is fast-pathed, and in the consent
state a refusal cue beats a yes (consent must be explicit)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from importlib import resources

import numpy as np

from understanding.callback_time import resolve_callback_time
from understanding.embedder import Embedder, load_embedder
from understanding.process_wide import process_wide


class Intent(str, Enum):
    CONSENT_YES = "consent_yes"
    CONSENT_NO = "consent_no"
    REPEAT = "repeat"
    STOP = "stop"
    CALLBACK = "callback"
    HUMAN = "human"
    QUESTION = "question"
    BACKCHANNEL = "backchannel"
    ANSWER = "answer"
    UNCLEAR = "unclear"  # only from a rule: a consent-state turn that neither clearly agrees nor asks


class DialogState(str, Enum):
    CONSENT = "consent"  # the recording/AI disclosure was read and the consent question asked
    QUESTION = "question"  # an interview question was asked


ALLOWED: dict[DialogState, tuple[Intent, ...]] = {
    DialogState.CONSENT: (Intent.CONSENT_YES, Intent.CONSENT_NO, Intent.REPEAT, Intent.STOP, Intent.CALLBACK,
                          Intent.HUMAN, Intent.QUESTION),
    DialogState.QUESTION: (Intent.ANSWER, Intent.BACKCHANNEL, Intent.REPEAT, Intent.STOP, Intent.CALLBACK,
                           Intent.HUMAN, Intent.QUESTION),
}


@dataclass(frozen=True)
class Understanding:
    intent: Intent
    confidence: float  # the classifier's probability of that intent (1.0 for a rule)
    callback_at: datetime | None = None  # callback: the requested moment in the candidate's zone
    reason: str = ""  # why, in words a hiring team can read
    scores: dict[str, float] = field(default_factory=dict)  # every allowed intent's probability

    def slots(self) -> dict[str, str | None]:
        return {"callback_at": self.callback_at.isoformat() if self.callback_at else None} \
            if self.intent is Intent.CALLBACK else {}


# Lexical cues, as speech-to-text prints them. Idioms that contain "no" but agree are removed first.
_AGREEING_IDIOMS = re.compile(
    r"\b(?:no (?:that'?s|it'?s) (?:no problem|fine|ok|okay|alright)|no problem|no problems|not a problem|"
    r"no worries|no issue|no issues|don'?t mind|do not mind|why not|yeah no|not at all)\b")
_REFUSAL = re.compile(
    r"\b(?:no|nope|nah|not|don'?t|do not|won'?t|rather not|refuse|never|can'?t|cannot|decline|uncomfortable)\b")
_AGREEMENT = re.compile(
    r"\b(?:yes|yeah|yep|yup|ya|sure|ok|okay|fine|agree|agreed|consent|go ahead|alright|all right|absolutely|"
    r"of course|happy to|sounds good|let'?s|ready|certainly|definitely|okie|dokie|okey|k|mm ?hmm|mhm+|uh ?huh|"
    r"one|1|that works|works for me|i do|proceed|continue|carry on|please do|good to go|no problem)\b")
_QUESTION_START = re.compile(r"^(?:um |uh |so |and |but )*(?:is|are|do|does|what|when|where|how|who|which|will|"
                             r"would|can|could|am)\b")
# An intent that needs words of its own: without them the classifier's next choice stands. A short answer
# ("not sure", "explain it") is close to a listening noise or a repeat request in embedding space.
_CALL_WORDS = re.compile(r"\b(?:call|calls|calling|ring|talk|reach|try me|continue|do this|finish|back|busy|"
                         r"driving|at work|not now|right now|bad time|good time|later|another time|another day|"
                         r"reschedule|can'?t talk|in a meeting)\b")
_REQUIRED_WORDS: dict[Intent, re.Pattern[str]] = {
    Intent.REPEAT: re.compile(r"\b(?:again|repeat|say that|said|what was|what'?s the|what is the|catch|pardon|"
                              r"sorry|come again|cut out|cutting out|broke up|breaking up|hear|heard|what|huh|"
                              r"didn'?t get|missed|one more time|last part|slower|louder|re ?peat|peat)\b"),
    Intent.STOP: re.compile(r"\b(?:stop|quit|end (?:this|the|it)|hang|hanging|interested|off|remove|pass|withdraw|bye|goodbye|enough|"
                            r"done|found|no longer|cancel|leave|forget|don'?t want|do not want|not for me|"
                            r"changed my mind|not doing|waste|anymore|any more|got a job|i'?m out|withdraw\w*|don'?t call|"
                            r"gonna go|no need|not apply)\b"),
    Intent.BACKCHANNEL: re.compile(
        r"^(?:(?:ok|okay|okey|mm|mhm|mmhm|hmm|hm|uh|um|huh|ah|oh|yeah|yes|yep|yup|right|alright|all|sure|got|it|"
        r"i|see|gotcha|cool|understood|makes|sense|uh huh|mm hmm|let|me|think|give|a|second|sec|moment|"
        r"hold|on|just|well|so|and|good|great|fine|thanks|thank|you|k|alrighty|then|mhmm|question|to|think|"
        r"thinking|wait|interesting|perfect|nice)\s*)+$"),
}
_GATED = (Intent.REPEAT, Intent.BACKCHANNEL)
_HUMAN_WORDS = re.compile(r"\b(?:person|people|human|real|reel|somebody|someone|recruiter|manager|operator|agent|"
                          r"representative|rep|live|actual|hiring team|supervisor|staff)\b")
_WORD = re.compile(r"[a-z0-9']+")
_FAST_YES = frozenset({"yes", "yeah", "yep", "yes please", "yes i agree", "i agree", "sure", "yes sure"})
_FAST_NO = frozenset({"no", "nope", "no thanks", "no thank you", "i don't agree", "i do not agree"})

CUE_WEIGHT = 0.5  # cues against a unit-length 384-d embedding: tuned by cross-validation on the exemplars


def _normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().replace("’", "'")))


def cues(text: str, has_time: bool) -> np.ndarray:
    words = _normalise(text)
    plain = _AGREEING_IDIOMS.sub(" ", words)
    count = len(words.split())
    return np.array([
        1.0 if _REFUSAL.search(plain) else 0.0,
        1.0 if _AGREEMENT.search(words) or _AGREEING_IDIOMS.search(words) else 0.0,
        1.0 if has_time and _CALL_WORDS.search(words) else 0.0,
        1.0 if "?" in text or _QUESTION_START.match(words) else 0.0,
        min(count, 40) / 40.0,
        1.0 if count <= 3 else 0.0,
        *(1.0 if _REQUIRED_WORDS[intent].search(words) else 0.0 for intent in (Intent.REPEAT, Intent.STOP)),
        1.0 if _HUMAN_WORDS.search(words) else 0.0,
    ], dtype=np.float32) * CUE_WEIGHT


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class _StateModel:
    """Multinomial logistic regression, fitted by full-batch gradient descent (deterministic, < 1 s)."""

    def __init__(self, intents: tuple[Intent, ...], features: np.ndarray, labels: np.ndarray,
                 l2: float = 1e-3, steps: int = 600, rate: float = 2.0) -> None:
        self.intents = intents
        n, d = features.shape
        self.weights = np.zeros((d, len(intents)), np.float32)
        self.bias = np.zeros(len(intents), np.float32)
        targets = np.eye(len(intents), dtype=np.float32)[labels]
        for _ in range(steps):
            probs = _softmax(features @ self.weights + self.bias)
            error = (probs - targets) / n
            self.weights -= rate * (features.T @ error + l2 * self.weights)
            self.bias -= rate * error.sum(axis=0)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return _softmax(features @ self.weights + self.bias)


def load_exemplars() -> list[dict]:
    data = resources.files("understanding").joinpath("data/intent_examples.json").read_text("utf-8")
    return json.loads(data)["items"]


class IntentClassifier:
    def __init__(self, embedder: Embedder | None = None, exemplars: list[dict] | None = None) -> None:
        self._embedder = embedder or load_embedder()
        self._models: dict[DialogState, _StateModel] = {}
        items = exemplars if exemplars is not None else load_exemplars()
        for state, intents in ALLOWED.items():
            chosen = [item for item in items if item["state"] == state.value and Intent(item["intent"]) in intents]
            features = self._features([item["text"] for item in chosen],
                                      [item["intent"] == Intent.CALLBACK.value and item.get("callback_at") is not None
                                       for item in chosen])
            labels = np.array([intents.index(Intent(item["intent"])) for item in chosen])
            self._models[state] = _StateModel(intents, features, labels)

    def _features(self, texts: list[str], has_time: list[bool]) -> np.ndarray:
        vectors = self._embedder.embed(texts)
        return np.hstack([vectors, np.stack([cues(text, timed) for text, timed in zip(texts, has_time)])])

    def classify(self, text: str, state: DialogState, *, timezone: str = "UTC",
                 now: datetime | None = None) -> Understanding:
        now = now or datetime.now().astimezone()
        words = _normalise(text)
        if state is DialogState.CONSENT and words in _FAST_YES:
            return Understanding(Intent.CONSENT_YES, 1.0, reason="a plain yes")
        if state is DialogState.CONSENT and words in _FAST_NO:
            return Understanding(Intent.CONSENT_NO, 1.0, reason="a plain no")
        when = resolve_callback_time(text, timezone, now)
        model = self._models[state]
        probs = model.probabilities(self._features([text], [when is not None]))[0]
        scores = {intent.value: round(float(p), 3) for intent, p in zip(model.intents, probs)}
        intent, confidence, reason = Intent.ANSWER, 0.0, ""
        for index in np.argsort(-probs):
            intent, confidence = model.intents[index], float(probs[index])
            required = _REQUIRED_WORDS.get(intent) if intent in _GATED else None
            if required is None or required.search(words):
                break
        reason = f"closest to {intent.value} ({confidence:.2f})"
        if intent is Intent.CONSENT_YES and not (_AGREEMENT.search(words) or _AGREEING_IDIOMS.search(words)):
            # Consent must be explicit: no word of agreement, no consent ("hmm well").
            return Understanding(Intent.UNCLEAR, confidence, None, "no word of agreement", scores)
        if state is DialogState.CONSENT and intent is Intent.CONSENT_YES and cues(text, False)[0] > 0 \
                and scores[Intent.CONSENT_NO.value] >= 0.15:
            # Consent must be explicit: a yes with a refusal in it ("yes... actually no") is not consent.
            intent, confidence = Intent.CONSENT_NO, scores[Intent.CONSENT_NO.value]
            reason = "a refusal in the same breath as a yes"
        return Understanding(intent, confidence, when if intent is Intent.CALLBACK else None, reason, scores)


load_intent_classifier = process_wide(IntentClassifier)  # loaded once per process, on first use
