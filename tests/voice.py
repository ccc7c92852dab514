"""Test helpers for the voice engine: real Piper speech as a caller would send it, frames, WER.

Candidate speech comes from the simulated candidate's voice (dialer.simulator.candidate_audio), cached
on disk, so a test session synthesizes each sentence once and later sessions not at all.
"""
from __future__ import annotations

import re

import numpy as np

from dialer.simulator import CANDIDATE_LENGTH_SCALE, candidate_audio
from ivr.frames import AudioFrame, frames_of

__all__ = ["CANDIDATE_LENGTH_SCALE", "candidate_audio", "frames_of", "silence_frames", "word_error_rate"]

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
