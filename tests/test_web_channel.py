"""The web channel over a live loopback server: Debian's Chromium, whose fake microphone plays scripted
answers in a Piper voice, joins from /join#TOKEN and talks to the real voice engine (webrtcvad, Whisper,
Piper) and the real store; the join protocol's refusals; and a WebLeg fed broken or oversized messages."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp import WSMsgType, web

from browser import ANSWER, CONSENT, artifact, chromium, short_template, write_wav
from config.settings import VoiceSettings
from config.templates import InterviewTemplate
from dialer.leg import Dtmf, LineEnded
from dialer.simulator import CandidateScript, SimulatedCandidate, candidate_audio, connected_interview, run_call
from dialer.web_leg import MAX_MESSAGE_BYTES, WEB_RATE, WebLeg
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame
from ivr.session import InterviewSession
from ivr.tts.phrase_cache import ACKNOWLEDGEMENTS
from models.db import utcnow
from models.store import SessionStore
from server.app import make_app
from voice import record_shape, word_error_rate

FRAME_BYTES = 640  # 20 ms of PCM16 at 16 kHz


@pytest.fixture
def template() -> InterviewTemplate:
    return short_template()


@pytest.fixture
async def server(aiohttp_client, settings, store, engines, make_key):
    """The app with the real engines on 127.0.0.1; the client holds an API key for reading records back."""
    return await aiohttp_client(make_app(settings, store, background_jobs=False, engines=engines),
                                headers=make_key())


def schedule(store: SessionStore, template: InterviewTemplate, *, name: str = "Ana Ruiz",
             channel: str = "web", days: float = 1) -> tuple[str, str]:
    """A scheduled interview; returns (interview id, join token)."""
    position = store.create_position(template)
    candidate, _ = store.upsert_candidate({"name": name, "phone": None, "email": "ana@example.com"})
    interview, token = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel=channel,
                                              expires_at=store.clock() + timedelta(days=days))
    return interview.id, token


def speech_seconds(engines: VoiceEngines, text: str) -> float:
    return sum(len(chunk) for chunk in engines.tts.synthesize(text)) / engines.tts.sample_rate


def answers_wav(path: Path, engines: VoiceEngines, template: InterviewTemplate) -> Path:
    """The fake microphone: silence while the AI greets and asks for consent, the consent, silence while it
    asks the question, the answer, then a long silence (Chromium loops the file; the call ends first).
    The silences are the AI's measured speaking time plus a margin, so no answer talks over it."""
    opening = f"{template.render_greeting('Ana')} {template.consent}"
    question = f"Thank you, let's begin. {template.factors[0].questions[0]}"
    lead_s = 4.0 + speech_seconds(engines, opening) + 3.0  # start-up, the greeting, a pause
    gap_s = 1.5 + speech_seconds(engines, question) + 3.5  # end of turn + acknowledgement, the question, a pause

    def quiet(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * WEB_RATE), dtype=np.int16)

    pcm = np.concatenate([quiet(lead_s), candidate_audio(CONSENT, WEB_RATE, telephone=False), quiet(gap_s),
                          candidate_audio(ANSWER, WEB_RATE, telephone=False), quiet(120)])
    return write_wav(path, pcm, WEB_RATE)


async def phone_record(server, store: SessionStore, template: InterviewTemplate, engines: VoiceEngines,
                       tmp_path: Path) -> dict:
    """The record of the same interview run over an in-process phone line (8 kHz, G.711), as the API shows it."""
    interview_id = connected_interview(store, template, name="Bo Chen", phone="+14155550123")
    session = InterviewSession.for_interview(store, interview_id, engines=engines, voice=VoiceSettings(),
                                             recordings_dir=tmp_path)
    status = await run_call(session, SimulatedCandidate(CandidateScript("phone", (CONSENT, ANSWER))))
    assert status == "completed"
    response = await server.get(f"/api/v1/interviews/{interview_id}")
    assert response.status == 200
    return await response.json()


async def watch_states(page) -> None:
    """Record every state the page shows, so the test can check the sequence afterwards."""
    await page.evaluate("""() => {
        window.shownStates = [];
        const box = document.getElementById('state');
        new MutationObserver(() => {
            const s = box.dataset.state;
            if (window.shownStates[window.shownStates.length - 1] !== s) window.shownStates.push(s);
        }).observe(box, {attributes: true, attributeFilter: ['data-state']});
    }""")


