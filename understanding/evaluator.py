"""Per-answer evaluation: one candidate answer judged against the factor's question, description and
weak / adequate / strong anchors, with a 0-100 score, flags and a plain-language reason.

How: the answer is embedded once (all-MiniLM-L6-v2, offline; rubric texts and prototypes are cached),
giving its similarity to the question, the description, each anchor and each separate point of the weak
and strong anchors, the other factors' questions and prototypes of gaming answers, the human scores of the
most similar rated answers (the "neighbours" feature, from the tune split) and a linear read-out of the
vector fitted to those scores (the "probe"). Lexical counts (understanding.answer_text) add what embeddings
cannot see: polarity (hostile acts, a claim the answer undoes), form (verb salads, keyword stuffing, read-back, musing)
and evidence (a situation, actions, reasons, results, numbers). A ridge model fitted on the `tune` split of
the rated data (bench/calibrate_evaluator.py -> understanding/data/evaluator_weights.json) turns them into a score;
flags then cap it, because a gamed answer must score low whatever else it contains. The reasoning
names the features that moved the score most and any cap.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from config.templates import EvaluationFactor
from understanding import evaluator_prototypes as prototypes
from understanding.answer_text import (TextFeatures, claim_turn, log_words, ngrams, read_back_share,
                                      text_features)
from understanding.embedder import Embedder, load_embedder
from understanding.process_wide import process_wide

WEIGHTS_PATH = Path(__file__).parent / "data" / "evaluator_weights.json"
# The tune split's answers as unit vectors (float16) with their human scores and factors, written by
# bench/calibrate_evaluator.py: the "neighbours" feature is the similarity-weighted mean human score of
# the most similar rated answers.
NEIGHBOURS_PATH = Path(__file__).parent / "data" / "evaluator_neighbours.npz"
NEIGHBOURS_K = 7
NEIGHBOURS_TEMPERATURE = 0.05
# The "probe" feature: a ridge read-out of the answer's vector fitted to the human scores of the tune
# split (bench/calibrate_evaluator.py; stored in the weights file). Under cross-validation on the tune
# split it ranks answers far better alone (Spearman ~0.70) than the neighbours feature alone (~0.46).
PROBE_ALPHA = 0.3
MIN_SPOKEN_WORDS = 3  # fewer words (fillers aside): too little was said to judge

# Feature name -> how the reasoning says it raised / lowered the score (after "it"); "" = not worth saying
# (a missing fault is no merit, so most penalty features have no "raised" phrase).
FEATURES: dict[str, tuple[str, str]] = {
    "sim_question": ("addresses the question asked", "does not really address the question asked"),
    "sim_description": ("stays on what the factor is about", "strays from what the factor is about"),
    "sim_strong": ("resembles the strong anchor", "is unlike the strong anchor"),
    "sim_adequate": ("resembles the adequate anchor", "is unlike the adequate anchor"),
    "sim_weak": ("", "resembles the weak anchor"),
    "margin_other": ("fits this factor better than the others", "fits another factor's question better"),
    "margin_question": ("answers this question rather than another one", "answers a different question"),
    "lean": ("leans toward the strong anchor rather than the weak one", "leans toward the weak anchor"),
    # {strong} / {weak}: the anchor point the answer is closest to, quoted (a citation of the rubric).
    "part_strong": ("matches the strong anchor's \"{strong}\"", ""),
    "part_weak": ("", "matches the weak anchor's \"{weak}\""),
    "part_lean": ("is closer to the strong anchor's \"{strong}\" than to the weak anchor",
                  "is closer to the weak anchor's \"{weak}\" than to the strong anchor"),
    "proto_hostile": ("", "sounds dismissive of the customer"),
    "proto_buzz": ("", "sounds like self-promotion slogans"),
    "proto_offtopic": ("", "sounds like small talk"),
    "proto_noanswer": ("", "sounds like a non-answer"),
    "log_words": ("says enough to show the approach", "says very little"),
    "talk_without_evidence": ("", "talks without saying what they did or would do"),
    "evidence": ("packs situation, actions, reasons and results into what it says", "has little substance"),
    "situation": ("describes a real situation", "describes no real situation"),
    "actions": ("says concretely what they did or would say", "names few concrete actions"),
    "results": ("says how it turned out", "says nothing of the outcome"),
    "reasons": ("explains why", "gives no reasons"),
    "numbers": ("gives specifics such as times or amounts", "gives no specifics such as times or amounts"),
    "hedges": ("", "hedges a lot"),
    "vague": ("", "relies on vague phrases"),
    "filler_ratio": ("", "is hard to follow for fillers"),
    "variety": ("uses varied wording", "uses repetitive wording"),
    "top_repeat": ("", "repeats the same keyword"),
    "buzzwords": ("", "relies on buzzwords"),
    "hostile": ("", "describes hostile or dishonest behavior"),
    "salad": ("", "strings verbs without saying what was done"),
    "read_back": ("", "repeats the rubric's wording"),
    "contradiction": ("", "contradicts its own claim"),
    "admissions": ("", "admits lapses such as lateness or skipped work"),
    "neighbours": ("resembles answers screeners rated highly", "resembles answers screeners rated low"),
    "probe": ("says what screeners' high ratings reward", "says what screeners' low ratings punish"),
    "concession": ("", "undoes its own claim with what follows"),
    "topic_gap": ("", "sounds more like small talk than an answer to the question"),
    "musing": ("", "talks about the topic in general instead of answering"),
}
FEATURE_NAMES = tuple(FEATURES)
# The direction each feature may move the score: calibration drops a feature whose fitted weight comes
# out the other way (a small monotone model), so every reason the evaluator gives reads the right way.
RAISES = frozenset(n for n, (up, _) in FEATURES.items() if up)

# Flag -> the highest score an answer with it can get, and how the reasoning says it.
CAPS: dict[str, tuple[int, str]] = {
    "no_answer": (10, "the candidate did not give an answer"),
    "hostile": (25, "it describes hostile, dismissive or dishonest treatment of a customer"),
    "rubric_read_back": (20, "it reads the scoring rubric back instead of giving an example"),
    "buzzwords": (25, "it is self-description in buzzwords with no example"),
    "verb_salad": (20, "it lists action verbs without saying what was actually done"),
    "keyword_stuffing": (20, "it repeats the topic's keywords instead of answering"),
    "off_topic": (30, "it does not answer this question"),
    "contradiction": (30, "it claims a strength and then contradicts it"),
}
# Flag thresholds, set by hand from the tune split (a "thresholds" object in the weights file overrides them).
# vague_score: below it an answer counts as vague for the interviewer's follow-up, whatever it contains.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "read_back": 0.38, "off_topic_sim": 0.05, "other_margin": -0.19,
    "top_repeat": 0.18, "salad_share": 0.5, "vague_score": 55.0, "musing": 3,
}


@dataclass(frozen=True)
class AnswerEvaluation:
    factor: str
    score: int | None  # 0-100; None only when too little was said to judge
    relevance: str  # relevant | off_topic
    specificity: str  # concrete | vague
    flags: tuple[str, ...]
    reasoning: str
    features: dict[str, float] | None = None  # the named feature values, for audits and the bench

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data.pop("features")
        return data


@dataclass(frozen=True)
class _Rubric:
    question_vectors: dict[str, np.ndarray]
    description: np.ndarray
    anchors: np.ndarray  # weak, adequate, strong
    grams: set[tuple[str, ...]]
    # Each anchor's separate points ("Dismisses or blames the customer", "no concrete example") with
    # their vectors: a short answer matches one point far better than the whole anchor.
    weak_parts: tuple[str, ...]
    weak_part_vectors: np.ndarray
    strong_parts: tuple[str, ...]
    strong_part_vectors: np.ndarray


_PART_SPLIT = re.compile(r"[;:]|, (?:or |and )?|\. ")


def anchor_parts(anchor: str) -> tuple[str, ...]:
    """An anchor's separate points: split at semicolons, colons, commas and sentence ends; a point of
    fewer than three words stays with the one before ("or arguing")."""
    parts: list[str] = []
    for piece in (p.strip(" .,") for p in _PART_SPLIT.split(anchor)):
        if not piece:
            continue
        if parts and len(piece.split()) < 3:
            parts[-1] += ", " + piece
        else:
            parts.append(piece[0].upper() + piece[1:])
    return tuple(parts) or (anchor,)


def raw_features(text: TextFeatures, sims: dict[str, float], read_back: float) -> dict[str, float]:
    """The model's inputs, named as in FEATURES; counts are capped so one long answer cannot dominate."""
    return {
        **sims,
        "log_words": log_words(text.spoken_words),
        "lean": sims["sim_strong"] - sims["sim_weak"],
        "part_lean": sims["part_strong"] - sims["part_weak"],
        "evidence": min(text.situation + text.actions + text.results + text.reasons + text.numbers, 12)
        / max(text.spoken_words, 20) ** 0.5,
        # Length only counts as evidence with substance in it: a long answer with no situation, action,
        # result or reason is talk around the question.
        "talk_without_evidence": log_words(text.spoken_words) * (text.situation + text.actions + text.results
                                                                 + text.reasons == 0),
        "situation": min(text.situation, 3), "actions": min(text.actions, 6), "results": min(text.results, 3),
        "reasons": min(text.reasons, 4), "numbers": min(text.numbers, 6), "hedges": min(text.hedges, 3),
        "vague": min(text.vague, 3), "filler_ratio": text.filler_ratio, "variety": text.variety,
        "top_repeat": text.top_repeat, "buzzwords": min(text.buzzwords, 3), "hostile": min(text.hostile, 3),
        "salad": text.salad_share if text.salad_clauses >= 3 else 0.0, "read_back": read_back,
        "contradiction": float(text.contradiction), "admissions": min(text.admissions, 3),
        "musing": min(text.musing, 4),
    }


