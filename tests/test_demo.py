"""`phonescreen demo` fails loudly: the verdict on stored interviews (read back through the API, scored by
the real scoring code), and one real demo run whose media worker is crashed on purpose."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.simulator import SAMPLE_SCRIPTS, connected_interview
from dialer.sip.pool import WORKER_LOST
from models.lifecycle import Status
from scoring.scorecard import score_interview
from server.cli.demo_verdict import DEMO_CANDIDATES, ScriptedCandidate, interview_problem

REPO = Path(__file__).resolve().parents[1]
CONCRETE, VAGUE, HANGS_UP = (DEMO_CANDIDATES[n] for n in ("+14155550100", "+14155550101", "+447700900123"))
ANSWERS = {script.name.replace(" ", "-"): script.answers for script in SAMPLE_SCRIPTS}


def stored_interview(store, settings, template, meant: ScriptedCandidate, *, answers: int, closing: bool,
                     status: Status, outcome: str | None = None, scored: bool = True) -> str:
    """An interview as a call leaves it: the AI's greeting, then each answer followed by the AI's next
    question (or, with `closing`, its closing after the last), ended in `status` and maybe scored."""
    interview_id = connected_interview(store, template)
    store.add_turn(interview_id, role="agent", text="Hi Ana, this call is recorded. Do you agree?",
                   start_ms=0, end_ms=4000)
    at = 5000
    for number, text in enumerate(ANSWERS[meant.script][:answers]):
        store.add_turn(interview_id, role="candidate", text=text, start_ms=at, end_ms=at + 6000)
        if number < answers - 1 or closing:
            question = "Thank you, goodbye." if number == answers - 1 else f"Question {number + 1}: tell me more."
            store.add_turn(interview_id, role="agent", text=question, start_ms=at + 7000, end_ms=at + 9000)
        at += 10_000
    store.transition(interview_id, status, outcome_code=outcome)
    if scored:
        score_interview(store, interview_id, settings)
    return interview_id


@pytest.fixture
def verdict(api, store, settings, sample_template):
    """verdict(meant, spoken, **stored) -> the demo's problem with such an interview, or None."""
    async def judge(meant: ScriptedCandidate, spoken: int | None, **stored) -> str | None:
        interview_id = stored_interview(store, settings, sample_template, meant, **stored)
        record = await (await api.get(f"/api/v1/interviews/{interview_id}")).json()
        return interview_problem(record, meant, spoken, score_deadline_s=120)
    return judge


async def test_interviews_that_end_as_their_scripts_mean_pass(verdict) -> None:
    assert await verdict(CONCRETE, 5, answers=5, closing=True, status=Status.COMPLETED) is None
    assert await verdict(VAGUE, 8, answers=8, closing=True, status=Status.COMPLETED) is None
    assert await verdict(HANGS_UP, 3, answers=3, closing=False, status=Status.PARTIAL) is None


async def test_a_lost_worker_fails_even_where_partial_was_meant(verdict) -> None:
    crashed = await verdict(CONCRETE, 1, answers=1, closing=True, status=Status.PARTIAL, outcome=WORKER_LOST)
    assert crashed == "ended partial: its media worker died during the call"
    assert "media worker died" in await verdict(HANGS_UP, 2, answers=2, closing=True, status=Status.PARTIAL,
                                                 outcome=WORKER_LOST)


async def test_an_ending_other_than_the_scripts_fails(verdict) -> None:
    problem = await verdict(HANGS_UP, 3, answers=3, closing=True, status=Status.COMPLETED)
    assert problem == "ended completed, but its script means partial"
    problem = await verdict(CONCRETE, 2, answers=2, closing=False, status=Status.PARTIAL, outcome="remote_hangup")
    assert problem == "ended partial (outcome remote_hangup), but its script means completed"


async def test_lost_turns_fail(verdict) -> None:
    problem = await verdict(CONCRETE, 5, answers=4, closing=True, status=Status.COMPLETED)
    assert problem == "lost a turn: the candidate gave 5 answers, 4 stored"
    problem = await verdict(CONCRETE, 5, answers=5, closing=False, status=Status.COMPLETED)
    assert problem == "lost a turn: 5 AI turns stored, at least 6 spoken"


async def test_an_unscored_interview_fails(verdict) -> None:
    problem = await verdict(CONCRETE, 5, answers=5, closing=True, status=Status.COMPLETED, scored=False)
    assert problem == "not scored within 120 s of its end"
    problem = await verdict(HANGS_UP, 3, answers=3, closing=False, status=Status.PARTIAL, scored=False)
    assert problem == "not scored within 120 s of its end"


def test_the_demo_exits_non_zero_naming_the_crashed_worker(tmp_path: Path) -> None:
    """The whole demo, for real, with media worker 0 crashed (SIGSEGV) 3 s into the first answered call."""
    data_dir = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "server.cli", "demo", "--data-dir", str(data_dir),
                          "--kill-worker-after", "3"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "sending SIGSEGV to media worker 0" in run.stdout
    reason = run.stderr.strip().splitlines()[-1]  # the one-line reason is the last thing said
    log_path = data_dir.resolve() / "logs" / "media-worker-0.log"
    assert reason.startswith("phonescreen: error: demo failed: media worker 0 (pid "), reason
    assert "killed by SIGSEGV" in reason and f"its log: {log_path}" in reason, reason
    assert "its media worker died during the call" in reason, reason
    # The worker's log holds the Python stacks at the crash (faulthandler), the first place to look.
    assert "Segmentation fault" in log_path.read_text(), log_path.read_text()[-2000:]


def test_each_number_the_demo_calls_has_a_known_script() -> None:
    from server.cli.demo import SAMPLE_CSV
    csv_numbers = {re.sub(r"[^+\d]", "", row["phone"]) for row in csv.DictReader(SAMPLE_CSV.open())}
    assert set(DEMO_CANDIDATES) <= csv_numbers
    assert {meant.script for meant in DEMO_CANDIDATES.values()} <= set(ANSWERS)
