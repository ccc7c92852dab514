"""A media worker process: one pjsua2 endpoint (at most 4 calls), the voice engines, and an event loop
that runs each answered call's InterviewSession over its SipLeg.

The pool (pool.py) sends {"op": "dial", "interview_id", "target", "mode"?}, {"op": "end", "reason"} (every answered
call says a short goodbye and hangs up: partial) and {"op": "stop"} over a pipe and gets back {"op": "ready"},
{"op": "state", ...} and {"op": "done", "interview_id", "key", "status", "code", "timings", "underruns"} (timings:
the session's TurnTiming per reply, as dicts, for the server's metrics; underruns: each AI utterance's longest
playback underrun, for benchmarks). The pool
has already moved the interview to `dialing` (its claim); the worker writes every later status itself.
A recruiter-led call (`"mode": "recruiter"`, dialer/recruiter_link.py) runs no session until handed over: the
candidate's voice goes up as {"op": "audio", "interview_id", "pcm"} (20 ms, 8 kHz), the recruiter's comes
down the same way, and {"op": "handover", "interview_id"} lets the AI finish the interview on the same leg.
An inbound call (to sip.inbound_user, dialer/sip/inbound.py) is announced as {"op": "inbound", "key"} when it
arrives (it holds a slot) and {"op": "inbound", "key", "interview_id"} once it runs an interview; one that
runs none ends with a `done` whose interview_id is None.
If the worker dies, the pool ends its calls in the store (partial or failed) and starts a new one.
Besides stderr, each worker logs to <store dir>/logs/media-worker-N.log, where a crash in native code
(llama.cpp, pjsip, onnxruntime) also leaves every thread's Python stack (faulthandler).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import faulthandler
import gc
import logging
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pjsua2 as pj

from config.settings import Settings
from dialer.inbound import UNKNOWN_MESSAGE
from dialer.interview_call import start_interview
from dialer.recruiter_link import HANDOVER, RecruiterLink
from dialer.sip.account import WorkerAccount
from dialer.sip.call import SipCall
from dialer.sip.endpoint import EndpointPlan, account_config, poll_forever, start_endpoint
from dialer.sip.inbound import InboundCall
from dialer.sip.media import RATE, ports
from dialer.sip.outcomes import unanswered_code, unanswered_status
from dialer.sip.voicemail import screen_for_voicemail
from ivr.engines import load_engines, warm_follow_ups
from ivr.session import InterviewSession
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

log = logging.getLogger("phonescreen.sip")
DISCONNECT_WAIT_S = 5.0
BRIDGE_SETTLE_S = 0.2  # ten 20 ms clock ticks
PJ_EADDRINUSE = 120000 + errno.EADDRINUSE  # pjlib reports OS errors as 120000 + errno


def worker_log_path(settings: Settings, index: int) -> Path:
    """Where media worker `index` writes its log: next to the store, so each deployment (and each test or
    demo run) keeps its own."""
    return Path(settings.store.path).resolve().parent / "logs" / f"media-worker-{index}.log"


def worker_main(conn: Connection, settings: Settings, index: int, with_llm: bool) -> None:
    """Entry point of the worker process (multiprocessing spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops us over the pipe
    from config.logging_setup import configure_logging
    path = worker_log_path(settings, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(path, "a", buffering=1, encoding="utf-8")  # line-buffered: a crash loses nothing logged
    log_file.write(f"--- media worker {index} (pid {os.getpid()}) starting at "
                   f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    faulthandler.enable(log_file, all_threads=True)  # SIGSEGV, SIGABRT ...: the Python stacks at the crash
    configure_logging(settings.log.format, settings.log.level, copy_to=log_file)
    try:
        asyncio.run(MediaWorker(conn, settings, index, with_llm).run())
    except Exception:
        log.exception("media worker %d failed", index)
        raise


class MediaWorker:
    def __init__(self, conn: Connection, settings: Settings, index: int, with_llm: bool) -> None:
        self.conn, self.settings, self.index, self.with_llm = conn, settings, index, with_llm
        self.sip = settings.sip
        self.calls: dict[str, SipCall] = {}
        self.sessions: dict[str, InterviewSession] = {}  # answered calls' running interviews
        self.links: dict[str, RecruiterLink] = {}  # answered recruiter-led calls, until handed to the AI
        self.tasks: set[asyncio.Task] = set()
        self.stopping = asyncio.Event()
        self.leftovers: list[SipCall] = []  # calls pjsip never confirmed as disconnected; freed at the end
        self.inbound_count = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        plan = EndpointPlan.for_worker(self.sip, self.index)
        try:
            self.endpoint = start_endpoint(plan, self.sip.codecs)
            # Refuses INVITEs nobody asked for (403); calls to sip.inbound_user go to _on_inbound.
            self.account = WorkerAccount(inbound_user=self.sip.inbound_user, on_inbound=self._on_inbound)
            self.account.create(account_config(plan, self.sip))
        except pj.Error as exc:  # the pool's start() fails with this reason
            hint = " (another process holds it: set sip.port, e.g. PHONESCREEN_SIP_PORT)" \
                if exc.status == PJ_EADDRINUSE else ""
            reason = f"media worker {self.index} cannot use SIP {plan.address}:{plan.sip_port}: {exc.reason}{hint}"
            log.error("%s", reason)
            self._tell({"op": "failed", "reason": reason})
            raise SystemExit(1) from None
        poller = asyncio.create_task(poll_forever(self.endpoint))
        try:
            self.engines = await loop.run_in_executor(None, lambda: load_engines(self.settings, "en",
                                                                              with_llm=self.with_llm))
            self.store = SessionStore(self.settings.store.target, busy_timeout_ms=self.settings.store.busy_timeout_ms)
            await warm_follow_ups(self.engines)
            if self.sip.inbound_user:  # an unknown caller hears it at once
                await loop.run_in_executor(self.engines.executor, self.engines.phrases(RATE).warm, [UNKNOWN_MESSAGE])
            loop.add_reader(self.conn.fileno(), self._on_message)
            self._tell({"op": "ready", "index": self.index, "sip_port": plan.sip_port})
            log.info("media worker %d ready on %s:%d", self.index, plan.address, plan.sip_port)
            await self.stopping.wait()
            loop.remove_reader(self.conn.fileno())
            for call in list(self.calls.values()):
                call.hang_up_now()
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=DISCONNECT_WAIT_S + 5)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            self._destroy()

    def _destroy(self) -> None:
        """pjsua2 objects must go before the library, or libDestroy aborts the process."""
        for call in [*self.calls.values(), *self.leftovers]:
            call.release()
        self.calls.clear()
        self.leftovers.clear()
        del self.account
        ports.drop_all()
        gc.collect()
        time.sleep(BRIDGE_SETTLE_S)  # the bridge removes the dropped ports on its next ticks
        self.endpoint.libDestroy()

    # -- the pipe -------------------------------------------------------------------------------------------
    def _on_message(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            log.warning("media worker %d lost its pool; stopping", self.index)
            self.stopping.set()
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            return
        op = message.get("op")
        if op == "audio":  # the recruiter's voice on a recruiter-led call (dialer/recruiter_link.py)
            if (link := self.links.get(message.get("interview_id"))) is not None:
                link.push_recruiter(message["pcm"])
        elif op == "handover" and message.get("interview_id") in self.links:
            self.links[message["interview_id"]].hand_over()
        elif op == "dial":
            task = asyncio.create_task(self._place(message["interview_id"], message["target"],
                                                   recruiter=message.get("mode") == "recruiter"))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif op == "hangup" and message.get("interview_id") in self.calls:
            self.calls[message["interview_id"]].hang_up_now()
        elif op == "end":
            for iid, call in list(self.calls.items()):
                if iid in self.sessions:
                    self.sessions[iid].end_politely(message.get("reason") or "shutdown")
                else:
                    call.hang_up_now()  # still ringing: CANCEL
        elif op == "stop":
            self.stopping.set()
        else:
            log.error("media worker %d: unknown message %r", self.index, op)

    def _tell(self, message: dict) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send(message)

    def _status(self, iid: str, status: Status, code: int | str | None = None) -> bool:
        """Store a status change; False when the interview was moved elsewhere (e.g. cancelled by the API)."""
        try:
            self.store.transition(iid, status, outcome_code=code)
        except IllegalTransition as exc:
            log.warning("status not stored: %s", exc, extra={"interview_id": iid})
            return False
        self._tell({"op": "state", "interview_id": iid, "status": str(status), "code": code})
        return True

    # -- one call -------------------------------------------------------------------------------------------
    async def _place(self, iid: str, target: str, recruiter: bool = False) -> None:
        loop = asyncio.get_running_loop()
        call = SipCall(self.account, loop, label=iid)
        self.calls[iid] = call
        status: str = Status.FAILED
        try:
            status = await self._dial_and_talk(iid, target, call, recruiter)
        except Exception:
            log.exception("call failed", extra={"interview_id": iid})
            current = self.store.get_interview(iid).status
            status = Status.PARTIAL if current == Status.IN_PROGRESS else Status.FAILED
            self._status(iid, status, "worker_error")
        finally:
            await self._end_call(iid, call, status)

    async def _end_call(self, key: str, call: SipCall, status: str | None) -> None:
        """Hang up if need be, free the call and tell the pool. `key`: the interview id (an inbound call
        that ran none: its placeholder key, and no status)."""
        call.hang_up_now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.disconnected.wait(), DISCONNECT_WAIT_S)
        log.info("call ended: %s (SIP %s)%s", status or "no interview", call.status_code,
                 "" if call.disconnected.is_set() else "; the line did not confirm the hang-up",
                 extra=_call_extra(key, call))  # before release: it reads the call
        self.calls.pop(key, None)
        if call.disconnected.is_set():
            call.release()
        else:
            self.leftovers.append(call)
        session = self.sessions.pop(key, None)
        timings = [{**dataclasses.asdict(t), "total_ms": t.total_ms} for t in session.timings] if session else []
        underruns = session.playback.underruns() if session else []
        self._tell({"op": "done", "interview_id": key if status is not None else None, "key": key,
                    "status": str(status), "code": call.status_code, "timings": timings, "underruns": underruns})

    async def _dial_and_talk(self, iid: str, target: str, call: SipCall, recruiter: bool = False) -> str:
        try:
            call.makeCall(target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("cannot dial: %s", exc.reason, extra={"interview_id": iid})
            self._status(iid, Status.FAILED, "invalid_target")
            return Status.FAILED
        # The opening (greeting with the name, consent) is synthesized while the phone rings: it plays whole.
        if not recruiter:  # a recruiter opens their own call
            opening = InterviewSession.opening_of(self.store, iid)  # the store is read on the loop's thread only
            asyncio.get_running_loop().run_in_executor(self.engines.executor, self.make_opening, iid, opening)
        answered = await self._ring(iid, call)
        if not answered:
            ring_timeout = not call.disconnected.is_set()
            if ring_timeout:
                call.hang_up_now()  # CANCEL
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.disconnected.wait(), DISCONNECT_WAIT_S)
            status = unanswered_status(call.status_code, ring_timeout=ring_timeout)
            self._status(iid, status, unanswered_code(call.status_code, call.reason))
            return status
        # Campaigns that ask for it: an answering machine never hears the interview (dialer/sip/voicemail.py).
        machine = await screen_for_voicemail(self.store, iid, call.leg, self.engines)
        if machine is not None:
            self._status(iid, Status.NO_ANSWER, machine)
            return Status.NO_ANSWER
        if not self._status(iid, Status.IN_PROGRESS, 200):
            return self.store.get_interview(iid).status
        if recruiter:
            return await self.recruiter_call(iid, call)
        return await self.talk(iid, call)

    async def recruiter_call(self, iid: str, call: SipCall) -> str:
        """Relay a recruiter's call (the AI silent) until it ends, or until the recruiter hands it to the AI,
        which then finishes the interview on the same leg."""
        link = RecruiterLink(self.store, iid, call.leg, self.engines, self.settings.voice,
                             lambda pcm: self._tell({"op": "audio", "interview_id": iid, "pcm": pcm}),
                             self.settings.store.recordings_dir)
        self.links[iid] = link
        log.info("recruiter call answered", extra=_call_extra(iid, call))
        try:
            status = await link.run(silence_timeout_s=self.sip.rtp_timeout_s, max_s=self.sip.max_call_s)
        finally:
            self.links.pop(iid, None)
        if status != HANDOVER:
            return status
        log.info("recruiter handed the call to the AI", extra={"interview_id": iid})
        return await self.talk(iid, call)

    async def talk(self, iid: str, call: SipCall) -> str:
        """The interview over an answered call (in_progress already), until it ends; its final status."""
        interview = start_interview(call.leg, store=self.store, interview_id=iid, engines=self.engines,
                                    settings=self.settings)
        self.sessions[iid] = interview.session
        log.info("call answered", extra=_call_extra(iid, call))
        talk = interview.finished
        rtp_watch = asyncio.create_task(call.watch_rtp(self.sip.rtp_timeout_s))  # frames flow on without RTP
        try:
            return await asyncio.wait_for(asyncio.shield(talk), self.sip.max_call_s)
        except TimeoutError:
            log.warning("call reached sip.max_call_s; hanging up", extra=_call_extra(iid, call))
            call.hang_up_now()
            return await talk
        finally:
            rtp_watch.cancel()

    # -- inbound calls (dialer/sip/inbound.py) ------------------------------------------------------------
    def _on_inbound(self, call: SipCall, caller: str) -> None:
        """A call to sip.inbound_user (the account's callback has returned): it takes a slot at once."""
        self.inbound_count += 1
        key = call.label = f"inbound-{self.index}-{self.inbound_count}"
        self.calls[key] = call
        self._tell({"op": "inbound", "key": key})
        task = asyncio.create_task(self._inbound(key, call, caller), name=key)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _inbound(self, key: str, call: SipCall, caller: str) -> None:
        inbound = InboundCall(self, key, call, caller)
        status: str | None = None
        try:
            status = await inbound.run()
        except Exception:
            log.exception("inbound call failed", extra={"interview_id": inbound.interview_id or ""})
            if inbound.interview_id is not None:
                current = self.store.get_interview(inbound.interview_id).status
                status = Status.PARTIAL if current == Status.IN_PROGRESS else current
                if current == Status.IN_PROGRESS:
                    self._status(inbound.interview_id, status, "worker_error")
        finally:
            await self._end_call(inbound.interview_id or key, call, status)

    def took_inbound(self, key: str, iid: str) -> None:
        """An inbound call now runs interview `iid` (claimed in_progress): keyed by it, like a dialed call."""
        call = self.calls.pop(key)
        call.label = iid
        self.calls[iid] = call
        self._tell({"op": "inbound", "key": key, "interview_id": iid})
        self._tell({"op": "state", "interview_id": iid, "status": str(Status.IN_PROGRESS), "code": 200})

    def make_opening(self, iid: str, opening: tuple[str, ...]) -> None:
        try:
            self.engines.phrases(RATE).warm(opening)
        except Exception:  # the session makes it again when the call is answered
            log.exception("opening not made while ringing", extra={"interview_id": iid})

    async def _ring(self, iid: str, call: SipCall) -> bool:
        """Wait for the answer; True once the call is confirmed, False on a final failure or the ring timeout."""
        deadline = asyncio.get_running_loop().time() + self.sip.ring_timeout_s
        ringing = False
        while not call.confirmed.is_set() and not call.disconnected.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            waits = {asyncio.ensure_future(call.confirmed.wait()), asyncio.ensure_future(call.disconnected.wait())}
            if not ringing:
                waits.add(asyncio.ensure_future(call.early.wait()))
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
            if call.early.is_set() and not ringing:
                ringing = True
                self._status(iid, Status.RINGING, call.status_code)
        return call.confirmed.is_set() and not call.disconnected.is_set()


def _call_extra(iid: str, call: SipCall) -> dict[str, str]:
    """Log context of a call: the interview and the SIP Call-ID (what a trunk's logs show)."""
    try:
        call_id = call.getInfo().callIdString
    except pj.Error:  # the call is gone already
        call_id = ""
    return {"interview_id": iid, "call_id": call_id}
