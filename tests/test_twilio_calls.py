"""Interviews over the Twilio channel end to end: the server on 127.0.0.1 places the call with the
`twilio` library against the local Twilio double, which posts signed status callbacks and connects a
Media Stream carrying a simulated candidate (Piper answers as mu-law, in real time) to the real voice
engine (webrtcvad, Whisper tiny.en, Piper) and the real store."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from config.templates import InterviewTemplate, parse_template
from dialer.simulator import CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.session import InterviewSession
from models.lifecycle import ACTIVE
from server.app import make_app
from server.http import SETTINGS
from server.channels.twilio_endpoints import place_call
from twilio_double import Callee, twilio_interview, twilio_settings
from voice import word_error_rate

CONSENT = "Yes, that's fine, go ahead."
ANSWER = ("I would open the bill with the customer and go through it line by line, and then I would check "
          "that they understood each charge.")
# A patient caller: two seconds of quiet before taking the turn, so a reply slowed by a busy CPU is not
# mistaken for the end of the AI's turn (the engines share two cores with everything else).
PATIENT_MS = 2000
PHONE = "+14155550123"


@pytest.fixture
def template(sample_template: InterviewTemplate) -> InterviewTemplate:
    """The sample template cut to one question, so a real-time call stays short."""
    data = sample_template.to_dict()
    data.update(greeting="Hi {candidate_name}, this is {company}.",
                consent="This call is recorded, and I am an AI interviewer. Do you agree to continue?",
                closing="Thank you, that's all my questions. Goodbye.",
                factors=[{**data["factors"][0], "max_follow_ups": 0}])
    return parse_template(data)


@pytest.fixture
async def server(aiohttp_server, settings, store, double, engines, make_key):
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port), store, background_jobs=False, engines=engines)
    await aiohttp_server(app, port=port)
    return app, f"http://127.0.0.1:{port}", make_key()


async def call_candidate(app, store, double, template, callee: Callee) -> tuple[str, object]:
    """Place the call, wait for Twilio's side to end and the interview to settle."""
    iid = twilio_interview(store, template, PHONE)
    double.callees[PHONE] = callee
    sid = await place_call(app, iid)
    call = await double.wait_ended(sid, timeout_s=240)
    deadline = time.monotonic() + 60
    while store.get_interview(iid).status in ACTIVE and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return iid, call


async def get_json(base: str, headers: dict, path: str) -> dict:
    async with aiohttp.ClientSession(headers=headers) as http, http.get(base + path) as response:
        assert response.status == 200
        return await response.json()


async def test_interview_over_twilio_completes_with_the_same_record_as_in_process(server, store, double, template,
                                                                                  engines, tmp_path) -> None:
    app, base, key = server
    script = CandidateScript("concrete", (CONSENT, ANSWER), ai_done_ms=PATIENT_MS)
    iid, call = await call_candidate(app, store, double, template, Callee(script))
    interview = store.get_interview(iid)
    assert interview.status == "completed", interview
    assert [status for status, _ in call.callbacks] == ["initiated", "ringing", "in-progress", "completed"]
    assert all(code == 204 for _, code in call.callbacks)
    assert call.stream_end == "rest_hangup"  # the server ended the call through REST once the goodbye played
    assert not call.protocol_errors and call.media_received > 100
    # A mark followed each utterance and came back only after its audio was played, the goodbye's included.
    assert len(call.marks_received) >= 3 and call.marks_echoed == call.marks_received
    turns = store.turns(iid)
    spoken = [t for t in turns if t.role == "candidate"]
    assert len(spoken) == len(call.candidate.said) == 2
    wer = word_error_rate(" ".join(a.text for a in call.candidate.said), " ".join(t.text for t in spoken))
    assert wer <= 0.15, [t.text for t in spoken]
    assert template.closing.split(".")[0] in turns[-1].text and turns[-1].role == "agent"

    # The same script through the in-process line: the stored record has the same shape.
    local_id = connected_interview(store, template, phone="+14155550199")
    session = InterviewSession.for_interview(store, local_id, engines=engines, voice=app[SETTINGS].voice,
                                             recordings_dir=tmp_path)
    assert await run_call(session, SimulatedCandidate(script)) == "completed"
    twilio_record = await get_json(base, key, f"/api/v1/interviews/{iid}")
    local_record = await get_json(base, key, f"/api/v1/interviews/{local_id}")
    assert set(twilio_record) == set(local_record)
    assert [set(t) for t in twilio_record["turns"]] == [set(t) for t in local_record["turns"]]
    assert [t["role"] for t in twilio_record["turns"]] == [t["role"] for t in local_record["turns"]]
    assert {frozenset(e) for e in twilio_record["events"]} == {frozenset(e) for e in local_record["events"]}
    assert twilio_record["channel"] == "twilio" and twilio_record["recordingPath"]
    transcript = await get_json(base, key, f"/api/v1/interviews/{iid}/transcript")
    assert transcript["turns"] == twilio_record["turns"]
    assert double.auth_token not in json.dumps(twilio_record)


