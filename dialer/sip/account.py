"""The SIP account a media worker places its calls from. An INVITE to `sip.inbound_user` (the DID or user
the trunk sends inbound calls to, in the request URI or the To header) is an inbound call: it becomes a
SipCall handed to the worker (dialer/sip/inbound.py). Any other INVITE (a scanner, a misrouted trunk call,
or every INVITE while inbound calls are off) is refused with 403 Forbidden and never reaches the voice
engine. OPTIONS is answered 200 by pjsua itself, so monitoring and trunk keep-alives work.

Every answer (the 403, or the inbound call's 200) goes out once pjsua2's `onIncomingCall` has returned:
a final answer given inside it frees pjsua2's copy of the INVITE early (an abort)."""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Callable

import pjsua2 as pj

from dialer.sip.call import SipCall

log = logging.getLogger("phonescreen.sip")
REFUSED = 403
_REQUEST_URI = re.compile(r"\A\s*INVITE\s+(\S+)")
_TO = re.compile(r"^(?:To|t)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_ASSERTED = re.compile(r"^P-Asserted-Identity[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_USER = re.compile(r"(?:sips?|tel):([^@;>?\s]+)", re.IGNORECASE)
InboundHandler = Callable[[SipCall, str], None]  # (the new call, the caller's URI), run on the loop


def called_users(message: str) -> set[str]:
    """The user parts an INVITE was sent to: its request URI's and its To header's."""
    users = set()
    for pattern in (_REQUEST_URI, _TO):
        if (found := pattern.search(message)) and (user := _USER.search(found.group(1))):
            users.add(user.group(1))
    return users


def asserted_identity(message: str) -> str:
    """The P-Asserted-Identity a trunk vouches for the caller with, or ""."""
    found = _ASSERTED.search(message)
    return found.group(1).strip() if found else ""


class WorkerAccount(pj.Account):
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, inbound_user: str = "",
                 on_inbound: InboundHandler | None = None) -> None:
        super().__init__()
        self.loop = loop or asyncio.get_running_loop()  # the loop that polls pjsip (threadCnt=0)
        self.inbound_user, self.on_inbound = inbound_user, on_inbound
        self.refusing: set[pj.Call] = set()  # INVITEs between the callback and their 403

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        message = prm.rdata.wholeMsg
        if self.inbound_user and self.on_inbound is not None and self.inbound_user in called_users(message):
            call = SipCall(self, self.loop, prm.callId, label="inbound")
            caller = asserted_identity(message) or call.getInfo().remoteUri
            self.loop.call_soon(self.on_inbound, call, caller)
            return
        # pjsua2 wants a Call object, or it answers 500 itself.
        call = pj.Call(self, prm.callId)
        self.refusing.add(call)
        self.loop.call_soon(self._refuse, call, prm.rdata.srcAddress)

    def _refuse(self, call: pj.Call, source: str) -> None:
        op = pj.CallOpParam(True)
        op.statusCode = REFUSED
        op.reason = "Inbound calls are not accepted"
        try:
            call.hangup(op)
            log.warning("unsolicited INVITE from %s refused with %d", source, REFUSED)
        except pj.Error as exc:  # the caller gave up already
            log.info("unsolicited INVITE from %s gone before its refusal: %s", source, exc.reason)
        finally:
            self.refusing.discard(call)  # pjsua forgets the ended call; the object can go
