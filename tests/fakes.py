"""Fakes for the voice engine's models and its line: STT, TTS, LLM, VAD, a leg and a candidate.

They let the real engine (InterviewSession, Playback, the Endpointer, the interviewer, bridge, the store)
run a whole call in a second or two, deterministically, with no speech model. The trick is one shared
`FakeVoice`: every word it makes is 240 ms of a loud square wave whose first samples say which phrase,
word and frame they are. The fake TTS speaks with it, the fake candidate speaks and listens with it, and
the fake STT "transcribes" by reading the words back. So a test knows exactly which words crossed the
line in each direction, and what the engine stored can be compared with what was heard.

Everything runs at one rate (8 kHz by default, as on the phone): a resampler would smear the codes.
Real-model tests (tests/test_session.py and the channel tests) stay for the real paths.
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterator, Sequence

import numpy as np

from dialer.leg import Dtmf, Leg, LegEvent, LineEnded, bridge
from dialer.simulator import rms
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame, frames_of, samples_per_frame, silence
from ivr.llm.base import ChatMessage, ChatModel
from ivr.session import STT_LAG_FRAMES, InterviewSession
from ivr.stt.base import SpeechToText, SttStream, Transcript, Word
from ivr.tts.base import TextToSpeech
from ivr.vad import _WEBRTC_HANGOVER_MS  # the fake VAD holds on like the real one, so endpoints match

FRAMES_PER_WORD = 12  # 240 ms: one word passes min_speech_ms (200); "Mm-hmm." stays under barge_in_ms (600)
WORD_MS = FRAMES_PER_WORD * 20
AMPLITUDE = 4000  # far above FakeVoiceActivity's threshold; digital silence is 0
_MARK = 12345  # first sample of every coded frame


@dataclass(frozen=True)
class Heard:
    """What one coded frame carries."""
    phrase: int
    word: int
    frame: int  # within the word

    @property
    def ends_word(self) -> bool:
        return self.frame == FRAMES_PER_WORD - 1


class FakeVoice:
    """Text to audio and back. Each text gets a phrase number the first time it is spoken (the same number
    every later time), and its audio is a block of frames per word coded (mark, phrase, word, frame)."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self._frame = samples_per_frame(sample_rate)
        self.phrases: list[str] = []  # phrase number -> the text that made it
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()  # the TTS speaks on the engines' threads

    def audio(self, text: str) -> np.ndarray:
        """int16 samples of `text`: FRAMES_PER_WORD frames per word, nothing before or after."""
        with self._lock:
            if text not in self._numbers:
                self._numbers[text] = len(self.phrases)
                self.phrases.append(text)
            phrase = self._numbers[text]
        wave = np.where((np.arange(self._frame) // 4) % 2 == 0, AMPLITUDE, -AMPLITUDE).astype(np.int16)
        frames = []
        for word in range(len(text.split())):
            for index in range(FRAMES_PER_WORD):
                frame = wave.copy()
                frame[:4] = (_MARK, phrase, word, index)
                frames.append(frame)
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def read(self, frame: AudioFrame) -> Heard | None:
        """The word a frame belongs to; None for silence or anything not made here."""
        samples = frame.as_array()
        if len(samples) < 4 or samples[0] != _MARK or not 0 <= samples[1] < len(self.phrases):
            return None
        return Heard(int(samples[1]), int(samples[2]), int(samples[3]))

    def word(self, heard: Heard) -> str:
        return self.phrases[heard.phrase].split()[heard.word]


class FakeVoiceActivity:
    """Energy over a threshold is speech, held on after it stops as long as WebRTC VAD holds on at that
    aggressiveness (the real Endpointer back-dates a turn's end by that much). Same interface as
    ivr.vad.WebRtcVoiceActivity: `VoiceEngines(vad=FakeVoiceActivity)`."""

    def __init__(self, aggressiveness: int, sample_rate: int, threshold: float = 500.0) -> None:
        self.sample_rate = sample_rate
        self._threshold = threshold
        self._hangover_frames = _WEBRTC_HANGOVER_MS[aggressiveness] // 20
        self._left = 0

    def is_speech(self, frame: AudioFrame) -> bool:
        if rms(frame) > self._threshold:
            self._left = self._hangover_frames
            return True
        if self._left:
            self._left -= 1
            return True
        return False


class FakeStt(SpeechToText):
    """Transcribes FakeVoice audio exactly: a word counts once any frame of it was pushed; a partial comes
    as each word ends (like a real streaming recogniser, a word behind), unless `partials` is off (Whisper
    gives none for short speech). Partials reach the session from its STT thread, so on a line faster than
    real time they may land a few frames later than the words they follow. `final_delay_s` makes the
    final transcript late (a loaded machine)."""
    name = "fake-stt"

    def __init__(self, voice: FakeVoice, *, final_delay_s: float = 0.0, partials: bool = True) -> None:
        self.voice, self.sample_rate, self.final_delay_s = voice, voice.sample_rate, final_delay_s
        self.partials = partials

    def open_stream(self) -> SttStream:
        return _FakeSttStream(self)


class _FakeSttStream(SttStream):
    def __init__(self, stt: FakeStt) -> None:
        self._stt = stt
        self._words: dict[tuple[int, int], Word] = {}  # in the order first heard
        self._ms = 0

    def push(self, frame: AudioFrame) -> Transcript | None:
        self._ms += 20
        heard = self._stt.voice.read(frame)
        if heard is None:
            return None
        key = (heard.phrase, heard.word)
        if key not in self._words:
            self._words[key] = Word(self._stt.voice.word(heard), self._ms - 20, self._ms - 20 + WORD_MS, 1.0)
        return Transcript(self._text(), False) if heard.ends_word and self._stt.partials else None

    def finish(self) -> Transcript:
        time.sleep(self._stt.final_delay_s)  # on the session's STT thread, like a real decode
        text = self._text()
        return Transcript(text, True, tuple(self._words.values()), confidence=1.0 if text else None)

    def _text(self) -> str:
        return " ".join(word.text for word in self._words.values())


class FakeTts(TextToSpeech):
    """Speaks with a FakeVoice (which remembers which text made which audio): length follows the word count."""
    name = "fake-tts"

    def __init__(self, voice: FakeVoice) -> None:
        self.voice, self.sample_rate = voice, voice.sample_rate

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        yield self.voice.audio(text)


class FakeChatModel(ChatModel):
    """Scripted replies, one per request in order (then ""), each after `delay_s`; `error` is raised
    instead when set. `requests` keeps every prompt."""
    name = "fake-llm"

    def __init__(self, replies: Sequence[str] = (), *, delay_s: float = 0.0,
                 error: BaseException | None = None) -> None:
        self._replies = list(replies)
        self.delay_s, self.error = delay_s, error
        self.requests: list[list[ChatMessage]] = []

    async def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 80, temperature: float = 0.0,
                          seed: int = 0, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        self.requests.append(list(messages))
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        reply = self._replies.pop(0) if self._replies else ""
        for index, piece in enumerate(reply.split(" ")):
            yield piece if index == 0 else " " + piece


def fake_engines(voice: FakeVoice | None = None, *, llm: ChatModel | None = None, llm_deadline_s: float = 0.9,
                 stt_delay_s: float = 0.0, stt_partials: bool = True) -> VoiceEngines:
    """VoiceEngines of fakes sharing one voice (engines.tts.voice)."""
    voice = voice or FakeVoice()
    return VoiceEngines(stt=FakeStt(voice, final_delay_s=stt_delay_s, partials=stt_partials),
                        tts=FakeTts(voice), llm=llm, llm_deadline_s=llm_deadline_s, vad=FakeVoiceActivity,
                        executor=ThreadPoolExecutor(4, "fake-engine"))


# -- the candidate and the line ------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One thing the candidate says, and when: after the AI has finished and `pause_ms` of quiet, or over
    the AI once it is saying a sentence containing `over` and `after_words` of that sentence were heard."""
    text: str
    pause_ms: int = 500
    over: str | None = None
    after_words: int = 0
    hang_up_after_words: int | None = None  # the line drops once this many of its words are said
    keys: str = ""  # pressed instead (DTMF), one key a frame
    pause_after_words: int | None = None  # stops to think after this many words ...
    mid_pause_ms: int = 0  # ... this long, then says the rest


HANG_UP = Line("", hang_up_after_words=0)  # hangs up once the AI has finished (and a pause)


@dataclass
class Said:
    text: str  # the words actually said (fewer than the line's if it hung up mid-way)
    start_ms: int
    end_ms: int
    over_ai: bool  # begun while the AI was talking


@dataclass
class FakeCandidate:
    """Says its lines in order, then stays silent. Listens to every frame: `heard` is each AI sentence as
    far as it was heard, word for word (a word counts once its last frame was heard)."""
    voice: FakeVoice
    lines: Sequence[Line]
    said: list[Said] = field(default_factory=list)
    heard: list[tuple[int, list[str]]] = field(default_factory=list)  # (phrase, words heard), in order
    now_ms: int = 0
    _speaking: list[AudioFrame | Dtmf] = field(default_factory=list)
    _hang_up_when_done: bool = False
    _ai_spoke: bool = False  # since our last line ended
    _quiet_ms: int = 0

    def step(self, heard: AudioFrame) -> AudioFrame | Dtmf | None:
        """Hear one 20 ms frame from the AI, say one back (or press a key); None hangs up."""
        self.now_ms += 20
        word = self.voice.read(heard)
        self._listen(word)
        if not self._speaking and not self._hang_up_when_done:
            self._maybe_begin(word)
        if self._speaking:
            self.said[-1].end_ms = self.now_ms + 20  # the end of the frame being said
            return self._speaking.pop(0)
        return None if self._hang_up_when_done else silence(self.voice.sample_rate)

    def _maybe_begin(self, word: Heard | None) -> None:
        line = self.lines[len(self.said)] if len(self.said) < len(self.lines) else None
        if line is None or not self._time_for(line, word):
            return
        words = " ".join(line.text.split()[:line.hang_up_after_words])
        self._hang_up_when_done = line.hang_up_after_words is not None
        self.said.append(Said(words, self.now_ms, self.now_ms, over_ai=word is not None))
        self._ai_spoke = False
        self._speaking = self._frames_of(words, line)
        self._speaking += [Dtmf(key) for key in line.keys]

    def _frames_of(self, words: str, line: Line) -> list[AudioFrame | Dtmf]:
        rate = self.voice.sample_rate
        if not words:
            return []
        if line.pause_after_words is None:
            return frames_of(self.voice.audio(words), rate)
        first, rest = words.split()[:line.pause_after_words], words.split()[line.pause_after_words:]
        return [*frames_of(self.voice.audio(" ".join(first)), rate),
                *(silence(rate) for _ in range(line.mid_pause_ms // 20)),
                *frames_of(self.voice.audio(" ".join(rest)), rate)]

    @property
    def speaking(self) -> bool:
        return bool(self._speaking)

    def heard_text(self) -> str:
        """Every AI word heard, in order."""
        return " ".join(word for _, words in self.heard for word in words)

    def _listen(self, word: Heard | None) -> None:
        if word is None:
            self._quiet_ms += 20
            return
        # AI speech under our own words is no new prompt to answer (it stops once it hears us).
        self._ai_spoke = self._ai_spoke or not self._speaking
        self._quiet_ms = 0
        if not self.heard or self.heard[-1][0] != word.phrase or len(self.heard[-1][1]) > word.word:
            self.heard.append((word.phrase, []))
        if word.ends_word:
            self.heard[-1][1].append(self.voice.word(word))

    def _time_for(self, line: Line, word: Heard | None) -> bool:
        if line.over is None:
            return self._ai_spoke and self._quiet_ms >= line.pause_ms
        return word is not None and line.over in self.voice.phrases[word.phrase] \
            and len(self.heard[-1][1]) >= line.after_words


class FakeLeg(Leg):
    """The line between a FakeCandidate and a session, for dialer.leg.bridge, in media time: each frame the
    candidate says answers the frame it last heard, and while the session has no audio ready yet (it is
    working out a reply) the line waits, as dialer.simulator's in-process line does. So a call takes as
    long as its computing, not its audio, and sees the same media-time timers as a real call."""

    def __init__(self, session: InterviewSession, candidate: FakeCandidate, *,
                 max_media_ms: int = 20 * 60_000, transfers: bool = False) -> None:
        self.session, self.candidate = session, candidate
        self.sample_rate = session.sample_rate
        self.max_media_ms, self.transfers = max_media_ms, transfers
        self.clears = 0  # ClearPlayback commands obeyed (barge-ins)
        self.hung_up: str | None = None  # our side's hang-up, with the final status
        self.ended: str | None = None  # the candidate's side ended the line (remote_hangup, media_limit)
        self._heard = silence(self.sample_rate)

    async def receive(self) -> LegEvent:
        if self.ended is None:
            await self._until_audio_ready()
            if self.session.media_ms >= self.max_media_ms:
                self.ended = "media_limit"
        if self.ended is not None:
            return LineEnded(self.ended)
        frame = self.candidate.step(self._heard)
        self._heard = silence(self.sample_rate)
        if frame is None:
            self.ended = "remote_hangup"
            return LineEnded(self.ended)
        return frame

    def send(self, frame: AudioFrame) -> None:
        self._heard = frame

    def clear(self) -> None:
        self.clears += 1

    async def hang_up(self, reason: str) -> None:
        self.hung_up = reason

    async def transfer(self) -> bool:
        return self.transfers

    async def _until_audio_ready(self, limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        await asyncio.sleep(0)
        # Like the real time of a real line, which gives the recogniser time to keep up with the words (in a
        # pause, where the turn may end, to the last frame and its partial transcript).
        lag = STT_LAG_FRAMES if self.candidate.speaking else 0
        while self.session.waiting_for_audio or self.session.stt_backlog > lag:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the session made no audio for {limit_s} s")
            await asyncio.sleep(0.002)


async def talk(session: InterviewSession, candidate: FakeCandidate, **leg_options) -> FakeLeg:
    """Run the whole call through dialer.leg.bridge; the leg (with `.status`) once it has ended."""
    leg = FakeLeg(session, candidate, **leg_options)
    leg.status = await bridge(session, leg)
    return leg
