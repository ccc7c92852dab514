"""A simulated candidate: listens to the AI like a person on the phone and speaks scripted answers in a
Piper voice sent through G.711, after the AI has finished and a natural pause. Scripts can interrupt,
fall silent or hang up early. The demo, the tests and the benchmarks call it; `run_call` connects one to
an InterviewSession in-process over a `SimulatedLine` (a Leg, joined by the same `bridge` as every
channel), and the SIP channel puts it behind a real phone.

An answer may pause mid-way: "<1200>" in its text is 1,200 ms of silence there (a candidate thinking, the
turn not over); each SpokenAnswer notes where its pauses lay, so a benchmark can tell whether the AI spoke
into one.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path

import numpy as np

from config.settings import TtsSettings
from dialer.leg import Leg, LegEvent, LineEnded, bridge
from ivr.frames import AudioFrame, frames_of, silence
from ivr.g711 import ulaw_decode, ulaw_encode
from ivr.resample import resample
from ivr.session import STT_LAG_FRAMES, ClearPlayback, Hangup

CANDIDATE_LENGTH_SCALE = 1.1  # slower than the interviewer, so the two voices differ in recordings
SPEECH_RMS = 300.0  # louder than this is the AI talking (line noise after G.711 is far below)
BACKCHANNEL = "Mm-hmm."
PAUSE_MARK = re.compile(r"\s*<(\d+)>\s*")  # "<1200>" in an answer: that many ms of silence mid-answer
MID_PAUSE_MIN_MS = 600  # quiet this long between an answer's words is a mid-answer pause (Piper's own are shorter)


@cache
def _candidate_tts():
    from ivr.tts.piper_tts import PiperTts
    return PiperTts(TtsSettings(length_scale=CANDIDATE_LENGTH_SCALE))


def _cache_dir() -> Path:
    root = os.environ.get("PHONESCREEN_TEST_AUDIO_CACHE") or Path(tempfile.gettempdir()) / "phonescreen-test-audio"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def candidate_audio(text: str, rate: int = 8000, *, telephone: bool = True) -> np.ndarray:
    """Piper speech of `text` as int16 at `rate`; telephone=True adds the G.711 mu-law round trip.
    Cached on disk, so each sentence is synthesized once per machine."""
    key = hashlib.sha256(f"{text}\0{rate}\0{telephone}\0{CANDIDATE_LENGTH_SCALE}".encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.npy"
    if path.exists():
        return np.load(path)
    tts = _candidate_tts()
    pcm = resample(np.concatenate(list(tts.synthesize(text))), tts.sample_rate, rate)
    if telephone:
        pcm = ulaw_decode(ulaw_encode(pcm))
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # write then rename: readers never see half a file
    with open(partial, "wb") as out:
        np.save(out, pcm)
    os.replace(partial, path)
    return pcm


def answer_audio(text: str, rate: int = 8000) -> np.ndarray:
    """An answer's speech (candidate_audio), with each "<ms>" mark in its text as that much silence."""
    parts = PAUSE_MARK.split(text)  # words, ms, words, ms, words ...
    pieces = [candidate_audio(part, rate) if i % 2 == 0 else np.zeros(int(part) * rate // 1000, dtype=np.int16)
              for i, part in enumerate(parts) if part.strip()]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def mid_pauses(loud: list[int], frame_ms: int = 20) -> list[tuple[int, int]]:
    """Quiet stretches of at least MID_PAUSE_MIN_MS between loud frames (their indices, in order), as
    (start, end) ms from the first frame."""
    return [((a + 1) * frame_ms, b * frame_ms) for a, b in zip(loud, loud[1:])
            if (b - a - 1) * frame_ms >= MID_PAUSE_MIN_MS]


@dataclass(frozen=True)
class CandidateScript:
    name: str
    answers: tuple[str, ...]  # one per thing the AI asks; the first is usually the consent
    pause_ms: int = 700  # after the AI has stopped, before answering
    ai_done_ms: int = 900  # this much quiet after AI speech means it has finished
    interrupt_answer: int | None = None  # this answer is spoken over the AI (barge-in) ...
    interrupt_after_ms: int = 1500  # ... once the AI has been talking this long
    silent_from: int | None = None  # from this answer on, say nothing (a silent caller)
    hang_up_after: int | None = None  # hang up once this many answers are given
    hang_up_after_reply: bool = False  # ... and the AI has replied to the last one (a line that drops later)
    backchannel_after_ms: int | None = None  # say "Mm-hmm." once, this far into the AI's first speech
    hold_before: int | None = None  # before this answer, think in silence ...
    hold_ms: int = 0  # ... this long after the AI first finished asking (its re-prompts do not shorten it)


# Candidates the demo and the benchmarks call: concrete answers, vague ones that earn follow-ups, and
# one who hangs up part-way through.
SAMPLE_SCRIPTS: tuple[CandidateScript, ...] = (
    CandidateScript("concrete", (
        "Yes, that's fine, go ahead.",
        "I'd go through the bill with them line by line. Last month they had a ten dollar credit, and this "
        "month there's a charge for an international call, so it's twenty dollars more. Then I'd ask if that "
        "matches what they see.",
        "Last March a customer called about a double charge and he was really upset. I let him finish, told "
        "him I understood why he was angry, refunded the forty dollars on the call and emailed him the next day.",
        "First I'd confirm the address and check the delivery photo with the customer. If it went to the wrong "
        "door I'd open a claim with the carrier, and if there's no proof I'd send a replacement and tell them "
        "when it arrives.",
        "I can work evenings and weekends, and rotating shifts are fine. At my last job I didn't miss a single "
        "shift in two years.",
    )),
    CandidateScript("vague", (
        "Sure.",
        "I guess I'm pretty good at talking.",
        "Last month a customer was confused by her bill, so I explained each charge in plain words, showed "
        "her the late fee, and asked her to tell me back what changed.",
        "It depends on the person really.",
        "Once a client was angry because his order was late. I let him talk, told him I understood, tracked "
        "the package with him and called him back the same afternoon.",
        "Last week a customer's router would not connect, so I asked her which lights were on, reset it step "
        "by step with her, and it worked before we hung up.",
        "Mostly evenings, maybe weekends too.",
        "Yes, I can work Saturdays and Sundays and most evenings, and I have a car, so I have never been late "
        "to a shift.",
    )),
    CandidateScript("hangs up", (
        "Yes, go ahead.",
        "I keep my sentences short and I always check that the caller has understood me.",
        "Sorry, I have to go now.",
    ), hang_up_after=3),
)


@dataclass
class SpokenAnswer:
    text: str
    start_ms: int
    end_ms: int  # when its audio ended, trailing quiet included
    barged_in: bool
    last_word_ms: int = 0  # when its last loud frame ended: where "the candidate stopped speaking"
    pauses_ms: list[tuple[int, int]] = field(default_factory=list)  # mid-answer pauses: quiet from, to


@dataclass
class SimulatedCandidate:
    script: CandidateScript
    sample_rate: int = 8000
    said: list[SpokenAnswer] = field(default_factory=list)
    now_ms: int = 0
    _speaking: list[AudioFrame] = field(default_factory=list)
    _heard_ai: bool = False
    _ai_talking_ms: int = 0
    _quiet_ms: int = 0
    _wait_ms: int | None = None
    _backchannel_done: bool = False
    _hold_until: int | None = None  # media time the held answer may start

    def step(self, heard: AudioFrame) -> AudioFrame | None:
        """Hear one 20 ms frame from the AI, say one back. None means the candidate hangs up."""
        self.now_ms += 20
        loud = rms(heard) > SPEECH_RMS
        if loud:
            self._heard_ai, self._quiet_ms = True, 0
            self._ai_talking_ms += 20
        else:
            self._quiet_ms += 20
            if self._quiet_ms >= self.script.ai_done_ms:
                self._ai_talking_ms = 0
        if self._speaking:
            frame = self._speaking.pop(0)
            if not self._speaking and self.said and self.said[-1].end_ms == self.said[-1].start_ms:
                self.said[-1].end_ms = self.now_ms
            return frame
        if self._hangs_up_now():
            return None
        index = len(self.said)
        if self._should_backchannel():
            self._speaking = frames_of(candidate_audio(BACKCHANNEL, self.sample_rate), self.sample_rate)
            self._backchannel_done = True
            return self._speaking.pop(0)
        if self._should_interrupt(index) or self._should_answer():
            self._start_answer(index, barged_in=loud)
            return self._speaking.pop(0)
        return silence(self.sample_rate)

    def _hangs_up_now(self) -> bool:
        limit = self.script.hang_up_after
        if limit is None or len(self.said) < limit:
            return False
        if self.script.hang_up_after_reply:
            return self._heard_ai and self._quiet_ms >= self.script.ai_done_ms
        return self._quiet_ms >= self.script.pause_ms

    def _should_backchannel(self) -> bool:
        at = self.script.backchannel_after_ms
        return at is not None and not self._backchannel_done and self._ai_talking_ms >= at

    def _should_interrupt(self, index: int) -> bool:
        return (index == self.script.interrupt_answer and index < len(self.script.answers)
                and self._ai_talking_ms >= self.script.interrupt_after_ms)

    def _should_answer(self) -> bool:
        index = len(self.said)
        if index >= len(self.script.answers) or (self.script.silent_from is not None
                                                 and index >= self.script.silent_from):
            return False
        if not self._heard_ai or self._quiet_ms < self.script.ai_done_ms:
            self._wait_ms = None
            return False
        if index == self.script.hold_before:
            if self._hold_until is None:
                self._hold_until = self.now_ms + self.script.hold_ms
            if self.now_ms < self._hold_until:
                return False
        if self._wait_ms is None:
            self._wait_ms = self.script.pause_ms
        self._wait_ms -= 20
        return self._wait_ms <= 0

    def _start_answer(self, index: int, *, barged_in: bool) -> None:
        text = self.script.answers[index]
        self._speaking = frames_of(answer_audio(text, self.sample_rate), self.sample_rate)
        loud = [i for i, frame in enumerate(self._speaking) if rms(frame) > SPEECH_RMS]
        last_word_ms = self.now_ms + 20 * (loud[-1] + 1 if loud else 0)
        pauses = [(self.now_ms + a, self.now_ms + b) for a, b in mid_pauses(loud)]
        self.said.append(SpokenAnswer(text, self.now_ms, self.now_ms, barged_in, last_word_ms, pauses))
        self._heard_ai, self._wait_ms = False, None


def scheduled_interview(store, template, *, channel: str = "sip", name: str = "Ana Ruiz",
                        phone: str = "+14155550100") -> str:
    """A stored, scheduled interview of a new position from `template` for a simulated candidate; its id."""
    position = store.create_position(template)
    candidate, _ = store.upsert_candidate({"name": name, "phone": phone, "timezone": "UTC"})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel=channel,
                                          expires_at=store.clock() + timedelta(days=1))
    return interview.id