@dataclass(frozen=True)
class Neighbours:
    """Rated answers (tune split) as vectors: the similarity-weighted mean human score of an answer's
    NEIGHBOURS_K most similar rated answers to the same factor (any factor when fewer are rated, so a new
    template's factor still gets one)."""
    vectors: np.ndarray  # (n, dims) unit rows
    scores: np.ndarray  # (n,) human 0-100
    factors: np.ndarray  # (n,) factor names

    @classmethod
    def load(cls, path: Path = NEIGHBOURS_PATH) -> "Neighbours | None":
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return cls(data["vectors"].astype(np.float32), data["scores"].astype(np.float64),
                       data["factors"].astype(str))

    def save(self, path: Path = NEIGHBOURS_PATH) -> None:
        with path.open("wb") as out:
            np.savez_compressed(out, vectors=self.vectors.astype(np.float16), scores=self.scores.astype(np.int16),
                                factors=self.factors.astype(str))

    def score(self, vector: np.ndarray, factor: str, exclude: int | None = None) -> float:
        sims = self.vectors @ vector
        keep = np.ones(len(sims), bool)
        if exclude is not None:
            keep[exclude] = False
        same = keep & (self.factors == factor)
        pool = np.flatnonzero(same if same.sum() >= NEIGHBOURS_K else keep)
        top = pool[np.argsort(-sims[pool], kind="stable")[:NEIGHBOURS_K]]
        weights = np.exp((sims[top] - sims[top].max()) / NEIGHBOURS_TEMPERATURE)
        return float(weights @ self.scores[top] / weights.sum())


