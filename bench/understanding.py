"""How well the understanding component reads candidate turns: accuracy per intent and state, the
confusion matrix, callback times resolved right, and the time per decision (p50/p95, n), on the labelled
evaluation sets in tests/data (never used for training: the classifier learns from
understanding/data/intent_examples.json).

    .venv/bin/python bench/understanding.py [--set tests/data/utterances.json] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from understanding.intents import ALLOWED, DialogState, Intent, load_intent_classifier  # noqa: E402

SETS = ("tests/data/utterances.json", "tests/data/utterances_fresh.json")
ZONE = "America/Chicago"
REFERENCE = datetime(2026, 12, 1, 14, 0, tzinfo=ZoneInfo(ZONE))  # the sets' "now" for callback times


def measure(path: str) -> dict:
    classifier = load_intent_classifier()
    items = json.loads(Path(path).read_text("utf-8"))["items"]
    confusion: Counter[tuple[str, str, str]] = Counter()
    callbacks_right = callbacks = 0
    times: list[float] = []
    for item in items:
        state = DialogState(item["state"])
        started = time.perf_counter()
        heard = classifier.classify(item["text"], state, timezone=ZONE, now=REFERENCE)
        times.append((time.perf_counter() - started) * 1000)
        confusion[(item["state"], item["intent"], heard.intent.value)] += 1
        if item["intent"] == "callback":
            callbacks += 1
            got = heard.callback_at.strftime("%Y-%m-%dT%H:%M") if heard.callback_at else None
            callbacks_right += got == item.get("callback_at") and heard.intent is Intent.CALLBACK
    per_intent: dict[str, list[int]] = {}
    for (state, truth, got), n in confusion.items():
        right_total = per_intent.setdefault(truth, [0, 0])
        right_total[0] += n if truth == got else 0
        right_total[1] += n
    times.sort()
    return {"set": path, "n": len(items), "per_intent": {k: v[0] / v[1] for k, v in sorted(per_intent.items())},
            "confusion": {f"{s}|{t}|{g}": n for (s, t, g), n in sorted(confusion.items())},
            "consent_no_taken_as_consent": confusion[("consent", "consent_no", "consent_yes")],
            "callback_time_right": [callbacks_right, callbacks],
            "ms_p50": statistics.median(times), "ms_p95": times[int(0.95 * (len(times) - 1))]}


def show(result: dict) -> None:
    print(f"\n{result['set']}: {result['n']} turns")
    for intent, accuracy in result["per_intent"].items():
        print(f"  {intent:<12} {accuracy:6.1%}")
    print(f"  consent_no taken as consent: {result['consent_no_taken_as_consent']}")
    right, total = result["callback_time_right"]
    print(f"  callback time resolved right: {right}/{total}")
    print(f"  decision time: p50 {result['ms_p50']:.1f} ms  p95 {result['ms_p95']:.1f} ms  n={result['n']}")
    for state in DialogState:
        intents = [i.value for i in ALLOWED[state]]
        print(f"\n  confusion in the {state.value} state (rows: truth, columns: understood)")
        print("  " + " " * 12 + "".join(f"{i[:9]:>10}" for i in intents))
        for truth in intents:
            row = [result["confusion"].get(f"{state.value}|{truth}|{got}", 0) for got in intents]
            if any(row):
                print(f"  {truth:<12}" + "".join(f"{n:>10}" for n in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", help="a labelled set (default: both in tests/data)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(path) for path in args.set or SETS]
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for result in results:
            show(result)


if __name__ == "__main__":
    main()
