"""A recruiter-led call, in the media worker that holds the candidate's SIP leg (server/admin/recruiter_call.py
starts it; the AI says nothing). Audio is relayed both ways: each frame from the candidate goes up the pool's
pipe to the recruiter's browser and is answered with one frame of the recruiter's voice from the pipe (or
silence), so the candidate's line paces both directions, as in `dialer.leg.bridge`. Each side is heard on
its own: VAD, endpointing and STT per channel, each finished turn stored with its role (`recruiter`,
`candidate`) and what was understood of it (the recruiter's question matched to a factor; the candidate's
answer evaluated by the same evaluator as AI interviews). Both channels are recorded in one stereo WAV
(candidate left, recruiter right); an AI that takes over the call (`hand_over`) appends to it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from config.settings import VoiceSettings
from config.templates import EvaluationFactor, InterviewTemplate
from dialer.leg import Dtmf, Leg, LineEnded
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame, frames_of, silence
from ivr.recording import StereoRecorder
from ivr.resample import resample
from ivr.vad import EndpointConfig, Endpointer, SpeechStarted, TurnEnded, WebRtcVoiceActivity
from models.lifecycle import IllegalTransition, Status
from models.store import Conflict, SessionStore
from scoring.transcript import words_of
from scoring.plan import covered_factors, match_question, next_factor

log = logging.getLogger("phonescreen.recruiter")
MAX_RECRUITER_FRAMES = 25  # 500 ms of the recruiter's voice may wait for the line; older audio is dropped
PREROLL_FRAMES = 15  # 300 ms before the endpointer's onset, so first syllables reach the STT
MIN_ANSWER_WORDS = 3  # shorter candidate turns ("yes", "mm-hmm") are stored but not evaluated
HANDOVER = "handover"


@dataclass
class _Speech:
    start_ms: int
    frames: list[AudioFrame]


class SideListener:
    """One channel of the call: its voice activity and turns; `on_turn(role, frames, start_ms, end_ms)`."""

    def __init__(self, role: str, rate: int, voice: VoiceSettings,
                 on_turn: Callable[[str, list[AudioFrame], int, int], None]) -> None:
        self.role, self.on_turn = role, on_turn
        self.vad = WebRtcVoiceActivity(voice.vad_aggressiveness, rate)
        self.endpointer = Endpointer(EndpointConfig.from_settings(voice))
        self.preroll: deque[AudioFrame] = deque(maxlen=PREROLL_FRAMES)
        self.speech: _Speech | None = None

    def push(self, frame: AudioFrame) -> None:
        self.preroll.append(frame)
        event = self.endpointer.update(self.vad.is_speech(frame))
        if isinstance(event, SpeechStarted):
            self.speech = _Speech(event.at_ms, list(self.preroll))
            return
        if self.speech is None:
            return
        self.speech.frames.append(frame)
        if isinstance(event, TurnEnded):
            speech, self.speech = self.speech, None
            self.on_turn(self.role, speech.frames, event.start_ms, event.end_ms)
        elif not self.endpointer.in_speech:
            self.speech = None  # too short to be speech


def transcribe(engines: VoiceEngines, frames: list[AudioFrame]) -> str:
    """The words in a finished turn (runs on the engines' executor)."""
    rate = frames[0].sample_rate
    pcm = np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2")
    if engines.stt.sample_rate != rate:
        pcm = resample(pcm, rate, engines.stt.sample_rate)
    stream = engines.stt.open_stream()
    for frame in frames_of(pcm, engines.stt.sample_rate):
        stream.push(frame)
    return stream.finish().text.strip()


class RecruiterLink:
    def __init__(self, store: SessionStore, interview_id: str, leg: Leg, engines: VoiceEngines,
                 voice: VoiceSettings, send_up: Callable[[bytes], None], recordings_dir: str | Path | None) -> None:
        """`send_up(pcm)`: one 20 ms frame of the candidate's voice towards the recruiter's browser."""
        self.store, self.interview_id, self.leg, self.engines = store, interview_id, leg, engines
        self.send_up = send_up
        interview = store.get_interview(interview_id)
        self.template: InterviewTemplate = store.get_position(interview.position_id,
                                                              interview.position_version).template
        self.rate = leg.sample_rate
        self.recruiter_frames: deque[bytes] = deque(maxlen=MAX_RECRUITER_FRAMES)
        self.listeners = {role: SideListener(role, self.rate, voice, self._on_turn)
                          for role in ("candidate", "recruiter")}
        self.recording = Path(recordings_dir) / f"{interview_id}.wav" if recordings_dir else None
        self.recorder = StereoRecorder(self.recording, self.rate) if self.recording else None
        self.handed_over = asyncio.Event()
        self.pending: set[asyncio.Task] = set()
        self.asked: tuple[str, str] | None = None  # (factor, question) the candidate is answering
        self._frame_bytes = len(silence(self.rate).pcm)

    # -- from the pool's pipe ---------------------------------------------------------------------------
    def push_recruiter(self, pcm: bytes) -> None:
        if len(pcm) == self._frame_bytes:
            self.recruiter_frames.append(pcm)

    def hand_over(self) -> None:
        self.handed_over.set()

    # -- the call -------------------------------------------------------------------------------------------
    async def run(self, silence_timeout_s: float = 10.0, max_s: float = 3600.0) -> str:
        """Relay until the line ends (returns the final status) or the recruiter hands over (HANDOVER);
        hangs up after `max_s` of call time (sip.max_call_s), like an AI interview."""
        ending = "remote_hangup"
        frames_left = int(max_s * 50)  # 20 ms frames
        try:
            while not self.handed_over.is_set():
                frames_left -= 1
                if frames_left < 0:
                    ending = "max_call_s"
                    self.leg_hang_up()
                    break
                try:
                    event = await asyncio.wait_for(self.leg.receive(), timeout=silence_timeout_s)
                except TimeoutError:
                    event = LineEnded("media_timeout")
                if isinstance(event, AudioFrame):
                    self._relay(event)
                elif isinstance(event, Dtmf):
                    continue
                else:
                    ending = event.reason
                    break
        finally:
            if self.recorder:
                self.recorder.close()
                self.store.set_recording(self.interview_id, str(self.recording))
            if self.pending:  # the last words said before the hang-up or the hand-over
                await asyncio.wait(self.pending, timeout=30)
        if self.handed_over.is_set():
            self.store.set_led_by(self.interview_id, "ai_handover")
            return HANDOVER
        try:
            self.store.transition(self.interview_id, Status.COMPLETED, reason=f"recruiter call ended ({ending})")
        except IllegalTransition as exc:
            log.warning("status not stored: %s", exc, extra={"interview_id": self.interview_id})
        return self.store.get_interview(self.interview_id).status

    def leg_hang_up(self) -> None:
        task = asyncio.create_task(self.leg.hang_up("max_call_s"))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _relay(self, frame: AudioFrame) -> None:
        self.send_up(frame.pcm)
        out = AudioFrame(self.recruiter_frames.popleft(), self.rate) if self.recruiter_frames else silence(self.rate)
        self.leg.send(out)
        if self.recorder:
            self.recorder.candidate(frame.pcm)
            self.recorder.agent(out.pcm)
        self.listeners["candidate"].push(frame)
        self.listeners["recruiter"].push(out)

    # -- turns ------------------------------------------------------------------------------------------------
    def _on_turn(self, role: str, frames: list[AudioFrame], start_ms: int, end_ms: int) -> None:
        task = asyncio.create_task(self._store_turn(role, frames, start_ms, end_ms))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _store_turn(self, role: str, frames: list[AudioFrame], start_ms: int, end_ms: int) -> None:
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(self.engines.executor, transcribe, self.engines, frames)
        if not words_of(text):
            return
        try:
            turn = self.store.add_turn(self.interview_id, role=role, text=text, start_ms=start_ms, end_ms=end_ms)
        except Conflict as exc:  # the interview ended meanwhile (cancelled from the API)
            log.warning("turn not stored: %s", exc, extra={"interview_id": self.interview_id})
            return
        if role == "recruiter":
            self._note_question(turn.turn_number, text)
        else:
            await self._evaluate(turn.turn_number, text)

    def _note_question(self, number: int, text: str) -> None:
        """A recruiter's turn asks the factor whose question it matches; else the copilot's suggestion."""
        matched = match_question(text, self.template)
        if matched is None:
            covered = covered_factors(self.store.turn_evaluations(self.interview_id).values())
            factor = next_factor(self.template, covered)
            matched = (factor.name, factor.questions[0]) if factor is not None else None
        if matched is None:  # every factor covered: small talk or the goodbye
            self.store.set_turn_evaluation(self.interview_id, number, role="recruiter", kind="remark")
            return
        self.asked = matched
        self.store.set_turn_evaluation(self.interview_id, number, role="recruiter", kind="question",
                                       factor=matched[0], question=matched[1])

    async def _evaluate(self, number: int, text: str) -> None:
        if self.asked is None or len(words_of(text)) < MIN_ANSWER_WORDS:
            self.store.set_turn_evaluation(self.interview_id, number, role="candidate", kind="backchannel")
            return
        factor_name, question = self.asked
        factor = next(f for f in self.template.factors if f.name == factor_name)
        evaluation = await asyncio.get_running_loop().run_in_executor(
            self.engines.executor, evaluate_answer, text, question, factor, self.template)
        self.store.set_turn_evaluation(self.interview_id, number, role="candidate", kind="answer",
                                       factor=factor_name, question=question, evaluation=evaluation)


def evaluate_answer(text: str, question: str, factor: EvaluationFactor, template: InterviewTemplate) -> dict:
    """The same per-answer evaluator as AI interviews and posted turns (understanding.evaluator)."""
    from understanding.evaluator import load_evaluator
    return load_evaluator().evaluate(text, question, factor, siblings=template.factors).to_dict()
