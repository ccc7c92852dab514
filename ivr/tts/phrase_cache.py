"""Fixed phrases (greeting, consent, re-prompts, goodbye, acknowledgements) synthesized once per call
leg rate, so they play with no synthesis delay; with a disk folder, once per machine: a new media worker
reads them instead of synthesizing them while its first calls wait."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np

from ivr.resample import resample
from ivr.tts.base import TextToSpeech

log = logging.getLogger("phonescreen.ivr")

# Short fillers for when a reply is late; warm these with the template's own phrases.
# Not "Thank you.": the interviewer's own replies often start with it.
ACKNOWLEDGEMENTS = ("Okay.", "Alright.", "Got it.", "Right.", "I see.")


class PhraseCache:
    """Whole phrases as read-only int16 arrays at `sample_rate`, least recently used dropped first."""

    def __init__(self, tts: TextToSpeech, sample_rate: int, max_phrases: int = 256,
                 disk_dir: Path | None = None) -> None:
        self._tts = tts
        self.sample_rate = sample_rate
        # On disk only for an engine that says what its audio depends on (a fake TTS does not).
        self._disk_dir = disk_dir if getattr(tts, "identity", None) is not None else None
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
        audio = self._read(text)
        if audio is None:
            chunks = list(self._tts.synthesize(text))
            pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            audio = resample(pcm, self._tts.sample_rate, self.sample_rate)
            self._write(text, audio)
        audio.flags.writeable = False  # shared by every caller
        return audio

    def _path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self._tts.identity}|{self.sample_rate}|{text}".encode()).hexdigest()[:40]
        return self._disk_dir / f"{key}.npy"

    def _read(self, text: str) -> np.ndarray | None:
        if self._disk_dir is None:
            return None
        try:
            audio = np.load(self._path(text), allow_pickle=False)
        except (OSError, ValueError):  # not made yet, or a torn file: made again
            return None
        return audio if audio.dtype == np.int16 and audio.ndim == 1 else None

    def _write(self, text: str, audio: np.ndarray) -> None:
        """Atomically (a temporary file renamed): a process reading it never sees half a phrase."""
        if self._disk_dir is None:
            return
        path = self._path(text)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
        try:
            self._disk_dir.mkdir(parents=True, exist_ok=True)
            np.save(temporary, audio, allow_pickle=False)
            os.replace(temporary, path)
        except OSError as exc:  # a full or read-only disk costs speed, never the call
            log.warning("phrase not kept on disk: %s", exc)
            temporary.unlink(missing_ok=True)
