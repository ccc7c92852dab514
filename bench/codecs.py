"""Per-20 ms-frame cost of the audio hot path: G.711 mu-law and streaming resampling.

Run: .venv/bin/python bench/codecs.py [-n ITERATIONS]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from ivr.frames import FRAME_MS, samples_per_frame
from ivr.g711 import ulaw_decode, ulaw_encode
from ivr.resample import StreamResampler

WARMUP = 200


def frames(rate: int, count: int = 50) -> list[np.ndarray]:
    """A few distinct speech-level frames to cycle through (contents don't change the cost)."""
    rng = np.random.default_rng(rate)
    pcm = rng.normal(0, 4000, samples_per_frame(rate) * count).clip(-32768, 32767)
    return np.split(pcm.astype(np.int16), count)


def time_per_frame(step: Callable[[np.ndarray], object], inputs: list[np.ndarray], n: int) -> np.ndarray:
    for i in range(WARMUP):
        step(inputs[i % len(inputs)])
    timings = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        frame = inputs[i % len(inputs)]
        start = clock()
        step(frame)
        timings[i] = clock() - start
    return timings / 1000  # microseconds


def report(name: str, us: np.ndarray) -> None:
    p50, p95 = np.percentile(us, [50, 95])
    rtf = us.mean() / (FRAME_MS * 1000)  # processing time per second of audio
    print(f"{name:<34} p50 {p50:8.1f} us   p95 {p95:8.1f} us   RTF {rtf:.5f} ({1 / rtf:,.0f}x real time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--iterations", type=int, default=5000)
    n = parser.parse_args().iterations

    print(f"{n} iterations of one {FRAME_MS} ms frame each")
    report("mu-law encode+decode 8 kHz", time_per_frame(lambda f: ulaw_decode(ulaw_encode(f)), frames(8000), n))
    for src, dst in [(22050, 8000), (8000, 16000)]:
        stream = StreamResampler(src, dst)
        report(f"StreamResampler {src}->{dst}", time_per_frame(stream.process, frames(src), n))


if __name__ == "__main__":
    main()
