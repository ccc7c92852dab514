"""What the Twilio leg sends follows the wall clock, not the count of frames it receives: after the event
loop or the engines' loading stalled, the burst of frames that comes in is answered with no more than the
small lead, so no backlog builds up in Twilio's buffer (it would make every reply of the call late), and a
`clear` re-anchors the lead. The web leg (a browser's ring buffer) keeps the same lead. And `serve` with
Twilio enabled loads and warms the engines before it listens. Fakes only: no speech model, a few seconds in all."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp.test_utils import unused_port

from dialer.send_lead import CLOCKED_LEAD_FRAMES as LEAD_FRAMES
from dialer.send_lead import FRAME_S, PlayoutClock
from dialer.twilio.leg import TwilioLeg
from dialer.web_leg import WebLeg
from fakes import fake_engines
from ivr.frames import AudioFrame, samples_per_frame
from ivr.tts.phrase_cache import ACKNOWLEDGEMENTS
from server import voice
from server.app import make_app
from server.channels.twilio_endpoints import place_call
from server.voice import VOICE, EnginesUnavailable, loads_at_start
from twilio_double import Callee, twilio_interview, twilio_settings

SLACK_FRAMES = LEAD_FRAMES + 5  # what the double may see buffered: the lead, and its own late ticks
SPEECH = AudioFrame(b"\x10\x00" * samples_per_frame(8000), 8000)  # not the shared silence frame: no marks


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeSocket:
    """The send side of the stream's websocket: what the leg wrote."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self) -> None:
        self.closed = True

    def media(self) -> int:
        return sum(1 for message in self.sent if message["event"] == "media")


class FakeBrowserSocket:
    """The send side of a browser's websocket: the audio bytes and control messages the web leg wrote."""

    def __init__(self) -> None:
        self.audio_bytes = 0
        self.controls: list[dict] = []
        self.closed = False

    async def send_bytes(self, data: bytes) -> None:
        self.audio_bytes += len(data)

    async def send_str(self, text: str) -> None:
        self.controls.append(json.loads(text))

    async def close(self, code: int = 1000) -> None:
        self.closed = True


def answer(leg: TwilioLeg | WebLeg) -> int:
    """What `bridge` does for each frame received: send what the leg asks for."""
    wanted = leg.frames_to_send()
    for _ in range(wanted):
        leg.send(SPEECH)
    return wanted


async def test_a_burst_after_a_stall_sends_only_the_lead_and_a_clear_re_anchors_it() -> None:
    clock, ws = FakeClock(), FakeSocket()
    leg = TwilioLeg(ws, "MZ1", end_call=_nothing, clock=clock)
    sent, first = 0, clock.now

    def within_lead(since: float, frames: int) -> bool:  # sent audio <= wall time since `since` + the lead
        return frames * FRAME_S <= clock.now - since + LEAD_FRAMES * FRAME_S + 1e-9

    assert answer(leg) == LEAD_FRAMES  # the first frame in: the lead at once
    sent += LEAD_FRAMES
    for _ in range(50):  # a second of steady frames: one out for each one in
        clock.now += FRAME_S
        assert answer(leg) == 1
        sent += 1
        assert within_lead(first, sent)
    clock.now += 1.0  # the event loop stalled a second (the buffer ran dry: Twilio played silence)
    burst = sum(answer(leg) for _ in range(50))  # then the second's 50 frames come in at once
    sent += burst
    assert burst == LEAD_FRAMES, "the missed second must not be caught up: it would sit in Twilio's buffer"
    assert within_lead(first, sent) and leg.playout.queued() == LEAD_FRAMES
    for _ in range(10):
        clock.now += FRAME_S
        assert answer(leg) == 1
        sent += 1
    clock.now += 0.06  # no frame for 60 ms (one came 40 ms late): the lead covered it, and is topped up
    assert answer(leg) == 3 and leg.playout.queued() == LEAD_FRAMES
    sent += 3
    assert within_lead(first, sent)

    await asyncio.sleep(0.01)  # the leg's writer puts it all on the socket (a clear drops what it has not)
    leg.clear()  # a barge-in: Twilio drops its buffer, the lead is built again from now
    cleared_at, since_clear = clock.now, 0
    assert answer(leg) == LEAD_FRAMES
    since_clear += LEAD_FRAMES
    for _ in range(25):
        clock.now += FRAME_S
        since_clear += answer(leg)
        assert within_lead(cleared_at, since_clear)
    await leg.close()
    assert ws.media() == sent + since_clear  # every frame counted was written, no more
    assert any(message["event"] == "clear" for message in ws.sent)


