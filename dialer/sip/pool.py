"""The pool of media worker processes the server (or `phonescreen call`, or the demo) places SIP calls
through. Each worker holds at most `sip.calls_per_worker` calls; a dial waits for a free slot. The pool
claims an interview by moving it to `dialing` before a worker sees it, so no interview is dialed twice.
A worker that dies takes only its own calls with it: the pool ends them in the store (partial when the
interview had started, failed before that), logs why (signal or exit code, its calls, its log file; kept in
`deaths`) and starts a replacement on the same ports. A worker that cannot start fails `start()` instead.
Calls to `sip.inbound_user` hold a worker's slot from their arrival (dialer/sip/inbound.py); once one runs an
interview, the pool treats it like a dialed call.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

from config.settings import Settings, SettingsError
from config.sip_checks import sip_problems
from dialer.sip.targets import with_transport
from dialer.sip.worker import worker_log_path, worker_main
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

log = logging.getLogger("phonescreen.sip")
WORKER_START_TIMEOUT_S = 180.0  # a cold start loads Whisper, Piper and the LLM
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class CallResult:
    interview_id: str
    status: str
    sip_code: int | None  # the INVITE's last SIP status (486, 603, 200 ...), None if no response
    # per AI utterance: its longest playback underrun (ivr/playback.py Playback.underruns), for benchmarks
    underruns: tuple[dict, ...] = field(default=(), compare=False)


@dataclass(eq=False)  # workers are compared by identity
class _Worker:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: asyncio.Future
    calls: dict[str, asyncio.Future] = field(default_factory=dict)  # interview id -> its CallResult
    inbound: set[str] = field(default_factory=set)  # inbound calls not running an interview (yet): their keys


@dataclass(frozen=True)
class WorkerDeath:
    """Why a media worker went away and what it took with it: one line for the log and the demo."""
    index: int
    pid: int | None
    cause: str  # "killed by SIGSEGV", "exited with code 1"
    calls: dict[str, str]  # interview id -> the status the pool ended it in
    log_path: Path

    def __str__(self) -> str:
        calls = ", ".join(f"{iid} ended {status}" for iid, status in self.calls.items())
        held = f"{len(self.calls)} call{'s' if len(self.calls) > 1 else ''} ({calls})" if calls else "no calls"
        return f"media worker {self.index} (pid {self.pid}) {self.cause}; it had {held}; {log_note(self.log_path)}"


def log_note(path: Path) -> str:
    """Where to read about a dead worker: its log file, unless it died before opening it (an import error)."""
    if path.exists():
        return f"its log: {path}"
    return f"its log: stderr only (it died before opening {path})"


def exit_cause(exitcode: int | None) -> str:
    """A process's end in words: multiprocessing gives -N for a signal N."""
    if exitcode is None:
        return "closed its pipe (still exiting)"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


StateListener = Callable[[str, str], None]  # (interview id, status) as calls progress
# (the result, the session's reply timings as dicts: [] when the call was not answered or its worker died)
DoneListener = Callable[[CallResult, list[dict]], None]
AudioListener = Callable[[bytes], None]  # one 20 ms frame of a recruiter-led call's candidate voice


