"""Did each of `phonescreen demo`'s interviews end the way its candidate's script means it to?

The demo's simulated phone answers each number with a script (dialer.simulator.SAMPLE_SCRIPTS) and reports
what it said; the interview's stored record (through the API: status, outcome, turns, scorecard) must
match: the intended final status, no media worker lost, every answer stored, an AI turn before each answer
(and the AI's closing when it completes), and a scorecard. Anything else makes the demo exit non-zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialer.sip.pool import WORKER_LOST
from models.lifecycle import ENDED, Status


@dataclass(frozen=True)
class ScriptedCandidate:
    script: str  # the simulated phone's script (dialer.sim_phone --assign NUMBER=SCRIPT)
    ends: Status  # the interview's intended final status (completed also covers report_ready)


# The demo CSV's callable candidates (config/samples/demo_candidates.csv) by phone number.
DEMO_CANDIDATES: dict[str, ScriptedCandidate] = {
    "+14155550100": ScriptedCandidate("concrete", Status.COMPLETED),
    "+14155550101": ScriptedCandidate("vague", Status.COMPLETED),  # follow-ups, then every factor answered
    "+447700900123": ScriptedCandidate("hangs-up", Status.PARTIAL),  # hangs up after three answers
}


def interview_problem(record: dict[str, Any], meant: ScriptedCandidate, answers_spoken: int | None,
                      *, score_deadline_s: float) -> str | None:
    """None when the interview (the API's record) ended as `meant`; else what went wrong, in a few words.
    `answers_spoken`: how many answers the phone said (None if it did not report the call)."""
    status = record["status"]
    if status not in ENDED:
        return f"still {status} when the demo stopped waiting"
    if record.get("outcomeCode") == WORKER_LOST:
        return f"ended {status}: its media worker died during the call"
    ended = Status.COMPLETED if status == Status.REPORT_READY else status
    if ended != meant.ends:
        outcome = f" (outcome {record['outcomeCode']})" if record.get("outcomeCode") else ""
        return f"ended {ended}{outcome}, but its script means {meant.ends}"
    turns = record["turns"]
    agent = sum(turn["role"] == "agent" for turn in turns)
    candidate = len(turns) - agent
    if not turns or turns[0]["role"] != "agent":
        return "lost a turn: the transcript does not open with the AI's greeting"
    if answers_spoken is not None:
        if candidate < answers_spoken:
            return f"lost a turn: the candidate gave {answers_spoken} answers, {candidate} stored"
        # The phone answers only after hearing the AI, so each answer follows an AI turn; a completed
        # interview also ends with the AI's closing.
        wanted = answers_spoken + (ended == Status.COMPLETED)
        if agent < wanted:
            return f"lost a turn: {agent} AI turns stored, at least {wanted} spoken"
    if ended == Status.COMPLETED and turns[-1]["role"] != "agent":
        return "lost a turn: the AI's closing is not stored"
    if not record["scorecard"] or (ended == Status.COMPLETED and status != Status.REPORT_READY):
        return f"not scored within {score_deadline_s:g} s of its end"
    return None