async def test_the_web_leg_keeps_a_lead_in_the_browser_not_a_backlog() -> None:
    clock, ws = FakeClock(), FakeBrowserSocket()
    leg = WebLeg(ws)
    leg.playout = PlayoutClock(clock)
    assert answer(leg) == LEAD_FRAMES
    clock.now += 1.0  # the engines were loading: a second of microphone frames arrives at once
    assert sum(answer(leg) for _ in range(50)) == LEAD_FRAMES
    for _ in range(10):  # then steady: one out for each one in
        clock.now += FRAME_S
        assert answer(leg) == 1
    await asyncio.sleep(0.01)
    leg.clear()  # a barge-in: the browser empties its ring, the lead is built again from now
    assert answer(leg) == LEAD_FRAMES
    await leg.close()
    assert ws.audio_bytes == (3 * LEAD_FRAMES + 10) * len(SPEECH.pcm)
    assert {"type": "clear"} in ws.controls


def test_the_playout_clock_counts_what_is_still_queued() -> None:
    clock = FakeClock()
    playout = PlayoutClock(clock)
    assert playout.queued() == 0 and playout.frames_wanted(3) == 3
    for _ in range(3):
        playout.sent()
    assert playout.queued() == 3 and playout.frames_wanted(3) == 0
    clock.now += 0.03  # a frame and a half played: the half-played one is still queued
    assert playout.queued() == 2
    clock.now += 5.0
    assert playout.queued() == 0
    playout.sent()  # re-anchored at now, not after the last frame of five seconds ago
    assert playout.queued() == 1


async def _nothing() -> None:
    return None


# -- end to end, through the local Twilio double ------------------------------------------------------
async def _call(app, store, double, template, phone: str):
    iid = twilio_interview(store, template, phone)
    double.callees[phone] = Callee(max_call_s=3.0)  # a silent callee: the greeting and a re-prompt
    sid = await place_call(app, iid)
    return await double.wait_ended(sid, timeout_s=30)


async def test_the_first_call_waiting_for_the_engines_leaves_no_backlog_in_twilios_buffer(
        aiohttp_server, settings, store, double, sample_template, monkeypatch) -> None:
    def slow_load(*args, **kwargs):
        time.sleep(1.0)  # as the first call after `serve` started waited a second for the models
        return fake_engines()
    monkeypatch.setattr(voice, "load_engines", slow_load)
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port), store, background_jobs=False)
    await aiohttp_server(app, port=port)
    call = await _call(app, store, double, sample_template, "+14155550140")
    assert call.stream_end == "max_duration" and call.media_received > 100
    # One frame sent per frame received put the second of frames that came in while the engines loaded
    # into the buffer (51 frames), and every reply after it a second late. The lead is all there is (5 on
    # an idle machine; slack for the double's ticks running late on a busy one).
    assert call.max_buffered_frames <= SLACK_FRAMES, call.max_buffered_frames


async def test_serve_with_twilio_loads_and_warms_the_engines_before_it_listens(
        aiohttp_server, settings, store, double, sample_template, monkeypatch) -> None:
    loaded = []
    monkeypatch.setattr(voice, "load_engines", lambda *a, **k: loaded.append(fake_engines()) or loaded[-1])
    port = unused_port()
    twilio = twilio_settings(settings, double, port)
    assert loads_at_start(twilio) and not loads_at_start(settings)  # tests without Twilio stay as fast
    app = make_app(twilio, store, background_jobs=False, load_voice=loads_at_start(twilio))
    await aiohttp_server(app, port=port)
    assert loaded and app[VOICE].engines is loaded[0]  # before the first request, not on the first call
    tts = loaded[0].tts
    assert all(text in tts.voice.phrases for text in ACKNOWLEDGEMENTS)  # made by the warm-up
    call = await _call(app, store, double, sample_template, "+14155550141")
    assert len(loaded) == 1 and call.max_buffered_frames <= SLACK_FRAMES


async def test_engines_that_cannot_load_stop_start_up(aiohttp_server, settings, store, double,
                                                     monkeypatch) -> None:
    def missing(*args, **kwargs):
        raise FileNotFoundError("LLM model file not found: /nowhere.gguf")
    monkeypatch.setattr(voice, "load_engines", missing)
    app = make_app(twilio_settings(settings, double, unused_port()), store, background_jobs=False,
                   load_voice=True)
    with pytest.raises(EnginesUnavailable, match="nowhere.gguf"):
        await aiohttp_server(app)
