"""A simulated candidate who calls us: `python tests/sim_caller.py --to sip:interview@127.0.0.1:5080
--caller +14155550100 --answers '["Yes.", ...]'`. A pjsua2 endpoint on 127.0.0.1 places one call from
sip:CALLER@127.0.0.1:PORT and, once answered, plays a SimulatedCandidate over RTP (Piper answers, each
spoken after the other side has finished talking). Prints one JSON line as soon as the call is over (before
pjsua2 is torn down, so a teardown that hangs cannot hide it): the final SIP code, what it said, how much
speech it heard, who hung up. Every wait is bounded."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.leg import LineEnded  # noqa: E402
from dialer.simulator import SPEECH_RMS, CandidateScript, SimulatedCandidate, candidate_audio, rms  # noqa: E402
from dialer.sip.call import SipCall  # noqa: E402
from dialer.sip.endpoint import EndpointPlan, account_config, poll_forever, start_endpoint  # noqa: E402
from dialer.sip.media import ports  # noqa: E402
from ivr.frames import AudioFrame  # noqa: E402

ANSWER_WAIT_S = 20.0


async def talk(call: SipCall, script: CandidateScript, max_call_s: float, report: dict) -> None:
    candidate, loud_ms = SimulatedCandidate(script), 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_call_s
    while loop.time() < deadline:
        try:
            event = await asyncio.wait_for(call.leg.receive(), timeout=5)
        except TimeoutError:
            report["hung_up_by"] = "silence"
            break
        if isinstance(event, LineEnded):
            report["hung_up_by"] = "callee"
            break
        if not isinstance(event, AudioFrame):
            continue
        if rms(event) > SPEECH_RMS:
            loud_ms += 20
        said = candidate.step(event)
        if said is None:
            report["hung_up_by"] = "caller"
            break
        call.leg.send(said)
    report["heard_loud_ms"] = loud_ms
    report["said"] = [answer.text for answer in candidate.said]


async def main_async(args: argparse.Namespace) -> None:
    script = CandidateScript("caller", tuple(json.loads(args.answers)), ai_done_ms=args.ai_done_ms)
    for text in script.answers:  # synthesized now, never during the call
        candidate_audio(text)
    plan = EndpointPlan("127.0.0.1", args.port, args.rtp_port, 20)
    endpoint = start_endpoint(plan)
    account = pj.Account()
    account.create(account_config(plan, user=args.caller))
    poller = asyncio.create_task(poll_forever(endpoint))
    loop = asyncio.get_running_loop()
    call = SipCall(account, loop, label="caller")
    report: dict = {}
    try:
        call.makeCall(args.to, pj.CallOpParam(True))
        waits = [asyncio.ensure_future(call.confirmed.wait()), asyncio.ensure_future(call.disconnected.wait())]
        await asyncio.wait(waits, timeout=ANSWER_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
        if call.confirmed.is_set() and not call.disconnected.is_set():
            await talk(call, script, args.max_call_s, report)
    finally:
        call.hang_up_now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.disconnected.wait(), 5)
        report["code"] = call.status_code
        print(json.dumps(report), flush=True)
        call.release()
        poller.cancel()
        del call, account
        ports.drop_all()
        gc.collect()
        await asyncio.sleep(0.2)  # the bridge removes the dropped ports on its next ticks
        endpoint.libDestroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, help="the SIP URI to call")
    parser.add_argument("--caller", required=True, help="our user part (the caller ID), e.g. +14155550100")
    parser.add_argument("--answers", default="[]", help="JSON list of what to say, one per thing we are asked")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--ai-done-ms", type=int, default=2000, help="quiet that means the other side finished")
    parser.add_argument("--max-call-s", type=float, default=240)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