async def test_web_interview_completes_end_to_end_with_the_same_record_as_a_phone_call(
        server, store, engines, template, tmp_path) -> None:
    interview_id, token = schedule(store, template)
    wav = answers_wav(tmp_path / "answers.wav", engines, template)
    # The acknowledgements are synthesized once per process; make that happen before the clock starts.
    await asyncio.get_running_loop().run_in_executor(None, engines.phrases(WEB_RATE).warm, ACKNOWLEDGEMENTS)
    link = str(server.make_url("/join")) + f"#{token}"
    async with chromium(tmp_path / "profile", fake_audio=wav) as browser:
        page = await browser.new_page()
        await page.goto(link)
        await page.wait_for_selector("#intro", state="visible", timeout=20_000)
        assert await page.text_content("#candidate-name") == "Ana"
        await watch_states(page)
        await page.click("#start")
        await page.wait_for_selector("#live", state="visible", timeout=20_000)
        await page.wait_for_selector('#state[data-state="speaking"]', timeout=60_000)
        await page.screenshot(path=artifact("web-interview-live.png"))

        second_tab = await browser.new_page()  # one session per link: the same link again is refused
        await second_tab.goto(link)
        await second_tab.wait_for_selector("#refused", state="visible", timeout=20_000)
        assert "already been used" in await second_tab.text_content("#refused")

        await page.wait_for_selector("#ended", state="visible", timeout=240_000)
        shown = await page.evaluate("window.shownStates")
        await page.screenshot(path=artifact("web-interview-ended.png"))

    assert shown[0] == "connecting" and shown[-1] == "ended", shown
    assert shown.index("speaking") < len(shown) - 1 - shown[::-1].index("listening"), shown  # it took turns
    interview = store.get_interview(interview_id)
    assert interview.status == "completed" and interview.channel == "web"
    turns = store.turns(interview_id)
    spoken = [t.text for t in turns if t.role == "candidate"]
    assert len(spoken) == 2, [(t.role, t.text) for t in turns]
    wer = word_error_rate(f"{CONSENT} {ANSWER}", " ".join(spoken))
    assert wer <= 0.15, spoken
    agent = [t.text for t in turns if t.role == "agent"]
    assert "Ana" in agent[0] and template.factors[0].questions[0] in " ".join(agent)
    assert template.closing.split(".")[0] in agent[-1]
    assert Path(interview.recording_path).is_file()
    joined = [e for e in store.events(interview_id=interview_id) if e.type == "interview.status_changed"]
    assert [e.data["to"] for e in joined] == ["in_progress", "completed"]

    response = await server.get(f"/api/v1/interviews/{interview_id}")
    web_record = await response.json()
    phone = await phone_record(server, store, template, engines, tmp_path)
    assert phone["channel"] == "sip" and web_record["channel"] == "web"
    assert record_shape(web_record) == record_shape(phone)
    assert token not in json.dumps(web_record)


@pytest.fixture
async def late_server(aiohttp_client, settings, store, engines):
    """The same app whose store's clock runs two days ahead: invites due in one day have expired for it."""
    ahead = SessionStore(settings.store.path, clock=lambda: utcnow() + timedelta(days=2))
    yield await aiohttp_client(make_app(settings, ahead, background_jobs=False, engines=engines))
    ahead.close()


async def test_expired_used_cancelled_and_broken_links_get_a_clear_page(server, late_server, store, template,
                                                                        tmp_path) -> None:
    expired_id, expired = schedule(store, template, name="Eve Expired")
    store.transition(expired_id, "expired")
    _, overdue = schedule(store, template, name="Olly Overdue")  # still scheduled, but past its expiry
    used_id, used = schedule(store, template, name="Uma Used")
    store.transition(used_id, "in_progress")
    store.transition(used_id, "completed")
    cancelled_id, cancelled = schedule(store, template, name="Cal Cancelled")
    store.transition(cancelled_id, "cancelled")
    cases = [(server, expired, "This link has expired", "expired"),
             (late_server, overdue, "This link has expired", "expired"),
             (server, used, "This link has already been used", "one session only"),
             (server, cancelled, "This link can't be used", "cancelled"),
             (server, "not-a-real-token", "This link can't be used", "not valid"),
             (server, "", "This link is incomplete", "part after # is missing")]
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        for client, token, title, message in cases:
            await page.goto("about:blank")  # a link differing only after # would not load the page again
            await page.goto(str(client.make_url("/join")) + (f"#{token}" if token else ""))
            await page.wait_for_selector("#refused", state="visible", timeout=20_000)
            assert await page.text_content("#refused-title") == title, token
            assert message in await page.text_content("#refused-message"), token
            assert await page.is_hidden("#intro")
            if token == expired:
                await page.screenshot(path=artifact("web-link-expired.png"))
    assert store.get_interview(expired_id).status == "expired"  # a refusal changes nothing


