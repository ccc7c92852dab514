"""A leg: one call's audio transport (SIP, Twilio, web). The voice engine sees every leg the same way.

A leg delivers what the candidate's side sends (20 ms frames paced in real time by the far end, keypad
digits, the end of the line) and plays what it is given. `bridge` joins a leg to an InterviewSession:
for each frame received it pushes that frame and sends what the leg asks for (one frame, or enough to keep
a small lead queued at the far end: `dialer/send_lead.py`), so the far end's clock drives both directions
and nothing queues up between them.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ivr.frames import AudioFrame
from ivr.session import ClearPlayback, Hangup, InterviewSession, Transfer

log = logging.getLogger("phonescreen.dialer")


@dataclass(frozen=True)
class Dtmf:
    digit: str  # 0-9, *, #, A-D


@dataclass(frozen=True)
class LineEnded:
    reason: str  # remote_hangup, rtp_timeout, stream_closed, worker_lost ...


LegEvent = AudioFrame | Dtmf | LineEnded


class Leg(ABC):
    sample_rate: int  # of the frames it receives and sends
    transfer_target: str | None = None  # where `transfer` puts the caller through (set by whoever made the leg)

    @abstractmethod
    async def receive(self) -> LegEvent:
        """The next thing from the candidate's side; LineEnded once the line is gone (then again forever)."""

    @abstractmethod
    def send(self, frame: AudioFrame) -> None:
        """Queue one 20 ms frame to play to the candidate. Never blocks."""

    def attach(self, session: InterviewSession) -> None:
        """The session `bridge` joins this leg to (a leg that paces itself by it, like the simulator's)."""

    def frames_to_send(self) -> int:
        """How many frames to send for the frame just received. One, for a leg paced by the far end; a leg
        that knows (SIP's port) or can work out from the clock (Twilio) how much it has queued keeps a small
        lead instead, so an event loop that runs late leaves no gap in the AI's speech, and the burst of
        frames received after it leaves no backlog."""
        return 1

    def clear(self) -> None:
        """Drop audio queued but not yet played: the candidate barged in."""

    @abstractmethod
    async def hang_up(self, reason: str) -> None:
        """End the call from our side after the queued audio has played. Idempotent."""

    async def transfer(self) -> bool:
        """Put the caller through to `transfer_target` once the queued audio has played; True once handed
        over (the call is then no longer ours: `hang_up` only leaves it). A leg that cannot: False."""
        return False


async def bridge(session: InterviewSession, leg: Leg, *, silence_timeout_s: float = 10.0) -> str:
    """Run the interview over the leg until either side ends it; returns the interview's final status.
    No media for `silence_timeout_s` counts as the line dropping (the interview ends partial)."""
    leg.attach(session)
    conversation = asyncio.create_task(session.run(), name=f"interview-{session.interview_id}")
    line_open = True
    try:
        while not conversation.done():
            try:
                event = await asyncio.wait_for(leg.receive(), timeout=silence_timeout_s)
            except TimeoutError:
                event = LineEnded("media_timeout")
            if isinstance(event, AudioFrame):
                session.push_audio(event)
                for _ in range(leg.frames_to_send()):
                    leg.send(session.pull_audio())
            elif isinstance(event, Dtmf):
                session.push_dtmf(event.digit)
            else:
                log.info("line ended: %s", event.reason, extra={"interview_id": session.interview_id})
                line_open = False
                session.remote_hangup()
                break
            if await _obey(session, leg):
                break
        status = await conversation
    finally:
        if not conversation.done():
            conversation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conversation
    if line_open:
        await leg.hang_up(str(status))
    return status


async def _obey(session: InterviewSession, leg: Leg) -> bool:
    """Carry out the session's control commands; True once it has hung up."""
    while not session.control.empty():
        command = session.control.get_nowait()
        if isinstance(command, ClearPlayback):
            leg.clear()
        elif isinstance(command, Hangup):
            return True
        elif isinstance(command, Transfer):  # frames keep flowing while the far end answers the transfer
            task = asyncio.create_task(_transfer(leg, command), name=f"transfer-{session.interview_id}")
            _transfers.add(task)
            task.add_done_callback(_transfers.discard)
    return False


_transfers: set[asyncio.Task] = set()  # running transfers, kept from the garbage collector


async def _transfer(leg: Leg, command: Transfer) -> None:
    try:
        handed_over = await leg.transfer()
    except Exception:  # the session falls back to a recruiter's callback
        log.exception("transfer failed")
        handed_over = False
    if not command.done.done():
        command.done.set_result(handed_over)
