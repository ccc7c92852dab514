"""Test helpers for the voice engine: real Piper speech as a caller would send it, frames, WER.

Candidate speech comes from the simulated candidate's voice (dialer.simulator.candidate_audio), cached
on disk, so a test session synthesizes each sentence once and later sessions not at all.
"""
from __future__ import annotations

import re
import wave
from collections import Counter
from pathlib import Path

import numpy as np

from dialer.simulator import CANDIDATE_LENGTH_SCALE, candidate_audio
from ivr.frames import AudioFrame, frames_of
from ivr.resample import resample

__all__ = ["CANDIDATE_LENGTH_SCALE", "candidate_audio", "frames_of", "record_shape", "silence_frames", "transcribe_wav",
           "word_error_rate"]

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def silence_frames(ms: int, rate: int) -> list[AudioFrame]:
    """Digital silence, rounded up to whole 20 ms frames."""
    return frames_of(np.zeros(-(-ms * rate // 1000), dtype=np.int16), rate)


def _words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
    return [_NUMBER_WORDS[int(w)] if w.isdigit() and int(w) < len(_NUMBER_WORDS) else w for w in words]


def word_recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words found among the hypothesis's, counted as multisets (order ignored)."""
    ref, hyp = Counter(_words(reference)), Counter(_words(hypothesis))
    return sum((ref & hyp).values()) / max(1, sum(ref.values()))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference's word count (case, punctuation ignored)."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / len(ref)


def transcribe_wav(stt, path: Path, channel: int | None = None) -> str:
    """What the STT engine hears in a WAV file (mono, or one channel of a stereo file)."""
    with wave.open(str(path)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        pcm = pcm.reshape(-1, channels)[:, channel or 0]
    rate_in = stt.sample_rate
    pcm = resample(np.ascontiguousarray(pcm), rate, rate_in) if rate_in != rate else np.ascontiguousarray(pcm)
    stream = stt.open_stream()
    for frame in frames_of(pcm, rate_in):
        stream.push(frame)
    return stream.finish().text


def record_shape(value: object) -> object:
    """The keys of a JSON record, recursively (lists by their first item; free-form `data` left out): what
    must be the same whichever channel carried the interview."""
    if isinstance(value, dict):
        return {key: record_shape(item) for key, item in value.items() if key != "data"}
    if isinstance(value, list):
        return [record_shape(value[0])] if value else []
    return None