def connected_interview(store, template, *, name: str = "Ana Ruiz", phone: str = "+14155550100") -> str:
    """A stored interview for a simulated candidate whose call has just connected (in_progress), as the
    SIP leg leaves it before the conversation starts; returns its id."""
    interview_id = scheduled_interview(store, template, name=name, phone=phone)
    for status in ("dialing", "in_progress"):
        store.transition(interview_id, status)
    return interview_id


def rms(frame: AudioFrame) -> float:
    return float(np.sqrt(np.mean(frame.as_array().astype(np.float64) ** 2)))


class SimulatedLine(Leg):
    """The line to a simulated candidate in-process, as a Leg for `bridge`: each frame the candidate says
    answers the frame it last heard. `realtime` paces frames on the wall clock like a real leg (for
    benchmarks); otherwise the line waits whenever the session is still working out what to say (or its
    speech recogniser is behind), so tests run faster than real time and see the same media-time timers.
    `controls` collects what the session asked the line to do (clear, hang up)."""

    def __init__(self, candidate: SimulatedCandidate, *, realtime: bool = False, sample_rate: int = 8000,
                 max_media_ms: int = 15 * 60_000, controls: list | None = None) -> None:
        self.candidate, self.realtime, self.sample_rate = candidate, realtime, sample_rate
        self.session = None  # set by `bridge` (attach)
        self.max_media_ms, self.controls = max_media_ms, controls
        self.ended: str | None = None
        self._heard = silence(self.sample_rate)
        self._started = time.monotonic()

    def attach(self, session) -> None:
        self.session = session
        self._started = time.monotonic() - session.media_ms / 1000

    async def receive(self) -> LegEvent:
        if self.ended is None:
            if self.realtime:
                await asyncio.sleep(max(0.0, self._started + self.session.media_ms / 1000 - time.monotonic()))
            else:
                await _until_ready(self.session)
            if self.session.media_ms >= self.max_media_ms:
                self.ended = "media_limit"
        if self.ended is not None:
            return LineEnded(self.ended)
        said = self.candidate.step(self._heard)
        self._heard = silence(self.sample_rate)
        if said is None:  # the script hangs up
            self.ended = "remote_hangup"
            return LineEnded(self.ended)
        return said

    def send(self, frame: AudioFrame) -> None:
        self._heard = frame

    def clear(self) -> None:
        self._note(ClearPlayback())

    async def hang_up(self, reason: str) -> None:
        self._note(Hangup(reason))

    def _note(self, command: object) -> None:
        if self.controls is not None:
            self.controls.append(command)


async def run_call(session, candidate: SimulatedCandidate, *, realtime: bool = False,
                   max_media_ms: int = 15 * 60_000, controls: list | None = None) -> str:
    """Connect a candidate to an InterviewSession over a SimulatedLine, like a phone line; returns the
    interview's final status."""
    line = SimulatedLine(candidate, realtime=realtime, sample_rate=session.sample_rate, max_media_ms=max_media_ms,
                         controls=controls)
    return await bridge(session, line, silence_timeout_s=120)


async def _until_ready(session, limit_s: float = 60.0) -> None:
    """Fast mode: wait while the session has no audio ready yet for the candidate to hear, or while its
    speech recogniser is behind the line (it is decoding at a pause): in real time it would have kept up."""
    deadline = time.monotonic() + limit_s
    await asyncio.sleep(0)
    while session.waiting_for_audio or session.stt_backlog > STT_LAG_FRAMES:
        if time.monotonic() > deadline:
            raise TimeoutError("the session produced no audio for 60 s")
        await asyncio.sleep(0.005)
