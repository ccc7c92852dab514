"""The SIP account a media worker places its calls from. The worker only dials out: an INVITE that
nobody asked for (a scanner, a misrouted trunk call) is refused with 403 Forbidden and never reaches
the voice engine. OPTIONS is answered 200 by pjsua itself, so monitoring and trunk keep-alives work.
Inbound calls, when they are added, will take over `onIncomingCall` here."""
from __future__ import annotations

import asyncio
import logging

import pjsua2 as pj

log = logging.getLogger("phonescreen.sip")
REFUSED = 403


class WorkerAccount(pj.Account):
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        self.loop = loop or asyncio.get_running_loop()  # the loop that polls pjsip (threadCnt=0)
        self.refusing: set[pj.Call] = set()  # INVITEs between the callback and their 403

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        # pjsua2 wants a Call object, or it answers 500 itself. The 403 goes out once this callback has
        # returned: a final answer given inside it frees pjsua2's copy of the INVITE early (an abort).
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
