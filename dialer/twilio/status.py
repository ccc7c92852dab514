"""Twilio's call statuses (status callbacks) in interview-lifecycle terms (see ARCHITECTURE.md).

Twilio reports queued/initiated, ringing, in-progress (answered), then one final status: completed
(answered, then hung up), busy, no-answer, failed or canceled. Once the media stream has started, the
interview session owns the status (completed or partial); before that the callbacks decide:

- busy, no-answer, failed, canceled -> busy, no_answer, failed, cancelled (outcome code: Twilio's status)
- completed while still dialing/ringing: answered and hung up before the interview could start -> no_answer
- completed or a failure after the answer but with no stream -> failed (our side never got the media)
- answered by a machine (AMD's AnsweredBy machine_* or fax) -> no_answer, outcome `voicemail` (or `fax`),
  and the call is hung up.
A callback that repeats or arrives out of order changes nothing: the lifecycle only moves forward.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.lifecycle import Status

UNANSWERED = {"busy": Status.BUSY, "no-answer": Status.NO_ANSWER, "failed": Status.FAILED,
              "canceled": Status.CANCELLED}
ANSWERED = frozenset({"in-progress", "answered"})
CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "completed", *ANSWERED, *UNANSWERED})
WAITING = frozenset({Status.DIALING, Status.RINGING})


@dataclass(frozen=True)
class CallUpdate:
    status: Status | None = None  # the interview's next status; None: nothing changes
    outcome_code: str | None = None
    hang_up: bool = False  # end the call through REST
    reason: str = ""


def machine_outcome(answered_by: str) -> str | None:
    if answered_by.startswith("machine_"):
        return "voicemail"
    return "fax" if answered_by == "fax" else None


def interpret(call_status: str, current: str, *, streamed: bool, answered_by: str = "") -> CallUpdate:
    """What one status callback means for an interview now in `current`; `streamed`: its media stream
    has started (the session, not the callbacks, decides how it ends)."""
    machine = machine_outcome(answered_by)
    if machine is not None and not streamed and call_status in ANSWERED | {"completed"}:
        if current in WAITING:
            return CallUpdate(Status.NO_ANSWER, machine, hang_up=call_status != "completed",
                              reason=f"answered by a machine ({answered_by})")
        if current == Status.IN_PROGRESS and call_status != "completed":
            return CallUpdate(hang_up=True, reason=f"answered by a machine ({answered_by})")
    if call_status == "ringing":
        return CallUpdate(Status.RINGING) if current == Status.DIALING else CallUpdate()
    if call_status in ANSWERED:
        return CallUpdate(Status.IN_PROGRESS) if current in WAITING else CallUpdate()
    final = UNANSWERED.get(call_status) or (Status.NO_ANSWER if call_status == "completed" else None)
    if final is None:
        return CallUpdate()  # queued, initiated, or a status Twilio may add later
    if current in WAITING:
        reason = "answered and hung up before the interview began" if call_status == "completed" else ""
        return CallUpdate(final, call_status, reason=reason)
    if current == Status.IN_PROGRESS and not streamed:
        return CallUpdate(Status.FAILED, call_status, reason="the call was answered but its media stream never began")
    return CallUpdate()
