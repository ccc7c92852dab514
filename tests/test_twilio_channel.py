"""The Twilio channel without audio: settings checks, the Media Streams codec, the status mapping, the
one-time stream token, and calls that never reach an interview (busy, no answer, failed, voicemail,
refused by Twilio) placed through the `twilio` library against the local Twilio double, with signed
status callbacks into the real server on 127.0.0.1."""
from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from config.settings import ServerSettings, Settings, SettingsError, TwilioSettings
from dialer.twilio import media_streams as wire
from dialer.twilio.calls import TwilioCallError, place_twilio_call, status_callback_url
from dialer.twilio.settings_check import check_twilio_settings
from dialer.twilio.status import interpret
from models.db import utcnow
from models.store import Conflict, SessionStore
from server.app import make_app
from server.http import SETTINGS
from server.channels.twilio_endpoints import place_call
from twilio_double import Callee, TwilioDouble, twilio_interview, twilio_settings

PHONE = "+14155550123"
GOOD = TwilioSettings(enabled=True, account_sid="AC" + "0123456789abcdef" * 2, auth_token="secret-token",
                      from_number="+15005550006")


@pytest.fixture
async def app(aiohttp_server, settings: Settings, store: SessionStore, double: TwilioDouble):
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port), store, background_jobs=False)
    await aiohttp_server(app, port=port)
    return app


# -- start-up checks -------------------------------------------------------------------------------
def test_good_settings_pass_and_disabled_twilio_is_not_checked() -> None:
    public = ServerSettings(public_url="https://screen.example.com")
    check_twilio_settings(Settings(server=public, twilio=GOOD))
    check_twilio_settings(Settings(twilio=TwilioSettings(enabled=False, account_sid="nonsense")))
    local = ServerSettings(public_url="http://127.0.0.1:8080")
    check_twilio_settings(Settings(server=local, twilio=dataclasses.replace(GOOD, api_base_url="http://127.0.0.1:9")))


@pytest.mark.parametrize(("change", "public_url", "named"), [
    ({"account_sid": "AC123"}, "https://x.example.com", "twilio.account_sid"),
    ({"account_sid": "XX" + "0" * 32}, "https://x.example.com", "twilio.account_sid"),
    ({"auth_token": "  "}, "https://x.example.com", "twilio.auth_token"),
    ({"from_number": "555-0100"}, "https://x.example.com", "twilio.from_number"),
    ({"from_number": "+1 415 555 0100"}, "https://x.example.com", "twilio.from_number"),
    ({}, "", "server.public_url"),
    ({}, "http://screen.example.com", "server.public_url"),
    ({"api_base_url": "http://api.example.com"}, "https://x.example.com", "twilio.api_base_url"),
])
def test_bad_settings_stop_start_up_naming_the_key(change, public_url, named) -> None:
    settings = Settings(server=ServerSettings(public_url=public_url), twilio=dataclasses.replace(GOOD, **change))
    with pytest.raises(SettingsError) as caught:
        check_twilio_settings(settings)
    assert named in str(caught.value)
    assert "secret-token" not in str(caught.value)


