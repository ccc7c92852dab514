"""How a SIP call that never reached the interview ends, in lifecycle terms (see ARCHITECTURE.md)."""
from __future__ import annotations

from models.lifecycle import Status

BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480})
DECLINED_CODES = frozenset({603})


def unanswered_status(status_code: int, *, ring_timeout: bool) -> Status:
    """The final status of a call that was never answered. Our own CANCEL after the ring timeout comes
    back as 487 Request Terminated: that is no_answer too."""
    if ring_timeout or status_code in NO_ANSWER_CODES:
        return Status.NO_ANSWER
    if status_code in BUSY_CODES:
        return Status.BUSY
    if status_code in DECLINED_CODES:
        return Status.DECLINED
    return Status.FAILED