async def _join(server, token: str):
    ws = await server.ws_connect("/ws/join")
    await ws.send_json({"type": "join", "token": token})
    return ws, await ws.receive_json(timeout=10)


async def test_join_protocol_refuses_bad_first_messages(server, store, template) -> None:
    for first in ("not json", json.dumps({"type": "join"}), json.dumps({"type": "join", "token": "x" * 500})):
        ws = await server.ws_connect("/ws/join")
        await ws.send_str(first)
        reply = await ws.receive_json(timeout=10)
        assert reply["type"] == "refused" and reply["reason"] == "bad_request", first
        assert (await ws.receive(timeout=10)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        await ws.close()
    interview_id, token = schedule(store, template)
    ws, ready = await _join(server, token)
    assert ready["type"] == "ready"
    await ws.send_str('{"type": "begin"}')  # anything but start
    assert (await ws.receive_json(timeout=10))["reason"] == "bad_request"
    await ws.close()
    assert store.get_interview(interview_id).status == "scheduled"  # the link still works


async def test_only_one_tab_starts_the_interview(server, store, template) -> None:
    interview_id, token = schedule(store, template)
    first, ready_first = await _join(server, token)
    second, ready_second = await _join(server, token)
    assert ready_first["type"] == ready_second["type"] == "ready" and ready_first["candidateName"] == "Ana"
    await first.send_json({"type": "start"})
    assert await first.receive_json(timeout=10) == {"type": "state", "state": "connecting"}
    await second.send_json({"type": "start"})
    refusal = await second.receive_json(timeout=10)
    assert refusal["type"] == "refused" and refusal["reason"] == "used"
    await first.send_json({"type": "hangup"})
    async for message in first:  # the server closes once the session has ended
        if message.type == WSMsgType.TEXT and json.loads(message.data)["type"] == "ended":
            pytest.fail("a hang-up by the candidate is not ended by the server's goodbye")
    await second.close()
    assert await wait_for_status(store, interview_id, {"partial"}) == "partial"


async def wait_for_status(store: SessionStore, interview_id: str, wanted: set[str], limit_s: float = 60) -> str:
    deadline = time.monotonic() + limit_s
    while (status := store.get_interview(interview_id).status) not in wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return status


async def stream(ws, pcm: np.ndarray) -> None:
    """Send audio like a browser does: 20 ms at a time, in real time."""
    data = pcm.astype("<i2").tobytes()
    for at in range(0, len(data), FRAME_BYTES):
        await ws.send_bytes(data[at:at + FRAME_BYTES])
        await asyncio.sleep(0.02)


async def stream_until(ws, predicate, limit_s: float = 60) -> None:
    silence = bytes(FRAME_BYTES)
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "the session did not get there in time"
        await ws.send_bytes(silence)
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("ending", ["garbage", "dropped"])
async def test_a_broken_or_dropped_line_ends_partial_and_keeps_every_turn(server, store, template, ending) -> None:
    interview_id, token = schedule(store, template)
    ws, ready = await _join(server, token)
    await ws.send_json({"type": "start"})
    received: list = []
    reader = asyncio.create_task(_read_all(ws, received))

    def roles() -> list[str]:
        return [t.role for t in store.turns(interview_id)]

    await stream_until(ws, lambda: "agent" in roles())  # the greeting has been played and stored
    await stream(ws, candidate_audio(CONSENT, WEB_RATE, telephone=False))
    await stream_until(ws, lambda: "candidate" in roles())
    if ending == "garbage":
        await ws.send_bytes(b"\x01\x02\x03")  # an odd number of bytes cannot be PCM16
    else:
        await ws.close()
    await asyncio.wait_for(reader, 30)
    assert await wait_for_status(store, interview_id, {"partial", "completed"}) == "partial"
    if ending == "garbage":
        errors = [m for m in received if isinstance(m, dict) and m.get("type") == "error"]
        assert errors and "odd number of bytes" in errors[0]["message"]
        assert ws.close_code == aiohttp.WSCloseCode.UNSUPPORTED_DATA
    assert any(isinstance(m, bytes) and len(m) % FRAME_BYTES == 0 for m in received)  # the AI's voice came
    candidate = [t.text for t in store.turns(interview_id) if t.role == "candidate"]
    assert len(candidate) == 1 and word_error_rate(CONSENT, candidate[0]) <= 0.2, candidate  # one word in five
    assert Path(store.get_interview(interview_id).recording_path).is_file()


async def _read_all(ws, into: list) -> None:
    async for message in ws:
        into.append(json.loads(message.data) if message.type == WSMsgType.TEXT else message.data)


# -- the leg alone, over a real WebSocket ------------------------------------------------------------------
@pytest.fixture
async def leg_pair(aiohttp_client):
    """A WebSocket whose server side is a WebLeg; the test reads what the leg receives from `events`."""
    events: list = []
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        leg = WebLeg(ws, "int_test")
        while not isinstance(event := await leg.receive(), LineEnded):
            events.append(event)
            if isinstance(event, AudioFrame):
                leg.send(event)  # echo, like the bridge's one frame back per frame received
        events.append(event)
        await leg.close()
        done.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    return client, events, done


async def test_leg_recuts_any_message_size_into_20_ms_frames(leg_pair) -> None:
    client, events, done = leg_pair
    ws = await client.ws_connect("/ws")
    pcm = (np.arange(16000) % 200 - 100).astype("<i2").tobytes()  # one second, recognizable
    for at in range(0, len(pcm), 998):  # odd-sized runs of whole samples, not frame-aligned
        await ws.send_bytes(pcm[at:at + 998])
    await ws.send_json({"type": "dtmf", "digit": "1"})
    await ws.send_json({"type": "hangup"})
    echoed = b""
    async for message in ws:  # until the leg closes the socket
        if message.type == WSMsgType.BINARY:
            echoed += message.data
    await asyncio.wait_for(done.wait(), 10)
    frames = [e for e in events if isinstance(e, AudioFrame)]
    assert all(f.sample_rate == WEB_RATE and len(f.pcm) == FRAME_BYTES for f in frames)
    assert len(frames) == 50 and b"".join(f.pcm for f in frames) == pcm
    assert events[-2:] == [Dtmf("1"), LineEnded("remote_hangup")]
    assert echoed == pcm  # sent back in order, nothing dropped


@pytest.mark.parametrize("bad, reason", [
    ("text:{not json", "control messages must be JSON"),
    ('text:{"type": "dtmf", "digit": "x"}', "unknown control message"),
    ("text:[1, 2]", "unknown control message"),
    ("bytes:odd", "odd number of bytes"),
])
async def test_leg_closes_with_a_clear_error_on_a_broken_message(leg_pair, bad, reason) -> None:
    client, events, done = leg_pair
    ws = await client.ws_connect("/ws")
    await ws.send_bytes(bytes(FRAME_BYTES))  # one good frame first: it must still arrive
    kind, _, payload = bad.partition(":")
    if kind == "text":
        await ws.send_str(payload)
    else:
        await ws.send_bytes(b"\x00" * 641)
    messages = [m async for m in ws]
    errors = [json.loads(m.data) for m in messages if m.type == WSMsgType.TEXT]
    assert errors and errors[-1]["type"] == "error" and reason in errors[-1]["message"]
    assert ws.close_code == aiohttp.WSCloseCode.UNSUPPORTED_DATA
    await asyncio.wait_for(done.wait(), 10)
    assert isinstance(events[0], AudioFrame) and events[-1] == LineEnded("protocol_error")


async def test_leg_refuses_an_oversized_message(leg_pair) -> None:
    client, events, done = leg_pair
    ws = await client.ws_connect("/ws")
    await ws.send_bytes(bytes(MAX_MESSAGE_BYTES + 2))
    [m async for m in ws]
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await asyncio.wait_for(done.wait(), 10)
    assert events == [LineEnded("stream_error")]
