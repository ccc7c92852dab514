"""Inbound calls, whatever the channel: the caller's number from what the network gives, the words we
say (the same on SIP, where Piper speaks them, and Twilio, where <Say> does), reading a yes or no to
"Am I speaking with Ana?", and the campaign lease an inbound call keeps while it runs
(models/inbound_calls.py decides which interview a number reaches)."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket

from models.campaign_dialing import attempt_outcome
from models.inbound_calls import InboundClaim
from models.lifecycle import ENDED
from models.store import SessionStore
from models.validation import ValidationError, normalize_phone

log = logging.getLogger("phonescreen.dialer")
# Said to a number we cannot match (or whose candidate has nothing to run now), then we hang up.
UNKNOWN_MESSAGE = "Thank you for calling. We have no interview waiting for this number. Goodbye."
LEASE_S = 30.0  # of a campaign attempt an inbound call runs under; renewed every third of it
MAX_ASKS = 2  # a name is asked again once when the answer was unclear or silent
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>?\s]+)", re.IGNORECASE)
_NO = re.compile(r"\b(?:no|nope|nah|not|wrong)\b")
_YES = re.compile(r"\b(?:yes|yeah|yep|yup|ya|yea|speaking|correct|right|sure|indeed|that'?s me|it'?s me)\b")


def confirm_question(first_name: str) -> str:
    return f"Am I speaking with {first_name}? Please say yes or no."


def caller_number(uri_or_number: str | None) -> str | None:
    """The caller's E.164 number from a SIP/tel URI or a plain number, or None (anonymous, a name, a
    national number we cannot place). Trunks send E.164 with or without the '+', or with 00."""
    if not uri_or_number:
        return None
    found = _URI_USER.search(uri_or_number)
    user = found.group(1) if found else uri_or_number.strip()
    compact = re.sub(r"[\s().-]", "", user)
    if compact.isdigit() and not compact.startswith("0"):
        compact = "+" + compact
    try:
        return normalize_phone(compact)
    except ValidationError:
        return None


def confirmation(text: str = "", digit: str = "") -> bool | None:
    """A caller's answer to "Am I speaking with ...?": True, False, or None when it says neither. Keys:
    1 is yes, 2 is no. A no anywhere wins ("no, this is her sister")."""
    if digit:
        return {"1": True, "2": False}.get(digit)
    words = " ".join(re.findall(r"[a-z']+", text.lower().replace("\u2019", "'")))
    if _NO.search(words):
        return False
    if _YES.search(words):
        return True
    return None


def inbound_owner(channel: str) -> str:
    """The lease owner of a campaign attempt an inbound call runs under: readable, unique per process."""
    return f"inbound-{channel}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def keep_lease(store: SessionStore, claim: InboundClaim, owner: str, *, max_s: float,
                     poll_s: float = 1.0) -> None:
    """While the claimed interview runs (at most `max_s`): renew its campaign attempt's lease; once it has
    ended, give the attempt its outcome, so the campaign's retry policy applies. Stopped early (cancelled,
    the process died, `max_s` passed), the lease runs out and the campaign's recovery ends the attempt, as
    for any dialer that stopped."""
    if claim.attempt_id is None:
        return
    loop, iid = asyncio.get_running_loop(), claim.interview.id
    deadline, renew_at = loop.time() + max_s, loop.time() + LEASE_S / 3
    while loop.time() < deadline:
        interview = store.get_interview(iid)
        if interview.status in ENDED:
            store.finish_attempt(claim.attempt_id, attempt_outcome(interview))
            return
        if loop.time() >= renew_at:
            renew_at = loop.time() + LEASE_S / 3
            if not store.renew_leases(owner, [claim.attempt_id], LEASE_S):
                log.warning("the inbound call's campaign attempt was taken over", extra={"interview_id": iid})
                return
        await asyncio.sleep(poll_s)