def test_serve_refuses_to_start_with_a_misconfigured_account(tmp_path: Path) -> None:
    config = tmp_path / "phonescreen.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "p.db"}"\n[twilio]\nenabled = true\n'
                      'account_sid = "AC12"\nauth_token = "t"\nfrom_number = "+15005550006"\n')
    proc = subprocess.run([sys.executable, "-m", "server.cli", "--config", str(config), "serve", "--port",
                           str(unused_port())], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 2
    assert "twilio.account_sid" in proc.stderr and "server.public_url" in proc.stderr


# -- the wire format -------------------------------------------------------------------------------
def test_twilio_messages_parse_as_documented() -> None:
    start = wire.parse_message(json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
        "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": {"interviewId": "int_1", "streamToken": "t"}}}))
    assert start == wire.Start("MZ1", "CA1", "AC1", ("inbound",), wire.MULAW_8K,
                               {"interviewId": "int_1", "streamToken": "t"})
    media = wire.parse_message(json.dumps({
        "event": "media", "sequenceNumber": "3", "streamSid": "MZ1",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": base64.b64encode(b"\xff" * 160).decode()}}))
    assert media == wire.Media("MZ1", "inbound", b"\xff" * 160)
    assert wire.parse_message('{"event": "dtmf", "streamSid": "MZ1", "sequenceNumber": "5", '
                              '"dtmf": {"track": "inbound_track", "digit": "1"}}') == wire.Dtmf("MZ1", "1")
    assert wire.parse_message('{"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1", '
                              '"mark": {"name": "ai-1"}}') == wire.Mark("MZ1", "ai-1")
    assert wire.parse_message('{"event": "stop", "sequenceNumber": "5", "streamSid": "MZ1", '
                              '"stop": {"accountSid": "AC1", "callSid": "CA1"}}') == wire.Stop("MZ1", "CA1")
    assert wire.parse_message('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == \
        wire.Connected("Call", "1.0.0")


@pytest.mark.parametrize("text", [
    "{not json", "[]", '{"event": "dance", "streamSid": "MZ1"}', '{"streamSid": "MZ1"}',
    '{"event": "media", "streamSid": "MZ1", "media": {"payload": "***"}}',
    '{"event": "media", "media": {"payload": "/w=="}}',
    '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "x"}}',
    '{"event": "mark", "streamSid": "MZ1", "mark": {}}',
    '{"event": "start", "streamSid": "MZ1", "start": {"callSid": "CA1", "accountSid": "AC1"}}',
    json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "A" * 20_000}}),
])
def test_malformed_messages_are_refused(text: str) -> None:
    with pytest.raises(wire.StreamMessageError):
        wire.parse_message(text)


def test_messages_to_twilio_have_the_documented_shape() -> None:
    assert json.loads(wire.media_message("MZ1", b"\xff\x7f")) == \
        {"event": "media", "streamSid": "MZ1", "media": {"payload": base64.b64encode(b"\xff\x7f").decode()}}
    assert json.loads(wire.mark_message("MZ1", "ai-2")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "ai-2"}}
    assert json.loads(wire.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


# -- lifecycle mapping -----------------------------------------------------------------------------
@pytest.mark.parametrize(("call_status", "current", "streamed", "answered_by", "expected", "outcome"), [
    ("initiated", "dialing", False, "", None, None),
    ("ringing", "dialing", False, "", "ringing", None),
    ("ringing", "in_progress", True, "", None, None),  # late and out of order: ignored
    ("in-progress", "ringing", False, "", "in_progress", None),
    ("in-progress", "in_progress", True, "", None, None),
    ("busy", "ringing", False, "", "busy", "busy"),
    ("no-answer", "ringing", False, "", "no_answer", "no-answer"),
    ("failed", "dialing", False, "", "failed", "failed"),
    ("canceled", "ringing", False, "", "cancelled", "canceled"),
    ("completed", "ringing", False, "", "no_answer", "completed"),
    ("completed", "in_progress", False, "", "failed", "completed"),
    ("completed", "in_progress", True, "", None, None),  # the session ends it completed or partial
    ("completed", "completed", True, "", None, None),
    ("in-progress", "ringing", False, "machine_start", "no_answer", "voicemail"),
    ("in-progress", "ringing", False, "human", "in_progress", None),
])
def test_call_statuses_map_onto_the_lifecycle(call_status, current, streamed, answered_by, expected, outcome) -> None:
    update = interpret(call_status, current, streamed=streamed, answered_by=answered_by)
    assert (update.status, update.outcome_code) == (expected, outcome)
    assert update.hang_up == (answered_by == "machine_start")


# -- the one-time stream token ---------------------------------------------------------------------
def test_stream_token_is_one_time_expiring_and_stored_as_a_hash(settings, sample_template) -> None:
    now = [utcnow()]
    store = SessionStore(settings.store.path, clock=lambda: now[0])
    iid = twilio_interview(store, sample_template, PHONE)
    token = store.issue_stream_token(iid, ttl_s=60)
    raw = store.db.execute("SELECT * FROM twilio_calls").fetchone()
    assert token not in json.dumps(raw)
    with pytest.raises(Conflict):
        store.issue_stream_token(iid, ttl_s=60)  # one call per interview
    assert not store.redeem_stream_token(iid, token + "x", "MZ1")
    assert store.redeem_stream_token(iid, token, "MZ1")
    assert not store.redeem_stream_token(iid, token, "MZ2")  # spent
    assert store.twilio_call(iid).stream_sid == "MZ1"
    late = twilio_interview(store, sample_template, phone="+14155550124")
    token = store.issue_stream_token(late, ttl_s=60)
    now[0] += timedelta(seconds=61)
    assert not store.redeem_stream_token(late, token, "MZ3")  # expired
    store.close()


# -- calls that never reach the interview ----------------------------------------------------------
async def _place(app, store, double, template, callee: Callee) -> tuple[str, str]:
    iid = twilio_interview(store, template, PHONE)
    double.callees[PHONE] = callee
    sid = await place_call(app, iid)
    await double.wait_ended(sid, timeout_s=30)
    return iid, sid


@pytest.mark.parametrize(("answer", "status"), [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")])
async def test_unanswered_calls_end_the_interview(app, store, double, sample_template, answer, status) -> None:
    iid, sid = await _place(app, store, double, sample_template, Callee(answer=answer))
    call = double.calls[sid]
    assert [c for c, _ in call.callbacks] == ["initiated", "ringing", answer]
    assert all(code == 204 for _, code in call.callbacks)
    interview = store.get_interview(iid)
    assert (interview.status, interview.outcome_code, interview.attempt_count) == (status, answer, 1)
    assert [e.data["to"] for e in store.events(interview_id=iid) if e.type == "interview.status_changed"] == \
        ["dialing", "ringing", status]
    assert store.twilio_call(iid).call_sid == sid and store.twilio_call(iid).stream_started_at is None


async def test_the_twilio_library_posts_the_documented_form(app, store, double, sample_template) -> None:
    iid, sid = await _place(app, store, double, sample_template, Callee(answer="busy"))
    call = double.calls[sid]
    settings = app[SETTINGS]
    assert (call.to, call.from_) == (PHONE, double.from_number)
    assert call.events == ["initiated", "ringing", "answered", "completed"]
    assert call.status_callback == status_callback_url(settings, iid)
    assert call.stream_url == f"ws://127.0.0.1:{settings.server.port}/twilio/stream"
    assert set(call.stream_params) == {"interviewId", "streamToken"} and call.stream_params["interviewId"] == iid


async def test_answering_machine_is_hung_up_as_voicemail(aiohttp_server, settings, store, double,
                                                         sample_template) -> None:
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port, machine_detection="Enable"), store,
                   background_jobs=False)
    await aiohttp_server(app, port=port)
    iid, sid = await _place(app, store, double, sample_template, Callee(answer="machine"))
    call = double.calls[sid]
    assert call.machine_detection == "Enable"
    assert call.hangup_requested.is_set() and call.stream_sid is None  # hung up through REST, never streamed
    interview = store.get_interview(iid)
    assert (interview.status, interview.outcome_code) == ("no_answer", "voicemail")


async def test_refused_call_ends_the_interview_failed(aiohttp_server, settings, store, double, sample_template) -> None:
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port, auth_token="not-the-token"), store, background_jobs=False)
    await aiohttp_server(app, port=port)
    iid = twilio_interview(store, sample_template, PHONE)
    with pytest.raises(TwilioCallError) as caught:
        await place_call(app, iid)
    assert caught.value.code == "20003"  # Twilio's "Authenticate"
    interview = store.get_interview(iid)
    assert (interview.status, interview.outcome_code) == ("failed", "20003")
    assert not double.calls


