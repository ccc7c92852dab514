"""Agreement of the answer evaluator with human ratings (data/ratings/*.json).

Reports, for the held-out split (never tuned on), the hiring team's own 27 answers, the held-out answers
added in one batch after the evaluator was built (FRESH: committed before they were first scored), and the
tune split:
Spearman rank correlation per factor and pooled; agreement on the top and bottom thirds (of the
answers humans put in their top or bottom third, the share the evaluator puts in the same third); every
trap answer's score; and the time per answer (p50 / p95). `--json` prints the figures as JSON (the
regression test reads them); `--check` exits 1 when a held-out figure misses its target.

    PYTHONPATH=. .venv/bin/python bench/scoring_agreement.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rated_data import RatedAnswer, load_rated  # noqa: E402
from understanding.evaluator import AnswerEvaluator, load_evaluator  # noqa: E402

FRESH = "fresh-2026-12-05"
TARGETS = {"pooled_spearman": 0.80, "min_factor_spearman": 0.70, "max_trap_score": 40, "thirds_agreement": 0.90}


def ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (what Spearman needs)."""
    order = np.argsort(values, kind="stable")
    out = np.empty(len(values))
    sorted_values = np.asarray(values)[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        out[order[i:j + 1]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def thirds(human: list[float], model: list[float]) -> float:
    """Of the answers in the humans' top or bottom third, the share the evaluator puts in the same third."""
    def tercile(values: list[float]) -> np.ndarray:
        r = ranks(values) / max(len(values) - 1, 1)
        return np.where(r < 1 / 3, 0, np.where(r > 2 / 3, 2, 1))
    h, m = tercile(human), tercile(model)
    ends = h != 1
    return float((h[ends] == m[ends]).mean()) if ends.any() else float("nan")


def figures(items: list[RatedAnswer], scored: list[int | None]) -> dict[str, Any]:
    pairs = [(i, s if s is not None else 0) for i, s in zip(items, scored)]  # too short to judge = lowest
    by_factor: dict[str, list] = defaultdict(list)
    for item, score in pairs:
        by_factor[item.factor.name].append((item.human, score))
    per_factor = {name: round(spearman([h for h, _ in v], [s for _, s in v]), 3) for name, v in by_factor.items()}
    human, model = [i.human for i, _ in pairs], [s for _, s in pairs]
    return {"n": len(pairs), "pooled_spearman": round(spearman(human, model), 3),
            "per_factor_spearman": per_factor,
            "min_factor_spearman": round(min(per_factor.values()), 3) if per_factor else None,
            "thirds_agreement": round(thirds(human, model), 3),
            "mean_abs_error": round(float(np.mean(np.abs(np.array(human) - np.array(model)))), 1)}


def run(evaluator: AnswerEvaluator | None = None) -> dict[str, Any]:
    evaluator = evaluator or load_evaluator()
    items = load_rated()
    evaluator.evaluate("warm up", "warm up", items[0].factor)
    for item in items:  # rubric texts are embedded once per factor: do it before timing answers
        evaluator.features(".", item.question, item.factor, item.template.factors)
    scored, times, traps = [], [], []
    for item in items:
        start = time.perf_counter()
        result = evaluator.evaluate(item.text, item.question, item.factor, siblings=item.template.factors)
        times.append((time.perf_counter() - start) * 1000)
        scored.append(result.score)
        if item.trap:
            traps.append({"split": item.split, "factor": item.factor.name, "trap": item.trap, "human": item.human,
                          "score": result.score, "flags": list(result.flags), "text": item.text[:70]})
    def subset(keep) -> dict[str, Any]:
        chosen = [(i, s) for i, s in zip(items, scored) if keep(i)]
        return figures([i for i, _ in chosen], [s for _, s in chosen])
    heldout_traps = [t["score"] or 0 for t in traps if t["split"] == "heldout"]
    return {
        "evaluator": evaluator.version,
        "heldout": subset(lambda i: i.split == "heldout"),
        "hiring_team": subset(lambda i: i.source == "hiring-team"),
        "heldout_fresh": subset(lambda i: i.batch == FRESH),
        "tune": subset(lambda i: i.split == "tune"),
        "traps": traps,
        "max_heldout_trap_score": max(heldout_traps) if heldout_traps else None,
        "traps_over_40": sum(s > 40 for s in heldout_traps),
        "time_ms": {"n": len(times), "p50": round(float(np.percentile(times, 50)), 1),
                    "p95": round(float(np.percentile(times, 95)), 1)},
        "targets": TARGETS,
    }


def misses(report: dict[str, Any]) -> list[str]:
    held = report["heldout"]
    out = []
    if held["pooled_spearman"] < TARGETS["pooled_spearman"]:
        out.append(f"pooled Spearman {held['pooled_spearman']}")
    if held["min_factor_spearman"] < TARGETS["min_factor_spearman"]:
        out.append(f"lowest factor Spearman {held['min_factor_spearman']}")
    if (report["max_heldout_trap_score"] or 0) > TARGETS["max_trap_score"]:
        out.append(f"a trap scored {report['max_heldout_trap_score']}")
    if held["thirds_agreement"] < TARGETS["thirds_agreement"]:
        out.append(f"top/bottom third agreement {held['thirds_agreement']}")
    return out


def _print(report: dict[str, Any]) -> None:
    print(f"evaluator {report['evaluator']}")
    for part in ("heldout", "hiring_team", "heldout_fresh", "tune"):
        f = report[part]
        print(f"\n{part} (n={f['n']}): pooled Spearman {f['pooled_spearman']}, top/bottom thirds "
              f"{f['thirds_agreement']:.0%}, mean abs error {f['mean_abs_error']}")
        for name, rho in f["per_factor_spearman"].items():
            print(f"  {name:36s} {rho}")
    print("\ntraps (score / human):")
    for t in report["traps"]:
        print(f"  {t['split']:7s} {t['score']!s:>4} / {t['human']:<3} {t['trap']:28s} "
              f"{','.join(t['flags']):32s} {t['text']}")
    print(f"\nheld-out traps over 40: {report['traps_over_40']} (max {report['max_heldout_trap_score']})")
    tm = report["time_ms"]
    print(f"time per answer: p50 {tm['p50']} ms, p95 {tm['p95']} ms (n={tm['n']})")
    missed = misses(report)
    print("targets: " + ("all met" if not missed else "missed: " + "; ".join(missed)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a held-out target is missed")
    args = parser.parse_args()
    report = run()
    print(json.dumps(report, indent=1)) if args.json else _print(report)
    return 1 if args.check and misses(report) else 0


if __name__ == "__main__":
    sys.exit(main())
