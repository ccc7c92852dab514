"""understanding/: the intent classifier on labelled candidate turns it never learned from, callback
times in the candidate's zone, and the job facts the interviewer answers from."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.templates import load_template_file, sample_template_path
from understanding.callback_time import resolve_callback_time
from understanding.embedder import load_embedder
from understanding.intents import DialogState, Intent, load_exemplars, load_intent_classifier
from understanding.listener import Listener

DATA = Path(__file__).parent / "data"
ZONE = "America/Chicago"
REFERENCE = datetime(2026, 12, 1, 14, 0, tzinfo=ZoneInfo(ZONE))  # a Tuesday, the sets' "now"


def _items(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text("utf-8"))["items"]


def _confusion(name: str) -> Counter[tuple[str, str, str]]:
    classifier = load_intent_classifier()
    confusion: Counter[tuple[str, str, str]] = Counter()
    for item in _items(name):
        heard = classifier.classify(item["text"], DialogState(item["state"]), timezone=ZONE, now=REFERENCE)
        confusion[(item["state"], item["intent"], heard.intent.value)] += 1
    return confusion


def _recall(confusion: Counter[tuple[str, str, str]]) -> dict[str, float]:
    right, total = Counter(), Counter()
    for (_, truth, got), n in confusion.items():
        total[truth] += n
        right[truth] += n if truth == got else 0
    return {intent: right[intent] / total[intent] for intent in total}


def test_the_evaluation_sets_are_large_and_apart_from_the_training_exemplars() -> None:
    def plain(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())
    trained = {plain(item["text"]) for item in load_exemplars()}
    labelled = _items("utterances.json")
    assert len(labelled) >= 300
    assert not trained & {plain(item["text"]) for item in labelled}
    # The fresh set was written blind to the exemplars: only short stock phrases ("okay", "operator") recur.
    assert all(len(item["text"].split()) <= 8 for item in _items("utterances_fresh.json")
               if plain(item["text"]) in trained)
    per_intent = Counter(item["intent"] for item in labelled)
    assert set(per_intent) == {intent.value for intent in Intent} - {"unclear"} and min(per_intent.values()) >= 25


def test_intents_on_the_labelled_set_meet_the_bar() -> None:
    confusion = _confusion("utterances.json")
    recall = _recall(confusion)
    assert recall["consent_yes"] == 1.0
    assert confusion[("consent", "consent_no", "consent_yes")] == 0  # a refusal is never taken as consent
    assert all(value >= 0.9 for value in recall.values()), recall


def test_intents_on_the_fresh_held_out_set() -> None:
    # Written independently and never looked at while the classifier was built (bench/understanding.py).
    confusion = _confusion("utterances_fresh.json")
    recall = _recall(confusion)
    assert recall["consent_yes"] == 1.0 and confusion[("consent", "consent_no", "consent_yes")] == 0
    right = sum(n for (_, truth, got), n in confusion.items() if truth == got)
    assert right / sum(confusion.values()) >= 0.93
    assert min(recall.values()) >= 0.8, recall


@pytest.mark.parametrize("name", ["utterances.json", "utterances_fresh.json"])
def test_callback_times_resolve_in_the_candidates_zone(name: str) -> None:
    for item in _items(name):
        if item["intent"] == "callback":
            when = resolve_callback_time(item["text"], ZONE, REFERENCE)
            got = when.strftime("%Y-%m-%dT%H:%M") if when else None
            assert got == item["callback_at"], item["text"]
            assert when is None or when.tzinfo == ZoneInfo(ZONE)


@pytest.mark.parametrize(("text", "expected"), [
    ("tomorrow at ten", "2026-12-02T10:00"), ("in an hour", "2026-12-01T15:00"),
    ("Monday morning", "2026-12-07T09:00"), ("after 5", "2026-12-01T17:00"),
    ("Tuesday", "2026-12-08T10:00"), ("at 8 tonight", "2026-12-01T20:00"), ("later", None),
])
def test_callback_time_conventions(text: str, expected: str | None) -> None:
    when = resolve_callback_time(text, ZONE, REFERENCE)
    assert (when.strftime("%Y-%m-%dT%H:%M") if when else None) == expected


def test_callback_time_follows_the_zone_across_utc() -> None:
    # 02:00 UTC on Wednesday is still Tuesday evening in Chicago: "tomorrow" is Wednesday there.
    now = datetime(2026, 12, 2, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert resolve_callback_time("tomorrow at ten", ZONE, now).isoformat() == "2026-12-02T10:00:00-06:00"


def test_embeddings_are_the_real_model() -> None:
    # Published all-MiniLM-L6-v2 similarities (sentence-transformers docs): 0.666 and 0.105.
    embedder = load_embedder()
    lovely, sunny, stadium = embedder.embed(["The weather is lovely today.", "It's so sunny outside!",
                                             "He drove to the stadium."])
    assert abs(float(lovely @ sunny) - 0.666) < 0.02 and abs(float(lovely @ stadium) - 0.105) < 0.02


@pytest.mark.parametrize(("question", "topic"), [
    ("is this full time", "full-time"), ("uh what's the pay like", "seventeen dollars"),
    ("where's the office", "downtown"), ("is there free parking", None), ("what's the dress code", None),
])
def test_job_facts_answer_only_what_the_template_knows(question: str, topic: str | None) -> None:
    facts = load_template_file(sample_template_path()).job_facts
    answer = Listener().job_fact(question, facts)
    assert (answer is None) if topic is None else (topic in answer)