async def test_only_scheduled_twilio_interviews_are_dialed(app, store, double, sample_template) -> None:
    settings = app[SETTINGS]
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Bo", "phone": PHONE, "timezone": "UTC"})
    web, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                    expires_at=store.clock() + timedelta(days=1))
    with pytest.raises(Conflict):
        await place_twilio_call(settings, store, web.id)
    with pytest.raises(Conflict):
        await place_twilio_call(dataclasses.replace(settings, twilio=TwilioSettings()), store, web.id)
    assert store.get_interview(web.id).status == "scheduled" and not double.calls


# -- status callbacks: signatures and repeats ------------------------------------------------------
async def test_forged_or_unsigned_callbacks_are_refused(app, store, double, sample_template) -> None:
    iid, sid = await _place(app, store, double, sample_template, Callee(answer="busy"))
    other = twilio_interview(store, sample_template, phone="+14155550125")
    store.transition(other, "dialing")
    store.issue_stream_token(other, 60)
    settings = app[SETTINGS]
    url = status_callback_url(settings, other)
    params = {"AccountSid": double.account_sid, "CallSid": "CA" + "1" * 32, "CallStatus": "completed"}
    forger = TwilioDouble()  # another account's token signs it
    attempts = [{}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
                {"X-Twilio-Signature": forger.sign(url, params)},
                {"X-Twilio-Signature": double.sign(status_callback_url(settings, iid), params)}]  # another URL
    async with aiohttp.ClientSession() as http:
        for headers in attempts:
            async with http.post(url, data=params, headers=headers) as response:
                assert response.status == 403
                assert (await response.json())["error"]["code"] == "forbidden"
    assert store.get_interview(other).status == "dialing" and store.twilio_call(other).call_sid is None


async def test_repeated_callbacks_change_nothing(app, store, double, sample_template) -> None:
    iid, sid = await _place(app, store, double, sample_template, Callee(answer="busy"))
    settings = app[SETTINGS]
    url = status_callback_url(settings, iid)
    events_before = store.events(interview_id=iid)
    async with aiohttp.ClientSession() as http:
        for status in ("busy", "ringing", "busy", "in-progress"):  # a repeat, then late and out of order
            params = {"AccountSid": double.account_sid, "CallSid": sid, "CallStatus": status}
            async with http.post(url, data=params, headers={"X-Twilio-Signature": double.sign(url, params)}) as r:
                assert r.status == 204
        bad = {"AccountSid": double.account_sid, "CallSid": sid, "CallStatus": "exploded"}
        async with http.post(url, data=bad, headers={"X-Twilio-Signature": double.sign(url, bad)}) as r:
            assert r.status == 400
    assert store.get_interview(iid).status == "busy"
    assert store.events(interview_id=iid) == events_before
