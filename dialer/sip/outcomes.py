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


TLS_VERIFY_FAILED = "tls_verify_failed"


def unanswered_code(status_code: int, reason: str) -> int | str | None:
    """The outcome code stored for an unanswered call: the SIP code, except when the TLS peer's certificate
    was refused. pjsip reports that as a 503 like any other transport error; the reason text tells them apart."""
    if "PJSIP_TLS_ECERTVERIF" in reason:
        return TLS_VERIFY_FAILED
    return status_code or None