class MediaWorkerPool:
    def __init__(self, settings: Settings, store: SessionStore, *, with_llm: bool = True,
                 on_state: StateListener | None = None, on_done: DoneListener | None = None) -> None:
        self.settings, self.store, self.with_llm, self.on_state = settings, store, with_llm, on_state
        self.on_done = on_done
        self.capacity_per_worker = settings.sip.calls_per_worker
        self.workers: list[_Worker] = []
        self.restarts = 0
        self.deaths: list[WorkerDeath] = []  # every worker that died after the pool started, in order
        self._free = asyncio.Condition()
        self._started = False  # until start() succeeds, a dead worker fails it instead of being replaced
        self._closing = False
        self._context = multiprocessing.get_context("spawn")  # pjsip threads and fork() do not mix
        self._audio: dict[str, AudioListener] = {}  # recruiter-led calls: interview id -> candidate audio sink

    @property
    def capacity(self) -> int:
        return self.capacity_per_worker * len(self.workers)

    @property
    def active_calls(self) -> int:
        return sum(len(worker.calls) + len(worker.inbound) for worker in self.workers)

    async def start(self) -> None:
        """Start the workers and wait until each is ready; raises (RuntimeError naming the cause, or
        TimeoutError) if one cannot start, after stopping the others; SettingsError for SIP settings that
        were built in code and never checked by load_settings (a TLS key that does not load ...)."""
        if problems := sip_problems(self.settings.sip):
            key, message = problems[0]
            raise SettingsError(f"sip.{key}: {message}")
        self.workers = [self._spawn(index) for index in range(self.settings.sip.workers)]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready for w in self.workers)), WORKER_START_TIMEOUT_S)
        except BaseException:
            await self.close()  # workers that did start must not outlive the failure
            raise
        self._started = True

    async def __aenter__(self) -> "MediaWorkerPool":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _spawn(self, index: int) -> _Worker:
        loop = asyncio.get_running_loop()
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=worker_main, name=f"phonescreen-media-{index}", daemon=True,
                                        args=(child_end, self.settings, index, self.with_llm))
        process.start()
        child_end.close()
        worker = _Worker(index, process, parent_end, loop.create_future())
        loop.add_reader(parent_end.fileno(), self._on_message, worker)
        return worker

    # -- dialing ------------------------------------------------------------------------------------------
    async def dial(self, interview_id: str, target: str, *, on_audio: AudioListener | None = None) -> CallResult:
        """Claim the interview (scheduled -> dialing), place the call on a worker with a free slot, and
        wait until it ends. Raises IllegalTransition if the interview cannot be dialed now. `on_audio`: a
        recruiter-led call (dialer/recruiter_link.py): the AI stays silent, the candidate's voice comes to
        `on_audio` frame by frame (8 kHz PCM16), the recruiter's goes down with `send_audio`."""
        async with self._free:
            worker = await self._free.wait_for(self._worker_with_room)
            self.store.transition(interview_id, Status.DIALING)  # the claim
            done = asyncio.get_running_loop().create_future()
            worker.calls[interview_id] = done
        self._notify(interview_id, Status.DIALING)
        # Every caller (API dialer, campaigns, `phonescreen call`, tests) comes through here: the transport once.
        target = with_transport(target, self.settings.sip)
        message = {"op": "dial", "interview_id": interview_id, "target": target}
        if on_audio is not None:
            self._audio[interview_id] = on_audio
            message["mode"] = "recruiter"
        worker.conn.send(message)
        try:
            return await done
        finally:
            self._audio.pop(interview_id, None)

    def _worker_of(self, interview_id: str) -> _Worker | None:
        return next((w for w in self.workers if interview_id in w.calls), None)

    def send_audio(self, interview_id: str, pcm: bytes) -> None:
        """One 20 ms frame of the recruiter's voice (8 kHz PCM16) for a recruiter-led call's candidate."""
        if (worker := self._worker_of(interview_id)) is not None:
            with contextlib.suppress(OSError):
                worker.conn.send({"op": "audio", "interview_id": interview_id, "pcm": pcm})

    def hand_over(self, interview_id: str) -> bool:
        """Let the AI finish a recruiter-led call; False when no worker holds that call."""
        if (worker := self._worker_of(interview_id)) is None:
            return False
        worker.conn.send({"op": "handover", "interview_id": interview_id})
        return True

    def hang_up(self, interview_id: str) -> None:
        for worker in self.workers:
            if interview_id in worker.calls:
                worker.conn.send({"op": "hangup", "interview_id": interview_id})

    async def end_all(self, reason: str = "shutdown", timeout_s: float = 20.0) -> int:
        """End every answered call politely (a goodbye, then our BYE: partial) and wait up to `timeout_s`
        for the calls to finish; returns how many calls were still going when the time was up."""
        for worker in self.workers:
            if worker.calls:
                with contextlib.suppress(OSError):
                    worker.conn.send({"op": "end", "reason": reason})
        calls = [done for worker in self.workers for done in worker.calls.values()]
        if calls:
            await asyncio.wait(calls, timeout=timeout_s)
        return self.active_calls

    def _worker_with_room(self) -> _Worker | None:
        ready = [w for w in self.workers if w.ready.done() and not w.ready.exception()
                 and len(w.calls) + len(w.inbound) < self.capacity_per_worker]
        return min(ready, key=lambda w: len(w.calls) + len(w.inbound), default=None)

    def _notify(self, interview_id: str, status: str) -> None:
        if self.on_state is not None:
            self.on_state(interview_id, status)

    def _done(self, result: CallResult, timings: list[dict]) -> None:
        if self.on_done is not None:
            self.on_done(result, timings)

    # -- messages from workers --------------------------------------------------------------------------
    def _on_message(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        op = message.get("op")
        if op == "audio":  # a recruiter-led call's candidate voice, for the recruiter's browser
            if (listener := self._audio.get(message.get("interview_id"))) is not None:
                listener(message["pcm"])
        elif op == "ready" and not worker.ready.done():
            worker.ready.set_result(True)
            asyncio.create_task(self._wake())
        elif op == "failed" and not worker.ready.done():  # it could not start (e.g. its SIP port is taken)
            worker.ready.set_exception(RuntimeError(message["reason"]))
        elif op == "state":
            self._notify(message["interview_id"], message["status"])
        elif op == "inbound":  # a call to sip.inbound_user holds a slot; then it may run an interview
            self._inbound(worker, message["key"], message.get("interview_id"))
        elif op == "done" and message.get("interview_id") is None:  # an inbound call that ran no interview
            worker.inbound.discard(message.get("key"))
            asyncio.create_task(self._wake())
        elif op == "done":
            worker.inbound.discard(message.get("key"))
            done = worker.calls.pop(message["interview_id"], None)
            result = CallResult(message["interview_id"], message["status"], message.get("code") or None,
                                tuple(message.get("underruns") or ()))
            if done is not None and not done.done():
                done.set_result(result)
            self._notify(message["interview_id"], message["status"])
            self._done(result, message.get("timings") or [])
            asyncio.create_task(self._wake())

    def _inbound(self, worker: _Worker, key: str, interview_id: str | None) -> None:
        """Count an inbound call from its arrival; once it runs an interview it is that interview's call
        (a worker that dies ends it like a dialed one)."""
        if interview_id is None:
            worker.inbound.add(key)
            return
        worker.inbound.discard(key)
        worker.calls[interview_id] = asyncio.get_running_loop().create_future()

    async def _wake(self) -> None:
        async with self._free:
            self._free.notify_all()

    def _lost(self, worker: _Worker) -> None:
        """The worker's pipe closed: it exited or crashed. End its calls in the store; replace it."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        worker.process.join(timeout=1)
        ended: dict[str, str] = {}
        for interview_id, done in worker.calls.items():
            ended[interview_id] = status = self._end_lost_call(interview_id)
            if not done.done():
                done.set_result(CallResult(interview_id, status, None))
            self._notify(interview_id, status)
            self._done(CallResult(interview_id, status, None), [])
        worker.calls.clear()
        worker.inbound.clear()
        cause, log_path = exit_cause(worker.process.exitcode), worker_log_path(self.settings, worker.index)
        if not worker.ready.done():
            worker.ready.set_exception(RuntimeError(f"media worker {worker.index} {cause} while starting; "
                                                    f"{log_note(log_path)}"))
        if self._closing or worker not in self.workers or not self._started:
            return
        death = WorkerDeath(worker.index, worker.process.pid, cause, ended, log_path)
        self.deaths.append(death)
        log.error("%s; starting a new one", death)
        self.restarts += 1
        self.workers[self.workers.index(worker)] = self._spawn(worker.index)

    def _end_lost_call(self, interview_id: str) -> str:
        current = self.store.get_interview(interview_id).status
        new = Status.PARTIAL if current == Status.IN_PROGRESS else Status.FAILED
        if current in (Status.DIALING, Status.RINGING, Status.IN_PROGRESS):
            with contextlib.suppress(IllegalTransition):
                self.store.transition(interview_id, new, outcome_code=WORKER_LOST)
                return new
        return current

    # -- shutdown ------------------------------------------------------------------------------------------
    async def close(self, timeout_s: float = 20.0) -> None:
        """Stop every worker: active calls are hung up (they end partial), then the processes exit."""
        self._closing = True
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.conn.send({"op": "stop"})
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            await loop.run_in_executor(None, worker.process.join, timeout_s)
            if worker.process.is_alive():
                log.error("media worker %d did not stop; killing it", worker.index)
                worker.process.kill()
                await loop.run_in_executor(None, worker.process.join, 5)
            if not worker.conn.closed:
                self._lost(worker)
        self.workers = []