async def test_barge_in_clears_twilio_playback(server, store, double, template) -> None:
    app, _, _ = server
    script = CandidateScript("interrupts", (CONSENT, ANSWER), interrupt_answer=1, interrupt_after_ms=2500,
                             ai_done_ms=PATIENT_MS)
    iid, call = await call_candidate(app, store, double, template, Callee(script))
    assert call.clears >= 1  # the leg sent `clear` when the candidate talked over the question
    assert store.get_interview(iid).status == "completed"
    turns = store.turns(iid)
    cut = [t for t in turns if t.interrupted]
    assert [t.role for t in cut] == ["agent"], [(t.role, t.interrupted, t.text) for t in turns]
    question = template.factors[0].questions[0]
    assert cut[0].text and question not in cut[0].text  # only the words played before the barge-in are kept
    assert [t.role for t in turns].count("candidate") == 2
    # Marks cleared with the audio came back at once; every mark sent was accounted for.
    assert sorted(call.marks_echoed) == sorted(call.marks_received) and not call.protocol_errors


async def test_websocket_drop_mid_interview_ends_partial_keeping_the_turns(server, store, double, template) -> None:
    app, _, _ = server
    script = CandidateScript("dropped", (CONSENT, ANSWER), ai_done_ms=PATIENT_MS)
    iid, call = await call_candidate(app, store, double, template, Callee(script, drop_after_answers=1))
    assert call.stream_end == "dropped"
    interview = store.get_interview(iid)
    assert interview.status == "partial" and interview.recording_path
    spoken = [t for t in store.turns(iid) if t.role == "candidate"]
    # One word in five may be misheard: on AMD EPYC tiny.en hears this "go ahead" as "Oh, ahead" (Intel: exact).
    assert len(spoken) == 1 and word_error_rate(CONSENT, spoken[0].text) <= 0.2
    assert call.callbacks[-1] == ("completed", 204)  # Twilio's last word changed nothing: the session decided


async def test_bad_streams_are_refused_and_the_server_goes_on(server, store, double, template, caplog) -> None:
    app, base, _ = server
    stream_url = base.replace("http://", "ws://") + "/twilio/stream"
    start = {"event": "start", "streamSid": "MZ1", "start": {
        "accountSid": double.account_sid, "streamSid": "MZ1", "callSid": "CA" + "2" * 32, "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"interviewId": "int_unknown", "streamToken": "guess"}}}
    before_start = ["{not json", b"\x00\x01binary", json.dumps({"event": "dance"}),
                    json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "/w=="}}),
                    json.dumps(start), "x" * 70_000]
    waiting = twilio_interview(store, template, "+14155550124")  # being dialed: its token is not known here
    store.transition(waiting, "dialing")
    store.issue_stream_token(waiting, 60)
    guess = {**start, "start": {**start["start"], "customParameters": {"interviewId": waiting, "streamToken": "guess"}}}
    before_start.append(json.dumps(guess))
    async with aiohttp.ClientSession() as http:
        for first in before_start:  # each closes the socket: no interview is bound to it
            async with http.ws_connect(stream_url) as ws:
                await (ws.send_bytes(first) if isinstance(first, bytes) else ws.send_str(first))
                message = await ws.receive(timeout=15)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code in (1008, 1009)
    call = store.twilio_call(waiting)
    assert store.get_interview(waiting).status == "dialing" and call.call_sid is None and not call.stream_started_at

    # A good call whose stream meets garbage once bound: each bad message is dropped, the interview goes on
    # (and a keypad press in the same burst is heard).
    garbage = ("{not json", b"\x00binary", '{"event": "dance", "streamSid": "{stream_sid}"}',
               '{"event": "media", "streamSid": "MZ' + "9" * 32 + '", "media": {"track": "inbound", "payload": "/w=="}}',
               json.dumps({"event": "media", "streamSid": "{stream_sid}", "media": {"payload": "A" * 20_000}}))
    script = CandidateScript("concrete", (CONSENT, ANSWER), ai_done_ms=PATIENT_MS)
    caplog.set_level("WARNING", logger="phonescreen.twilio")
    keypad = '{"event": "dtmf", "streamSid": "{stream_sid}", "dtmf": {"track": "inbound_track", "digit": "9"}}'
    iid, call = await call_candidate(app, store, double, template, Callee(script, inject=(*garbage, keypad)))
    assert store.get_interview(iid).status == "completed"
    turns = store.turns(iid)
    assert len([t for t in turns if t.role == "candidate"]) == 2
    assert any(t.role == "agent" and t.text.startswith("Sure.") for t in turns)  # 9 on the keypad: repeat
    assert len([r for r in caplog.records if "dropped a message" in r.getMessage()]) == len(garbage)

    # Replaying that call's start (its token is spent, its interview finished) is refused too.
    replay = {**start, "start": {**start["start"], "callSid": call.sid, "customParameters": call.stream_params}}
    async with aiohttp.ClientSession() as http, http.ws_connect(stream_url) as ws:
        await ws.send_str(json.dumps(replay))
        assert (await ws.receive(timeout=15)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert store.get_interview(iid).status == "completed"
    assert call.stream_params["streamToken"] not in caplog.text
