"""How soon a candidate's answer shows in the copilot pane of a recruiter-led call: the media worker's
work after the end of the turn (Whisper on the 8 kHz answer, then the per-answer evaluator), per answer.
The pane then picks it up within one server-sent-events poll (server.admin.dashboard SSE_POLL_S, 1 s).

Answers: every candidate answer of the simulator's sample scripts, in a Piper voice through G.711-band
8 kHz audio (dialer.simulator.candidate_audio), against the sample template's factors in turn.

Run: .venv/bin/python bench/recruiter_copilot.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import SttSettings, TtsSettings  # noqa: E402
from config.templates import load_template_file, sample_template_path  # noqa: E402
from dialer.recruiter_link import evaluate_answer, transcribe  # noqa: E402
from dialer.simulator import SAMPLE_SCRIPTS, candidate_audio  # noqa: E402
from ivr.engines import VoiceEngines  # noqa: E402
from ivr.frames import frames_of  # noqa: E402
from ivr.stt.whisper_stt import WhisperStt  # noqa: E402
from ivr.tts.piper_tts import PiperTts  # noqa: E402


def report(name: str, values_ms: list[float]) -> None:
    p50, p95 = np.percentile(values_ms, [50, 95])
    print(f"{name:<40} p50 {p50:7.0f} ms   p95 {p95:7.0f} ms   n={len(values_ms)}")


def main() -> None:
    template = load_template_file(sample_template_path())
    engines = VoiceEngines(stt=WhisperStt(SttSettings()), tts=PiperTts(TtsSettings()), llm=None)
    answers = [a for script in SAMPLE_SCRIPTS for a in script.answers[1:] if len(a.split()) >= 8]
    evaluate_answer("warm up the models", "q", template.factors[0], template)
    transcribe(engines, frames_of(candidate_audio(answers[0], 8000), 8000))
    stt_ms, eval_ms, total_ms, words = [], [], [], []
    for index, answer in enumerate(answers):
        factor = template.factors[index % len(template.factors)]
        frames = frames_of(candidate_audio(answer, 8000), 8000)
        started = time.perf_counter()
        text = transcribe(engines, frames)
        heard = time.perf_counter()
        evaluate_answer(text, factor.questions[0], factor, template)
        done = time.perf_counter()
        stt_ms.append((heard - started) * 1000)
        eval_ms.append((done - heard) * 1000)
        total_ms.append((done - started) * 1000)
        words.append(len(text.split()))
    print(f"recruiter copilot: answer end -> evaluation stored (answers of {np.mean(words):.0f} words on average)")
    report("STT of the whole answer (Whisper, 8 kHz)", stt_ms)
    report("per-answer evaluation", eval_ms)
    report("total, before the SSE poll (<= 1 s)", total_ms)


if __name__ == "__main__":
    main()
