"""How fast a finished interview becomes a scorecard: grading (the default per-answer evaluator, with its
embedding cache emptied first, and the keyword feature grader), and hang-up to report_ready.

Hang-up to report_ready goes through the `serve` scoring job (a worker process polling the store).
Target: <= 30 s. (Not named bench/scoring.py: run as a script, that would hide the scoring package.)

Run: .venv/bin/python bench/score_latency.py [-n INTERVIEWS]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Run as a script, bench/ comes first on sys.path, and bench/understanding.py would hide the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import Settings, StoreSettings
from config.templates import load_template_file, sample_template_path
from models.store import SessionStore
from scoring import grade_transcript
from scoring.evaluator_grader import EvaluatorGrader
from scoring.feature_grader import FeatureGrader
from scoring.job import ScoringWorker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_scoring import NAMES, store_transcript  # noqa: E402  (the hand-written transcripts and their loader)

TARGET_S = 30.0


def report(name: str, values_ms: list[float]) -> None:
    p50, p95 = np.percentile(values_ms, [50, 95])
    print(f"{name:<44} p50 {p50:9.1f} ms   p95 {p95:9.1f} ms   n={len(values_ms)}")


def grading_times(store: SessionStore, settings: Settings, rounds: int, grader_name: str = "feature") -> list[float]:
    template = load_template_file(sample_template_path())
    turns = [store.turns(store_transcript(store, template, name)) for name in NAMES]
    grader = EvaluatorGrader() if grader_name == "evaluator" else FeatureGrader()
    times = []
    for _ in range(rounds):
        for name, transcript in zip(NAMES, turns):
            if isinstance(grader, EvaluatorGrader):
                grader.evaluator._embedder._cache.clear()  # time real embedding, not the cache
            start = time.perf_counter()
            grade_transcript(template, transcript, dropped=name == "dropped", grader=grader, settings=settings)
            times.append((time.perf_counter() - start) * 1000)
    return times


async def hangup_to_report(store: SessionStore, settings: Settings, interviews: int) -> list[float]:
    """Start the job as `serve` does, then finish interviews one at a time and wait for each report."""
    template = load_template_file(sample_template_path())
    worker = ScoringWorker(settings)
    job = asyncio.create_task(worker.run_forever(store))
    times = []
    try:
        for i in range(interviews):
            iid = store_transcript(store, template, NAMES[i % 3])  # strong, weak, vague: all complete
            hung_up = time.perf_counter()
            for _ in range(int(4 * TARGET_S / 0.01)):
                if store.get_interview(iid).status == "report_ready":
                    break
                await asyncio.sleep(0.01)
            else:
                raise SystemExit(f"interview {iid} was not scored within {4 * TARGET_S:g} s")
            times.append((time.perf_counter() - hung_up) * 1000)
    finally:
        job.cancel()
        worker.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--interviews", type=int, default=10)
    n = parser.parse_args().interviews
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store=StoreSettings(path=str(Path(tmp) / "bench.db")))
        store = SessionStore(settings.store.target)
        print(f"phonescreen scoring - scoring.poll_interval_s = {settings.scoring.poll_interval_s:g}")
        report("evaluator grading of one transcript", grading_times(store, settings, 5, "evaluator"))
        report("feature grading of one transcript", grading_times(store, settings, rounds=20))
        first, *rest = asyncio.run(hangup_to_report(store, settings, n + 1))
        report("hang-up -> report_ready, first (worker start)", [first])
        report("hang-up -> report_ready", rest)
        fast = dataclasses.replace(settings, scoring=dataclasses.replace(settings.scoring, poll_interval_s=0.25))
        report("hang-up -> report_ready, polling every 0.25 s", asyncio.run(hangup_to_report(store, fast, n))[1:])
        print(f"target: <= {TARGET_S:g} s after hang-up")
        store.close()


if __name__ == "__main__":
    main()
