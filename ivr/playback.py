"""What the AI is saying right now: queued 20 ms frames for one utterance at a time, and an account of
how much of each sentence was actually played, so a barge-in stores only the words the candidate heard.

It also counts underruns: frames the line pulled while an utterance that had begun playing was still
going (not paused, not interrupted, more to come) and nothing was queued, i.e. silence the candidate
hears inside one utterance because synthesis fell behind. `underruns()` gives the longest such run of
each utterance, for benchmarks (bench/sip_latency.py)."""
from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from ivr.frames import AudioFrame, silence


@dataclass
class Sentence:
    text: str
    samples: int = 0  # synthesized so far
    played: int = 0
    complete: bool = False  # synthesis finished


@dataclass
class Utterance:
    sentences: list[Sentence] = field(default_factory=list)
    started_ms: int | None = None  # media time of its first played frame
    ended_ms: int | None = None
    interrupted: bool = False
    closed: bool = False  # no more sentences will be added
    reply_from: int | None = None  # index of the first sentence of the reply (after an acknowledgement)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # played to the end, interrupted or replaced
    number: int = 0  # 1 for the call's first utterance (the greeting), then 2, 3 ...
    longest_underrun_ms: int = 0  # the longest silence between two of its played frames, synthesis behind
    join_underrun_ms: int = 0  # ... the one right before the reply's first frame, after an acknowledgement
    underrun_ms: int = 0  # the silence running now; counted only once a frame follows it

    def note_frame(self, sentence: "Sentence") -> None:
        """A frame of `sentence` is played: a silence before it that lay inside the utterance is a gap."""
        if self.underrun_ms:
            self.longest_underrun_ms = max(self.longest_underrun_ms, self.underrun_ms)
            reply = self.sentences[self.reply_from] if self.reply_from and self.reply_from < len(self.sentences) \
                else None
            if sentence is reply and not sentence.played:
                self.join_underrun_ms = self.underrun_ms
        self.underrun_ms = 0

    def spoken_text(self) -> str:
        """The words played so far; a sentence cut mid-way keeps the share of words that was played."""
        words: list[str] = []
        for sentence in self.sentences:
            parts = sentence.text.split()
            if sentence.samples and sentence.played >= sentence.samples and sentence.complete:
                words += parts
            elif sentence.played:
                share = sentence.played / max(sentence.samples, 1)
                words += parts[:math.floor(len(parts) * share)]
                break
            else:
                break
        return " ".join(words)

    @property
    def full_text(self) -> str:
        return " ".join(s.text for s in self.sentences)


class Playback:
    """Frames queued by the dialog task, pulled one per 20 ms by the leg. Runs on the event loop thread."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._frames: deque[tuple[AudioFrame, Sentence]] = deque()
        self.current: Utterance | None = None
        self.paused = False  # the candidate started talking: hold the rest until we know it's a barge-in
        self.begun = 0  # utterances begun so far: tells a new utterance from the one before
        self._finished: list[Utterance] = []  # replaced utterances, for underruns()

    @property
    def queued(self) -> int:
        """Frames ready to play."""
        return len(self._frames)

    @property
    def active(self) -> bool:
        """True while an utterance is playing or still being synthesized."""
        return self.current is not None and not self.current_finished

    @property
    def current_finished(self) -> bool:
        u = self.current
        return u is None or u.interrupted or (u.closed and not self._frames
                                              and all(s.complete for s in u.sentences))

    def begin(self) -> Utterance:
        if self.current is not None:
            self.current.done.set()  # replaced: whoever waits on it must not wait for the new one
            self._finished.append(self.current)
        self._frames.clear()
        self.paused = False
        self.begun += 1
        self.current = Utterance(number=self.begun)
        return self.current

    def underruns(self) -> list[dict[str, int]]:
        """Per utterance that played: its number (1 = the greeting), its longest underrun and the one that
        joined an acknowledgement to the reply (ms)."""
        utterances = [*self._finished, *([self.current] if self.current is not None else [])]
        return [{"utterance": u.number, "longest_ms": u.longest_underrun_ms, "join_ms": u.join_underrun_ms}
                for u in utterances if u.started_ms is not None]

    def add_sentence(self, utterance: Utterance, text: str) -> Sentence:
        sentence = Sentence(text)
        utterance.sentences.append(sentence)
        return sentence

    def enqueue(self, utterance: Utterance, sentence: Sentence, frames: list[AudioFrame], *,
                last: bool = False) -> None:
        if utterance is not self.current or utterance.interrupted:
            return  # synthesis finishing after a barge-in, or for a replaced utterance, is dropped
        for frame in frames:
            self._frames.append((frame, sentence))
            sentence.samples += frame.samples
        sentence.complete = sentence.complete or last
        self._settle()

    def close(self, utterance: Utterance) -> None:
        """No more sentences will come for it."""
        utterance.closed = True
        if utterance is self.current:
            self._settle()

    def _settle(self) -> None:
        if self.current is not None and self.current_finished:
            self.current.done.set()

    def pull(self, now_ms: int) -> AudioFrame:
        if not self._frames or self.paused:
            self._count_underrun()
            return silence(self.sample_rate)  # underrun or idle: the line carries silence, never stalls
        frame, sentence = self._frames.popleft()
        if self.current is not None:
            self.current.note_frame(sentence)
        sentence.played += frame.samples
        if self.current is not None:
            if self.current.started_ms is None:
                self.current.started_ms = now_ms
            self.current.ended_ms = now_ms + 20
            self._settle()
        return frame

    def _count_underrun(self) -> None:
        """Silence pulled inside an utterance that has begun and has more to come (not before its first
        frame: that wait is latency, not a gap)."""
        u = self.current
        if u is None or self.paused or u.started_ms is None or self.current_finished:
            return
        u.underrun_ms += 20

    def interrupt(self) -> Utterance | None:
        """Barge-in: drop everything not yet played, at once."""
        # Asked before the frames go: once synthesis is complete, an empty queue would look played out.
        unfinished = self.current is not None and not self.current_finished
        self._frames.clear()
        self.paused = False
        if unfinished:
            self.current.interrupted = True
            self.current.done.set()
            return self.current
        return None
