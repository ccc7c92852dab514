"""Between a SIP call's answer and the interview: if the interview's campaign asks for answering-machine
detection (settings.voicemail.detect), listen to the callee first (dialer/sip/amd.py). A machine gets the
campaign's short message after its beep (Piper) or is hung up on; the interview then ends `no_answer` with
outcome code `voicemail`, as on the Twilio channel (dialer/twilio/status.py), and the campaign's retry
policy for voicemail applies."""
from __future__ import annotations

import asyncio
import logging

import numpy as np

from dialer.leg import Leg, LineEnded
from dialer.sip.amd import MACHINE, AnsweringMachineDetector, GreetingEnd
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame, frames_of
from ivr.resample import resample
from models.store import SessionStore

log = logging.getLogger("phonescreen.sip")
VOICEMAIL, HUNG_UP = "voicemail", "hung_up_on_answer"
MAX_GREETING_WAIT_S = 30.0  # for the beep after a long greeting
FRAME_WAIT_S = 5.0  # no frame at all this long: the line is dead


def voicemail_policy(store: SessionStore, interview_id: str) -> dict | None:
    """The campaign's voicemail settings when it asks for detection, else None (no detection)."""
    campaign_id = store.get_interview(interview_id).campaign_id
    if not campaign_id:
        return None
    policy = store.get_campaign(campaign_id).settings.get("voicemail") or {}
    return policy if policy.get("detect") else None


async def _frame(leg: Leg) -> AudioFrame | None:
    """The next audio frame, None when the line ended or went silent (DTMF is skipped)."""
    while True:
        try:
            event = await asyncio.wait_for(leg.receive(), FRAME_WAIT_S)
        except TimeoutError:
            return None
        if isinstance(event, LineEnded):
            return None
        if isinstance(event, AudioFrame):
            return event


async def screen_for_voicemail(store: SessionStore, interview_id: str, leg: Leg, engines: VoiceEngines) -> str | None:
    """None: go on with the interview (a person, or no detection asked). Else the outcome code to end the
    interview `no_answer` with: voicemail, or hung_up_on_answer (the line dropped while we listened)."""
    policy = voicemail_policy(store, interview_id)
    if policy is None:
        return None
    detector = AnsweringMachineDetector(leg.sample_rate)
    verdict = None
    while verdict is None:
        frame = await _frame(leg)
        if frame is None:
            return HUNG_UP
        verdict = detector.step(frame)
    log.info("answered by a %s (%s after %d ms)", verdict.kind, verdict.reason, verdict.at_ms,
             extra={"interview_id": interview_id})
    if verdict.kind != MACHINE:
        return None
    if policy.get("action") == "leave_message" and policy.get("message"):
        await _leave_message(leg, policy["message"], engines, after_beep=verdict.reason != "beep")
    await leg.hang_up(VOICEMAIL)
    return VOICEMAIL


async def _leave_message(leg: Leg, text: str, engines: VoiceEngines, *, after_beep: bool) -> None:
    """Wait for the greeting to end (its beep, or quiet), then speak the message, one frame per frame heard."""
    if after_beep:
        end = GreetingEnd(leg.sample_rate)
        deadline = asyncio.get_running_loop().time() + MAX_GREETING_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            frame = await _frame(leg)
            if frame is None:
                return
            if end.step(frame):
                break
    loop = asyncio.get_running_loop()
    tts = engines.tts
    chunks = await loop.run_in_executor(None, lambda: list(tts.synthesize(text)))
    speech = resample(np.concatenate(chunks), tts.sample_rate, leg.sample_rate) if chunks else np.zeros(0, np.int16)
    for out in frames_of(speech, leg.sample_rate):
        if await _frame(leg) is None:
            return
        leg.send(out)
