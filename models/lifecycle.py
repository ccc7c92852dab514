"""The interview lifecycle: every status change in the product is checked here and nowhere else."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SCHEDULED = "scheduled"
    DIALING = "dialing"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REPORT_READY = "report_ready"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"  # the candidate rejected the call (SIP 603 Decline)
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PARTIAL = "partial"
    # How an answered call ended when it did not end completed (the interviewer's end reason decides):
    WITHDRAWN = "withdrawn"  # the candidate asked to stop
    NO_RESPONSE = "no_response"  # silence until the inactivity timeout
    CALLBACK_SCHEDULED = "callback_scheduled"  # the candidate asked to be called back (or for a recruiter)
    TRANSFERRED = "transferred"  # handed to a person


S = Status
# Which status may follow which. A web interview goes straight from scheduled to in_progress when the
# candidate joins; a phone call may be answered without a provisional 180 (dialing -> in_progress).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.SCHEDULED: frozenset({S.DIALING, S.IN_PROGRESS, S.CANCELLED, S.EXPIRED}),
    S.DIALING: frozenset({S.RINGING, S.IN_PROGRESS, S.FAILED, S.NO_ANSWER, S.BUSY, S.DECLINED, S.CANCELLED}),
    S.RINGING: frozenset({S.IN_PROGRESS, S.FAILED, S.NO_ANSWER, S.BUSY, S.DECLINED, S.CANCELLED}),
    # declined from in_progress: the candidate answered, then refused consent (recording deleted).
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.PARTIAL, S.FAILED, S.DECLINED, S.WITHDRAWN, S.NO_RESPONSE,
                              S.CALLBACK_SCHEDULED, S.TRANSFERRED}),
    S.COMPLETED: frozenset({S.REPORT_READY}),
    S.REPORT_READY: frozenset(),
    S.FAILED: frozenset(),
    S.NO_ANSWER: frozenset(),
    S.BUSY: frozenset(),
    S.DECLINED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.PARTIAL: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.NO_RESPONSE: frozenset(),
    S.CALLBACK_SCHEDULED: frozenset(),
    S.TRANSFERRED: frozenset(),
}

# The interviewer's end reason (ivr.interviewer.Interviewer.end_reason) -> the interview's final status.
END_REASON_STATUS: dict[str, Status] = {
    "completed": S.COMPLETED, "max_duration": S.COMPLETED,
    "declined": S.DECLINED, "no_consent": S.DECLINED,
    "stopped": S.WITHDRAWN, "no_response": S.NO_RESPONSE,
    "callback_scheduled": S.CALLBACK_SCHEDULED, "human_requested": S.CALLBACK_SCHEDULED,
    "transferred": S.TRANSFERRED,
    "bad_line": S.PARTIAL,  # only our own voice came back: the call could not go on
}

TERMINAL: frozenset[Status] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt) | {S.COMPLETED}
# The call is over: no more turns may be written, nothing a client sends can change the record.
ENDED: frozenset[Status] = TERMINAL
ACTIVE: frozenset[Status] = frozenset({S.DIALING, S.RINGING, S.IN_PROGRESS})


class IllegalTransition(Exception):
    def __init__(self, current: str, new: str):
        current, new = str(current), str(new)  # Status members print as their values
        super().__init__(f"an interview cannot go from {current!r} to {new!r}")
        self.current, self.new = current, new


def check_transition(current: str, new: str) -> Status:
    """Return the new status if `current -> new` is allowed, else raise IllegalTransition."""
    try:
        cur, nxt = Status(current), Status(new)
    except ValueError:
        raise IllegalTransition(current, new) from None
    if nxt not in TRANSITIONS[cur]:
        raise IllegalTransition(current, new)
    return nxt
