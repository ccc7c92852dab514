"""Fixed phrases (greeting, consent, re-prompts, goodbye, acknowledgements) synthesized once per call
leg rate, so they play with no synthesis delay."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable

import numpy as np

from ivr.resample import resample
from ivr.tts.base import TextToSpeech

# Short fillers for when a reply is late; warm these with the template's own phrases.
# Not "Thank you.": the interviewer's own replies often start with it.
ACKNOWLEDGEMENTS = ("Okay.", "Alright.", "Got it.", "Right.", "I see.")


class PhraseCache:
    """Whole phrases as read-only int16 arrays at `sample_rate`, least recently used dropped first."""

    def __init__(self, tts: TextToSpeech, sample_rate: int, max_phrases: int = 256) -> None:
        self._tts = tts
        self.sample_rate = sample_rate
        self._max_phrases = max_phrases
        self._phrases: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts, never held while synthesizing
        # One lock per phrase being made: two threads asking for one phrase synthesize it once, while other
        # phrases (another call's greeting, a warm-up) are made in parallel rather than queued behind it.
        self._making: dict[str, threading.Lock] = {}

    def get(self, text: str) -> np.ndarray:
        """The phrase's audio, synthesized on first use; the same array object on every later call."""
        with self._lock:
            audio = self._cached(text)
            if audio is not None:
                return audio
            making = self._making.setdefault(text, threading.Lock())
        with making:
            with self._lock:
                audio = self._cached(text)
                if audio is not None:  # made by the thread we waited for
                    return audio
            audio = self._synthesize(text)
            with self._lock:
                self._phrases[text] = audio
                if len(self._phrases) > self._max_phrases:
                    self._phrases.popitem(last=False)
                self._making.pop(text, None)
            return audio

    def _cached(self, text: str) -> np.ndarray | None:
        audio = self._phrases.get(text)
        if audio is not None:
            self._phrases.move_to_end(text)
        return audio

    def warm(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.get(text)

    def __len__(self) -> int:
        return len(self._phrases)

    def _synthesize(self, text: str) -> np.ndarray:
        chunks = list(self._tts.synthesize(text))
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        audio = resample(pcm, self._tts.sample_rate, self.sample_rate)
        audio.flags.writeable = False  # shared by every caller
        return audio
