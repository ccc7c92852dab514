"""A simulated candidate that is a real SIP phone: `python -m dialer.sim_phone --port 5070`.

It answers INVITEs on 127.0.0.1 and plays a SimulatedCandidate (Piper answers, spoken only after the AI
has finished, with natural pauses) over RTP. The user part of the called URI picks what happens:
a script name (`sip:concrete@127.0.0.1:5070`, `vague`, `hangs-up`, or one from --scripts), or `busy`
(486), `decline` (603), `noanswer` (rings forever), `voicemail` (an answering machine: a 6 s greeting,
a beep, then it records); `--assign USER=SCRIPT[,SCRIPT...]` maps other users (phone numbers) to scripts
(or to `voicemail`), the Nth call to USER playing the Nth script (a redial); any other user gets the first.
It prints `ready` once listening, then one JSON line per finished call (what it said, when), and writes
what it heard from the AI to --record-dir/<call-n>.wav. It stops on SIGTERM or when stdin closes.

Times in a call's report are ms on the candidate's media clock (20 ms per frame received, the clock of
SimulatedCandidate.now_ms): `ai_onsets_ms` (AI speech after >= ONSET_QUIET_MS of quiet), `ai_segments_ms`
([onset, offset] of each stretch of AI speech; it ends at its last loud frame once ONSET_QUIET_MS of quiet
follow), `answered_ms` (the moment the phone sent 200 OK, on that clock: the clock starts with the first
frame received, a little later, so it is usually negative) and `said` (the answers, their pauses included).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import gc
import json
import re
import signal
import sys
import wave
from pathlib import Path

import numpy as np
import pjsua2 as pj

from dialer.leg import LineEnded
from dialer.simulator import (SAMPLE_SCRIPTS, SPEECH_RMS, CandidateScript, SimulatedCandidate, answer_audio,
                              candidate_audio, rms)
from dialer.sip.call import SipCall
from dialer.sip.media import ports
from dialer.sip.endpoint import EndpointPlan, account_config, poll_forever, start_endpoint
from ivr.frames import AudioFrame, frames_of, silence

REFUSALS = {"busy": 486, "decline": 603}
RING_MS = 300  # between 180 Ringing and 200 OK
ONSET_QUIET_MS = 200  # AI speech after this much quiet is an onset (for latency measured at the phone)
VOICEMAIL = "voicemail"
VOICEMAIL_GREETING = ("Hi, you have reached Ana Ruiz. I can't take your call right now. Please leave your "
                      "name, your number and a short message after the tone, and I will call you back.")
BEEP_HZ, BEEP_MS = 1000, 400


def script_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class PhoneAccount(pj.Account):
    def __init__(self, phone: "SimulatedPhone") -> None:
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = PhoneCall(self, self.phone.loop, prm.callId)
        self.phone.accept(call)


class PhoneCall(SipCall):
    """A call the phone answered. A REFER from the interviewer (a transfer to a person) is followed like
    a desk phone would: the phone calls the target on a new call and reports where it was sent."""

    def __init__(self, account: PhoneAccount, loop: asyncio.AbstractEventLoop, call_id: int) -> None:
        super().__init__(account, loop, call_id)
        self.account = account
        self.transferred_to: str | None = None

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        self.transferred_to = prm.dstUri
        onward = pj.Call(self.account)  # a plain call: the phone only has to reach the target
        self.account.phone.answered.append(onward)  # kept (and disowned) until the library stops
        prm.newCall = onward


class SimulatedPhone:
    def __init__(self, scripts: dict[str, CandidateScript], record_dir: Path | None, max_call_s: float,
                 assigned: dict[str, str] | None = None) -> None:
        self.scripts, self.record_dir, self.max_call_s = scripts, record_dir, max_call_s
        self.assigned = assigned or {}
        self.default = next(iter(scripts.values()))
        self.loop = asyncio.get_running_loop()
        self.calls: set[SipCall] = set()
        self.tasks: set[asyncio.Task] = set()
        self.count = 0
        self.calls_to: collections.Counter[str] = collections.Counter()  # calls answered per called user
        # pjsua2 keeps a reference to every incoming Call, so they are never freed before libDestroy; a Call
        # freed after it trips an assertion in pjsua. The phone is a short-lived test tool: disown them at exit.
        self.answered: list[pj.Call] = []

    def accept(self, call: SipCall) -> None:
        self.count += 1
        self.calls.add(call)
        self.answered.append(call)
        user = re.sub(r"^.*?sip:([^@;>]*).*$", r"\1", call.getInfo().localUri).lower()
        # --assign USER=A,B: the first call to USER plays script A, the next B (the last one repeats).
        names = self.assigned.get(user, user).split(",")
        script_name = names[min(self.calls_to[user], len(names) - 1)]
        self.calls_to[user] += 1
        task = self.loop.create_task(self._handle(call, user, script_name, self.count))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, call: SipCall, user: str, script_name: str, number: int) -> None:
        report: dict = {"call": number, "user": user}
        try:
            if user in REFUSALS:
                call.answer_now(REFUSALS[user])
                report["answered"] = REFUSALS[user]
                return
            call.answer_now(180)
            if user == "noanswer":
                await call.disconnected.wait()  # the caller's CANCEL
                report["answered"] = 180
                return
            await asyncio.sleep(RING_MS / 1000)
            answered_at = self.loop.time()  # the candidate picks up: 200 OK
            call.answer_now(200)
            if script_name == VOICEMAIL:
                report.update({"answered": 200, "script": VOICEMAIL})
                await self._voicemail(call, number, report)
                return
            script = self.scripts.get(script_name, self.default)
            report.update({"answered": 200, "script": script.name})
            report["said"] = await self._talk(call, script, number, report, answered_at)
        finally:
            call.hang_up_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.disconnected.wait(), 5)
            if getattr(call, "transferred_to", None):
                report["transferred_to"] = call.transferred_to
            print(json.dumps(report), flush=True)
            call.release()
            self.calls.discard(call)

    async def _voicemail(self, call: SipCall, number: int, report: dict) -> None:
        """An answering machine: greeting, beep, then record until the caller hangs up (or 60 s)."""
        beep = (8000 * np.sin(2 * np.pi * BEEP_HZ * np.arange(8 * BEEP_MS) / 8000)).astype(np.int16)
        outgoing = frames_of(np.concatenate([candidate_audio(VOICEMAIL_GREETING), beep]), 8000)
        report["beep_at_ms"] = 20 * len(outgoing) - BEEP_MS
        heard, sent, loud_after_beep = bytearray(), 0, 0
        while sent < len(outgoing) + 3000:  # at most 60 s of recording after the beep
            try:
                event = await asyncio.wait_for(call.leg.receive(), timeout=5)
            except TimeoutError:
                break
            if isinstance(event, LineEnded):
                report["hung_up_by"] = "caller"
                break
            if not isinstance(event, AudioFrame):
                continue
            heard += event.pcm
            if sent >= len(outgoing) and rms(event) > SPEECH_RMS:
                loud_after_beep += 20
            call.leg.send(outgoing[sent] if sent < len(outgoing) else silence(8000))
            sent += 1
        report["message_ms"] = loud_after_beep  # how much speech the machine recorded after its beep
        report["heard_until_ms"] = 20 * sent
        self._save_heard(number, heard)

    def _save_heard(self, number: int, heard: bytearray) -> None:
        """What the call heard from the AI, as --record-dir/call-N.wav."""
        if self.record_dir is not None:
            with wave.open(str(self.record_dir / f"call-{number}.wav"), "wb") as out:
                out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
                out.writeframes(bytes(heard))

    async def _talk(self, call: SipCall, script: CandidateScript, number: int, report: dict,
                    answered_at: float) -> list[dict]:
        candidate = SimulatedCandidate(script)
        heard = bytearray()
        onsets: list[int] = report.setdefault("ai_onsets_ms", [])  # when AI speech began, after a pause
        segments: list[list[int]] = report.setdefault("ai_segments_ms", [])  # [onset, offset] of AI speech
        quiet_ms = 1000
        deadline = self.loop.time() + self.max_call_s
        try:
            while self.loop.time() < deadline:
                try:
                    event = await asyncio.wait_for(call.leg.receive(), timeout=5)
                except TimeoutError:
                    break  # no RTP from the AI for 5 s
                if isinstance(event, LineEnded):
                    report["hung_up_by"] = "caller"
                    break
                if not isinstance(event, AudioFrame):
                    continue
                if "answered_ms" not in report:  # this first frame ends at media 20 ms
                    report["answered_ms"] = round(20 - (self.loop.time() - answered_at) * 1000)
                heard += event.pcm
                said = candidate.step(event)
                if rms(event) > SPEECH_RMS:
                    if quiet_ms >= ONSET_QUIET_MS:
                        onsets.append(candidate.now_ms)
                        segments.append([candidate.now_ms, candidate.now_ms])
                    segments[-1][1] = candidate.now_ms
                    quiet_ms = 0
                else:
                    quiet_ms += 20
                if said is None:  # the script hangs up
                    report["hung_up_by"] = "phone"
                    await call.leg.hang_up("script")
                    break
                call.leg.send(said)
        finally:
            self._save_heard(number, heard)
            if "answered_ms" in report:  # wall time not covered by frames (lost or late RTP): the clock's lag
                report["clock_lag_ms"] = round((self.loop.time() - answered_at) * 1000 + report["answered_ms"]
                                               - candidate.now_ms)
        return [dataclasses.asdict(answer) for answer in candidate.said]


def load_scripts(path: str | None) -> dict[str, CandidateScript]:
    scripts = list(SAMPLE_SCRIPTS)
    if path:
        for item in json.loads(Path(path).read_text()):
            scripts.append(CandidateScript(**{**item, "answers": tuple(item["answers"])}))
    return {script_key(script.name): script for script in scripts}


async def main_async(args: argparse.Namespace) -> None:
    scripts = load_scripts(args.scripts)
    for script in scripts.values():  # synthesize every answer now, never during a call
        for text in script.answers:
            answer_audio(text)
    plan = EndpointPlan(args.address, args.port, args.rtp_port, 100)
    endpoint = start_endpoint(plan)
    assigned = dict(item.split("=", 1) for item in args.assign)
    unknown = sorted({name for names in assigned.values() for name in names.split(",")} - set(scripts) - {VOICEMAIL})
    if unknown:
        raise SystemExit(f"--assign: unknown scripts {unknown}; known: {sorted(scripts)}")
    phone = SimulatedPhone(scripts, Path(args.record_dir) if args.record_dir else None, args.max_call_s,
                           {user.lower(): script for user, script in assigned.items()})
    account = PhoneAccount(phone)
    account.create(account_config(plan, user="candidate"))
    poller = asyncio.create_task(poll_forever(endpoint))
    stop = asyncio.Event()
    phone.loop.add_signal_handler(signal.SIGTERM, stop.set)
    phone.loop.add_signal_handler(signal.SIGINT, stop.set)
    phone.loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.readline() or stop.set())
    print("ready", flush=True)
    await stop.wait()
    for call in list(phone.calls):
        call.hang_up_now()
    if phone.tasks:
        await asyncio.wait(phone.tasks, timeout=10)
    poller.cancel()
    for call in phone.answered:
        call.thisown = False
    del account, phone
    ports.drop_all()
    gc.collect()
    await asyncio.sleep(0.2)  # the bridge removes the dropped ports on its next ticks
    endpoint.libDestroy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dialer.sim_phone", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5070)
    parser.add_argument("--rtp-port", type=int, default=42000)
    parser.add_argument("--scripts", help="JSON list of extra CandidateScript objects")
    parser.add_argument("--assign", action="append", default=[], metavar="USER=SCRIPT[,SCRIPT...]",
                        help="answer calls to USER (e.g. +14155550100) with SCRIPT; later calls with the next")
    parser.add_argument("--record-dir", help="write what each call heard to DIR/call-N.wav")
    parser.add_argument("--max-call-s", type=float, default=600)
    args = parser.parse_args(argv)
    if args.record_dir:
        Path(args.record_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