@dataclass(frozen=True)
class Probe:
    """Which directions of the embedding space screeners' scores follow: a linear map from an answer's
    vector to a 0-100 score, fitted (ridge) on rated answers, so it carries what a rubric's wording
    cannot (a weak stance said in plain words, a general opinion instead of an answer)."""
    mean: np.ndarray  # (dims,)
    coef: np.ndarray  # (dims,)
    intercept: float

    @classmethod
    def fit(cls, vectors: np.ndarray, scores: np.ndarray, alpha: float = PROBE_ALPHA) -> "Probe":
        mean = vectors.mean(0)
        centered = vectors - mean
        coef = np.linalg.solve(centered.T @ centered + alpha * np.eye(vectors.shape[1]),
                               centered.T @ (scores - scores.mean()))
        return cls(mean, coef, float(scores.mean()))

    def score(self, vector: np.ndarray) -> float:
        return float(self.intercept + (vector - self.mean) @ self.coef)

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": PROBE_ALPHA, "intercept": round(self.intercept, 4),
                "mean": [round(v, 6) for v in self.mean.tolist()], "coef": [round(v, 5) for v in self.coef.tolist()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Probe | None":
        if not data:
            return None
        return cls(np.array(data["mean"], np.float64), np.array(data["coef"], np.float64), float(data["intercept"]))


def calibrated(raw: float, weights: dict[str, Any]) -> float:
    """The linear score through the monotone map the weights carry, if any (isotonic or a straight stretch
    fitted on out-of-fold tune predictions, to undo the model's pull toward the middle; order is kept, so
    the reasoning's contributions still read right). None is shipped: under cross-validation it did not
    rank the extremes better (bench/calibrate_evaluator.py, CALIBRATION)."""
    points = weights.get("calibration")
    if not points:
        return raw
    return float(np.interp(raw, points["raw"], points["score"]))


def capped(score: float, flags: Sequence[str]) -> int:
    """The final 0-100 score: clipped, then held under the lowest cap of any flag."""
    score = max(0.0, min(100.0, score))
    if flags:
        score = min(score, min(CAPS[flag][0] for flag in flags))
    return int(round(score))


class AnswerEvaluator:
    def __init__(self, embedder: Embedder | None = None, weights: dict[str, Any] | None = None,
                 neighbours: "Neighbours | None" = None) -> None:
        self._embedder = embedder or load_embedder()
        if weights is None:
            weights = json.loads(WEIGHTS_PATH.read_text()) if WEIGHTS_PATH.exists() else None
        self.weights = weights
        self.thresholds = {**DEFAULT_THRESHOLDS, **((weights or {}).get("thresholds") or {})}
        self._rubrics: dict[tuple, _Rubric] = {}
        self._lock = threading.Lock()
        self._building = threading.Lock()  # prepare(): calls starting together embed a rubric once
        self._protos = {name: self._embedder.embed(list(texts)) for name, texts in (
            ("proto_hostile", prototypes.HOSTILE), ("proto_buzz", prototypes.BUZZWORDS),
            ("proto_offtopic", prototypes.OFF_TOPIC), ("proto_noanswer", prototypes.NO_ANSWER))}
        self._claims = self._embedder.embed(list(prototypes.CLAIMS))
        self._lapses = self._embedder.embed(list(prototypes.LAPSES))
        self._small_talk = self._embedder.embed([*prototypes.OFF_TOPIC, *prototypes.MUSING])
        self.neighbours = neighbours if neighbours is not None else Neighbours.load()
        self.probe = Probe.from_dict((weights or {}).get("probe"))

    @property
    def version(self) -> str:
        return f"answer-evaluator-2/{(self.weights or {}).get('fitted_on', 'unfitted')}"

    def prepare(self, factor: EvaluationFactor) -> None:
        """Embed the factor's rubric ahead of its first answer."""
        with self._building:
            self._rubric(factor)

    def _rubric(self, factor: EvaluationFactor) -> _Rubric:
        key = (factor.name, factor.description, factor.anchors, factor.questions)
        with self._lock:
            rubric = self._rubrics.get(key)
        if rubric is None:
            a = factor.anchors
            vectors = self._embedder.embed([factor.description.strip(), a.weak, a.adequate, a.strong,
                                            *factor.questions])
            weak_parts, strong_parts = anchor_parts(a.weak), anchor_parts(a.strong)
            rubric = _Rubric(dict(zip(factor.questions, vectors[4:])), vectors[0], vectors[1:4],
                             ngrams(" ".join((factor.description, a.weak, a.adequate, a.strong))),
                             weak_parts, self._embedder.embed(list(weak_parts)),
                             strong_parts, self._embedder.embed(list(strong_parts)))
            with self._lock:
                self._rubrics[key] = rubric
        return rubric

    def features(self, answer: str, question: str, factor: EvaluationFactor,
                 siblings: Sequence[EvaluationFactor] = ()) -> tuple[TextFeatures, dict[str, float]]:
        text, f, vector = self.measure(answer, question, factor, siblings)
        f["neighbours"] = self.neighbours.score(vector, factor.name) if self.neighbours else self._neutral("neighbours")
        f["probe"] = self.probe.score(vector) if self.probe else self._neutral("probe")
        return text, f

    def _neutral(self, name: str) -> float:
        # Without the rated answers a learned feature sits at its fitted mean: it then moves no score.
        w = self.weights or {}
        return float(w["mean"][w["features"].index(name)]) if name in w.get("features", ()) else 50.0

    def measure(self, answer: str, question: str, factor: EvaluationFactor, siblings: Sequence[EvaluationFactor] = ()
                ) -> tuple[TextFeatures, dict[str, float], np.ndarray]:
        """Every feature but the two learned from rated answers (neighbours, probe), and the answer's
        vector (calibration computes those itself, never from the answer's own rating)."""
        rubric = self._rubric(factor)
        vector, question_vector = self._embedder.embed([answer, question])
        # Fit to this factor vs the best other factor: mean of question, strong-anchor and description
        # similarity, so one accidental topic overlap does not decide it.
        own = float(vector @ question_vector + vector @ rubric.anchors[2] + vector @ rubric.description) / 3
        other = [(max(float(vector @ v) for v in r.question_vectors.values()) + float(vector @ r.anchors[2])
                  + float(vector @ r.description)) / 3
                 for r in (self._rubric(s) for s in siblings if s.name != factor.name)]
        other_questions = [float(vector @ v) for s in siblings if s.name != factor.name
                           for v in self._rubric(s).question_vectors.values()]
        sims = {"sim_question": float(vector @ question_vector),
                "margin_question": float(vector @ question_vector) - max(other_questions) if other_questions else 0.0,
                "sim_description": float(vector @ rubric.description),
                "sim_weak": float(vector @ rubric.anchors[0]), "sim_adequate": float(vector @ rubric.anchors[1]),
                "sim_strong": float(vector @ rubric.anchors[2]),
                "margin_other": own - max(other) if other else 0.0,
                "part_weak": float((rubric.weak_part_vectors @ vector).max()),
                "part_strong": float((rubric.strong_part_vectors @ vector).max()),
                **{name: float((protos @ vector).max()) for name, protos in self._protos.items()}}
        # Small talk or musing about the topic rather than the question: closer to generic small-talk
        # prototypes than to the question asked.
        sims["topic_gap"] = max(0.0, float((self._small_talk @ vector).max()) - sims["sim_question"])
        text = text_features(answer)
        f = raw_features(text, sims, read_back_share(answer, rubric.grams))
        # Clause embeddings cost a second model run: only when calibrating (unfitted) or when the fitted
        # model uses them (calibration on the tune split has dropped this feature so far: see _concession).
        uses = not self.weights or "concession" in self.weights.get("features", ())
        f["concession"] = self._concession(answer) if uses else 0.0
        return text, f, vector

    def _concession(self, answer: str) -> float:
        """How strongly a later part of the answer undoes a claim made before a turn ("I can work any shift
        ... but not evenings"): 0 unless a claim is said and then turned; otherwise the part after the turn's
        lead toward the LAPSES prototypes over the CLAIMS ones, added to the part before's lead the other way.
        Sentence embeddings carry little polarity: on answers written to test it, harmless turns ("I'm always
        on time, but when the bus broke down I called ahead") scored 0.12-0.43 and real concessions
        0.36-0.58, so the contradiction flag rests on the lexical check (answer_text.undone_claim) and this
        is only offered to calibration as a soft feature."""
        split = claim_turn(answer)
        if split is None:
            return 0.0
        before, after = self._embedder.embed(list(split))
        claim_lead = float((self._claims @ before).max() - (self._lapses @ before).max())
        lapse_lead = float((self._lapses @ after).max() - (self._claims @ after).max())
        return max(0.0, lapse_lead + 0.5 * claim_lead + 0.1)

    def flags(self, text: TextFeatures, f: dict[str, float], has_siblings: bool) -> list[str]:
        t = self.thresholds
        flags = []
        if text.no_answer:
            flags.append("no_answer")
        if text.hostile >= 1:
            flags.append("hostile")
        if f["read_back"] >= t["read_back"]:
            flags.append("rubric_read_back")
        if text.buzzwords >= 2 and text.situation == 0 and text.actions <= 1:
            flags.append("buzzwords")
        if text.salad_clauses >= 3 and text.salad_share >= t["salad_share"]:
            flags.append("verb_salad")
        if f["top_repeat"] >= t["top_repeat"]:
            flags.append("keyword_stuffing")
        if (max(f["sim_question"], f["sim_description"]) < t["off_topic_sim"]
                or (has_siblings and f["margin_other"] < t["other_margin"])
                or (text.musing >= t["musing"] and text.situation == 0)):
            flags.append("off_topic")
        if text.contradiction:
            flags.append("contradiction")
        return flags

    def _model(self, f: dict[str, float]) -> tuple[float, list[tuple[str, float]]]:
        """The calibrated score before caps, and each feature's contribution to it (points)."""
        w = self.weights
        if not w:  # unfitted (first calibration run): a neutral middle score
            return 50.0, []
        x = np.array([f[name] for name in w["features"]])
        contributions = np.array(w["coef"]) * (x - np.array(w["mean"])) / np.array(w["scale"])
        return calibrated(float(w["intercept"] + contributions.sum()), w), list(zip(w["features"],
                                                                                     contributions.tolist()))

    def evaluate(self, answer: str, question: str, factor: EvaluationFactor, *,
                 siblings: Sequence[EvaluationFactor] = ()) -> AnswerEvaluation:
        """Judge one answer. `siblings`: the template's other factors, so an answer to a different
        question is recognized (optional; without them only plain off-topic talk is)."""
        text, f = self.features(answer, question, factor, siblings)
        if text.spoken_words < MIN_SPOKEN_WORDS and not text.no_answer:
            return AnswerEvaluation(factor.name, None, "relevant", "vague", ("too_short",),
                                    f"Too little was said to judge ({text.spoken_words} words).", f)
        flags = self.flags(text, f, bool(siblings))
        raw, contributions = self._model(f)
        final = capped(raw, flags)
        rubric, vector = self._rubric(factor), self._embedder.embed_one(answer)  # both cached by now
        cite = {"strong": rubric.strong_parts[int(np.argmax(rubric.strong_part_vectors @ vector))],
                "weak": rubric.weak_parts[int(np.argmax(rubric.weak_part_vectors @ vector))]}
        concrete = (text.situation + text.actions + text.numbers >= 2 and final >= self.thresholds["vague_score"]
                    and not {"buzzwords", "verb_salad", "rubric_read_back", "keyword_stuffing"} & set(flags))
        return AnswerEvaluation(
            factor.name, final, "off_topic" if "off_topic" in flags else "relevant",
            "concrete" if concrete else "vague", tuple(flags),
            self._reasoning(final, flags, contributions, cite), f)

    @staticmethod
    def _reasoning(score: int, flags: list[str], contributions: list[tuple[str, float]],
                   cite: dict[str, str] | None = None) -> str:
        ranked = sorted(contributions, key=lambda c: -abs(c[1]))
        cite = {"strong": "", "weak": "", **(cite or {})}
        ups = [FEATURES[n][0].format(**cite) for n, c in ranked if c > 3 and FEATURES[n][0]][:2]
        downs = [FEATURES[n][1].format(**cite) for n, c in ranked if c < -3 and FEATURES[n][1]][:2]
        parts = []
        if ups:
            parts.append("it " + " and ".join(ups))
        if downs:
            parts.append(("but " if ups else "") + "it " + " and ".join(downs))
        sentence = f"{score}/100: " + (", ".join(parts) if parts else "an unremarkable answer") + "."
        if flags:
            worst = min(flags, key=lambda flag: CAPS[flag][0])
            sentence += f" Held at or below {CAPS[worst][0]} because {CAPS[worst][1]}."
        return sentence


load_evaluator = process_wide(AnswerEvaluator)  # loaded once per process, on first use
