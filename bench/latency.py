"""Voice-engine latency over scripted interviews, paced in real time like a phone line.

Run: .venv/bin/python bench/latency.py [--turns 20] [--llm embedded|none] [--channel line|twilio]

--channel twilio runs each interview through the Twilio channel end to end on 127.0.0.1: the server
places the call with the `twilio` library against the local Twilio double (tests/twilio_double.py),
takes its signed status callbacks and carries the conversation over a Media Streams websocket.

Prints p50/p95 of each stage of "candidate stops speaking -> first AI audio":
  end-of-turn detection (silence waited by the endpointer), STT final (after the endpoint), interviewer
  decision (with LLM phrasing when used), LLM first token (the follow-up prompt, measured directly),
  TTS first audio (reply text -> first synthesized chunk), first AI audio frame on the wire (an
  acknowledgement or the reply), first frame of the reply itself; plus the same total measured from the
  candidate's side (their last word -> first AI sound they hear), and STT / TTS real-time factors.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from config.settings import Settings
from config.templates import load_template_file, sample_template_path
from dialer.interview_call import start_interview
from dialer.simulator import (SAMPLE_SCRIPTS, SPEECH_RMS, CandidateScript, SimulatedCandidate, SimulatedLine,
                              candidate_audio, connected_interview, rms)
from ivr.engines import load_engines
from ivr.frames import AudioFrame
from models.store import SessionStore

SCRIPTS = SAMPLE_SCRIPTS[:2]  # the ones that go through the whole interview
BENCH_PHONE = "+14155550199"



def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def row(name: str, values: list[float], unit: str = "ms") -> str:
    if not values:
        return f"{name:<46} n/a"
    return f"{name:<46} p50 {percentile(values, 50):7.0f} {unit}   p95 {percentile(values, 95):7.0f} {unit}   n={len(values)}"


async def interview(engines, settings: Settings, store: SessionStore, template, script: CandidateScript):
    interview_id = connected_interview(store, template, name="Bench Candidate", phone="+14155550199")
    heard = HeardLog()
    simulated = SimulatedCandidate(script)
    original_step = simulated.step

    def step(frame: AudioFrame):  # note when the candidate first hears the AI after each answer
        heard.hear(simulated.now_ms + 20, frame)
        return original_step(frame)

    simulated.step = step  # type: ignore[method-assign]
    call = start_interview(SimulatedLine(simulated, realtime=True), store=store, interview_id=interview_id,
                           engines=engines, settings=settings)
    status = await call.finished
    return call.session, simulated, heard, status


class TwilioBench:
    """The server with the Twilio channel enabled, and the local Twilio double it calls."""

    def __init__(self, app, runner, double) -> None:
        self.app, self.runner, self.double = app, runner, double

    @classmethod
    async def start(cls, engines, settings: Settings, store: SessionStore, tmp: str) -> "TwilioBench":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from aiohttp import web
        from aiohttp.test_utils import unused_port
        from twilio_double import TwilioDouble, twilio_settings

        from server.app import make_app
        double = TwilioDouble()
        await double.start()
        port = unused_port()
        settings = dataclasses.replace(settings, store=dataclasses.replace(settings.store, recordings_dir=tmp))
        app = make_app(twilio_settings(settings, double, port), store, background_jobs=False, engines=engines)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return cls(app, runner, double)

    async def interview(self, store: SessionStore, template, script: CandidateScript):
        from twilio_double import Callee, twilio_interview

        from server.channels.twilio_endpoints import place_call
        from server.voice import VOICE
        interview_id = twilio_interview(store, template, BENCH_PHONE, name="Bench Candidate")
        self.double.callees[BENCH_PHONE] = Callee(script)
        call = self.double.calls[await place_call(self.app, interview_id)]
        session = None
        while not call.ended.is_set():  # the session leaves the runtime when it ends: keep it for its timings
            session = session or self.app[VOICE].active.get(interview_id)
            await asyncio.sleep(0.05)
        if session is None:
            raise RuntimeError(f"the Twilio call never reached the interview: {store.get_interview(interview_id)}")
        heard = HeardLog()
        heard.loud_at = call.heard_loud_ms
        return session, call.candidate, heard, store.get_interview(interview_id).status

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.double.close()


class HeardLog:
    def __init__(self) -> None:
        self.loud_at: list[int] = []

    def hear(self, at_ms: int, frame: AudioFrame) -> None:
        if rms(frame) > SPEECH_RMS:
            self.loud_at.append(at_ms)

    def first_after(self, ms: int) -> int | None:
        return next((t for t in self.loud_at if t > ms), None)


async def llm_first_tokens(engines, runs: int) -> list[float]:
    from ivr.phrasing import FollowUpPhraser
    if engines.llm is None:
        return []
    phraser = FollowUpPhraser(engines.llm)
    template = load_template_file(sample_template_path())
    out = []
    for i in range(runs):
        factor = template.factors[i % len(template.factors)]
        messages = phraser.messages(factor, factor.questions[0], "I guess it depends, stuff like that.")
        started = time.monotonic()
        async for _ in engines.llm.stream_chat(messages, max_tokens=8):
            out.append((time.monotonic() - started) * 1000)
            break
    return out


def real_time_factors(engines, sentences: list[str]) -> tuple[list[float], list[float]]:
    stt_rtf, tts_rtf = [], []
    for text in sentences:
        started = time.monotonic()
        audio = np.concatenate(list(engines.tts.synthesize(text)))
        tts_rtf.append((time.monotonic() - started) / (len(audio) / engines.tts.sample_rate))
        pcm = candidate_audio(text, engines.stt.sample_rate, telephone=False)
        stream = engines.stt.open_stream()
        samples = engines.stt.sample_rate // 50
        started = time.monotonic()
        for i in range(0, len(pcm) - samples + 1, samples):
            stream.push(AudioFrame.from_array(pcm[i:i + samples], engines.stt.sample_rate))
        stream.finish()
        stt_rtf.append((time.monotonic() - started) / (len(pcm) / engines.stt.sample_rate))
    return stt_rtf, tts_rtf


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="at least this many scored candidate turns")
    parser.add_argument("--llm", choices=("embedded", "none"), default="embedded")
    parser.add_argument("--channel", choices=("line", "twilio"), default="line",
                        help="line: an in-process real-time line; twilio: the Twilio channel against the local double")
    args = parser.parse_args()
    settings = Settings()
    template = load_template_file(sample_template_path())
    engines = load_engines(settings, template.language, with_llm=args.llm != "none")
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(Path(tmp) / "bench.db")
        twilio = await TwilioBench.start(engines, settings, store, tmp) if args.channel == "twilio" else None
        timings, heard_totals, script_index = [], [], 0
        while len(timings) < args.turns:
            script = SCRIPTS[script_index % len(SCRIPTS)]
            script_index += 1
            if twilio is not None:
                session, simulated, heard, status = await twilio.interview(store, template, script)
            else:
                session, simulated, heard, status = await interview(engines, settings, store, template, script)
            timings += session.timings
            for answer in simulated.said:
                first = heard.first_after(answer.last_word_ms)
                if first is not None:
                    heard_totals.append(first - answer.last_word_ms)
            print(f"  interview {script_index} ({script.name}): {status}, {len(session.timings)} replies")
        if twilio is not None:
            await twilio.close()
        store.close()
    llm_first = await llm_first_tokens(engines, 20)
    answers = [a for s in SCRIPTS for a in s.answers[1:]]
    stt_rtf, tts_rtf = real_time_factors(engines, answers[:8])
    line = "Twilio Media Streams (local double)" if twilio is not None else "real-time line"
    print(f"\nphonescreen voice-engine latency — {len(timings)} candidate turns, {line}, "
          f"STT {engines.stt.name}, TTS {engines.tts.name}, LLM {engines.llm.name if engines.llm else 'none'}")
    print(row("end-of-turn detection (silence waited)", [t.endpoint_delay_ms for t in timings]))
    print(row("STT final after endpoint", [t.stt_final_ms for t in timings]))
    print(row("interviewer decision (incl. LLM phrasing)", [t.decide_ms for t in timings]))
    print(row("LLM first token (follow-up prompt)", llm_first))
    print(row("TTS first audio (reply text -> chunk)", [t.tts_first_audio_ms for t in timings
                                                        if t.tts_first_audio_ms is not None]))
    print(row("TOTAL stop -> first AI audio frame", [t.total_ms for t in timings if t.total_ms is not None]))
    print(row("stop -> first frame of the reply itself", [t.endpoint_delay_ms + t.reply_audio_ms for t in timings
                                                          if t.reply_audio_ms is not None]))
    print(row("candidate's ear: last word -> first AI sound", [float(v) for v in heard_totals]))
    acked = sum(t.acknowledged for t in timings)
    print(f"{'replies covered by an acknowledgement':<46} {acked}/{len(timings)}")
    follow_ups = [t for t in timings if t.reply_source in ("llm", "fallback")]
    worded = sum(t.reply_source == "llm" for t in follow_ups)
    print(f"{'follow-ups worded by the LLM (else template)':<46} {worded}/{len(follow_ups)}")
    print(row("STT real-time factor", [v * 1000 for v in stt_rtf], unit="‰ "))
    print(row("TTS real-time factor", [v * 1000 for v in tts_rtf], unit="‰ "))
    print("target: total p50 <= 600 ms, p95 <= 1000 ms")


if __name__ == "__main__":
    asyncio.run(main())
