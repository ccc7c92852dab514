"""An inbound call on a media worker (an INVITE to sip.inbound_user, dialer/sip/account.py): answered at
once; the caller's number (the trunk's P-Asserted-Identity, else From) is matched to a candidate's
interview (models/inbound_calls.py); a number several candidates share first asks "Am I speaking with
Ana?" (yes, or key 1; no, or key 2, asks about the next one); then the interview is claimed in_progress
and runs like a dialed call (MediaWorker.talk), resumed where it stopped if it had dropped. An unknown
number, or one with nothing to run now, hears one polite sentence and we hang up: nothing is stored."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import pjsua2 as pj

from dialer.inbound import (LEASE_S, MAX_ASKS, UNKNOWN_MESSAGE, caller_number, confirm_question, confirmation,
                            inbound_owner, keep_lease)
from dialer.leg_prompt import ask, say
from dialer.sip.call import SipCall
from ivr.interviewer import first_name
from ivr.session import InterviewSession
from models.inbound_calls import InboundMatch, InboundPlan
from config.logging_setup import mask_phone

if TYPE_CHECKING:
    from dialer.sip.worker import MediaWorker

log = logging.getLogger("phonescreen.sip")
ANSWER_WAIT_S = 5.0  # for the caller's ACK (and media) after our 200
MAX_OPENINGS = 3  # of the matches' interviews, synthesized ahead so the chosen one plays whole
CHANNEL = "sip"


class InboundCall:
    def __init__(self, worker: "MediaWorker", key: str, call: SipCall, caller: str) -> None:
        self.worker, self.key, self.call = worker, key, call
        self.phone = caller_number(caller)
        self.interview_id: str | None = None  # once claimed
        self.extra = {"caller": mask_phone(self.phone) or "unknown", "call_id": _call_id(call)}

    async def run(self) -> str | None:
        """The interview's final status, or None when no interview ran."""
        worker, call = self.worker, self.call
        plan = worker.store.inbound_plan(self.phone)
        for match in plan.matches[:MAX_OPENINGS]:  # made while the call connects (and the name is asked)
            self._warm_opening(match.interview_id)
        try:
            call.answer_now(200)
        except pj.Error as exc:  # the caller gave up already
            log.info("inbound call gone before its answer: %s", exc.reason, extra=self.extra)
            return None
        if not await self._connected():
            return None
        match = await self._who(plan)
        owner = inbound_owner(CHANNEL)
        claim = worker.store.claim_inbound(match.candidate_id, CHANNEL, owner, LEASE_S) if match else None
        if claim is None:
            log.info("inbound call: no interview for this number (%d candidates)", plan.candidates, extra=self.extra)
            if await say(call.leg, worker.engines, UNKNOWN_MESSAGE):
                await call.leg.hang_up("unknown_caller")
            return None
        self.interview_id = iid = claim.interview.id
        worker.took_inbound(self.key, iid)
        log.info("inbound call runs its interview (%s)", match.kind, extra={**self.extra, "interview_id": iid})
        lease = asyncio.create_task(keep_lease(worker.store, claim, owner, max_s=worker.sip.max_call_s + 60))
        try:
            return await worker.talk(iid, call)
        finally:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(lease, 5.0)  # the attempt's outcome, once the interview has ended

    async def _connected(self) -> bool:
        call = self.call
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.confirmed.wait(), ANSWER_WAIT_S)
        return call.confirmed.is_set() and not call.disconnected.is_set()

    async def _who(self, plan: InboundPlan) -> InboundMatch | None:
        """The candidate calling: the one match, or on a shared number the first whose name they confirm."""
        if not plan.confirm:
            return plan.matches[0] if plan.matches else None
        leg, engines = self.call.leg, self.worker.engines
        for match in plan.matches:
            answer = None
            for _ in range(MAX_ASKS):  # asked again once when the answer said neither yes nor no
                heard = await ask(leg, engines, confirm_question(first_name(match.name)))
                if heard is None:  # the line ended
                    return None
                answer = confirmation(heard.text, heard.digit)
                if answer is not None:
                    break
            if answer is None:
                return None
            if answer:
                return match
        return None

    def _warm_opening(self, interview_id: str) -> None:
        worker = self.worker
        opening = InterviewSession.opening_of(worker.store, interview_id)  # the store is read on the loop only
        if opening:
            asyncio.get_running_loop().run_in_executor(worker.engines.executor, worker.make_opening, interview_id,
                                                       opening)


def _call_id(call: SipCall) -> str:
    try:
        return call.getInfo().callIdString
    except pj.Error:
        return ""
