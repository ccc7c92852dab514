"""Inbound calls on the Twilio channel: the number's voice webhook (POST /twilio/voice) on the real server on
127.0.0.1, signed by the local Twilio double. A known From gets <Connect><Stream> for the candidate's
interview (and, followed by the double, the interview runs over the media stream with the real voice
engine); an unknown From gets <Say> + <Hangup> and nothing is stored; a shared number asks for the name
first (<Gather>); unsigned or foreign requests change nothing."""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from config.settings import SettingsError, load_settings
from config.templates import InterviewTemplate, parse_template
from dialer.inbound import UNKNOWN_MESSAGE
from dialer.simulator import CandidateScript
from models.lifecycle import Status
from models.store import SessionStore
from server.app import make_app
from server.channels import twilio_inbound
from server.channels.twilio_inbound import CONFIRM_PATH, VOICE_PATH
from twilio_double import Callee, TwilioDouble, twilio_interview, twilio_settings

PHONE = "+14155550123"
CONSENT = "Yes, that's fine, go ahead."
ANSWER = ("I would open the bill with the customer and go through it line by line, and then I would check "
          "that they understood each charge.")


async def _server(aiohttp_server, settings, store, double, **kwargs):
    port = unused_port()
    twilio = kwargs.pop("twilio", {})
    app = make_app(twilio_settings(settings, double, port, **twilio), store, background_jobs=False, **kwargs)
    await aiohttp_server(app, port=port)
    return app, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server(aiohttp_server, settings, store, double):
    return await _server(aiohttp_server, settings, store, double)


async def post(url: str, params: dict[str, str], signer: TwilioDouble | None) -> tuple[int, str]:
    headers = {"X-Twilio-Signature": signer.sign(url, params)} if signer else {}
    async with aiohttp.ClientSession() as http, http.post(url, data=params, headers=headers) as response:
        return response.status, await response.text()


def call_params(double: TwilioDouble, from_: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": double.account_sid, "CallSid": "CA" + "7" * 32, "CallStatus": "ringing",
            "Direction": "inbound", "From": from_, "To": double.from_number, **extra}


def counts(store: SessionStore) -> dict[str, int]:
    return {table: store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("candidates", "interviews", "events", "twilio_calls", "call_attempts")}


async def test_a_known_number_is_connected_to_its_interview(server, store, double, sample_template) -> None:
    _, base = server
    iid = twilio_interview(store, sample_template, PHONE)
    status, twiml = await post(base + VOICE_PATH, call_params(double, "+1 415 555 0123"), double)
    assert status == 200
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert stream.get("url") == base.replace("http://", "ws://") + "/twilio/stream"
    assert params["interviewId"] == iid and len(params["streamToken"]) >= 40
    interview = store.get_interview(iid)
    assert interview.status == Status.IN_PROGRESS and interview.channel == "twilio"
    assert store.twilio_call(iid).call_sid == "CA" + "7" * 32
    assert params["streamToken"] not in str(store.twilio_call(iid))  # only its hash is kept


async def test_an_unknown_number_hears_a_message_and_nothing_is_stored(server, store, double,
                                                                         sample_template) -> None:
    _, base = server
    twilio_interview(store, sample_template, PHONE)
    before = counts(store)
    for caller in ("+14155550199", "anonymous", ""):
        status, twiml = await post(base + VOICE_PATH, call_params(double, caller), double)
        root = ET.fromstring(twiml)
        assert status == 200 and [child.tag for child in root] == ["Say", "Hangup"]
        assert root.find("Say").text == UNKNOWN_MESSAGE
    assert counts(store) == before


async def test_unsigned_foreign_or_disabled_requests_change_nothing(aiohttp_server, settings, store, double,
                                                                    sample_template) -> None:
    app, base = await _server(aiohttp_server, settings, store, double)
    iid = twilio_interview(store, sample_template, PHONE)
    url = base + VOICE_PATH
    assert (await post(url, call_params(double, PHONE), None))[0] == 403
    forged = call_params(double, PHONE)
    headers = {"X-Twilio-Signature": double.sign(url, {**forged, "From": "+14155550199"})}
    async with aiohttp.ClientSession() as http, http.post(url, data=forged, headers=headers) as response:
        assert response.status == 403  # signed for other parameters
    other = TwilioDouble()  # another account's token signs it
    assert (await post(url, call_params(double, PHONE), other))[0] == 403
    assert (await post(url, call_params(double, PHONE, AccountSid="AC" + "9" * 32), double))[0] == 403
    assert store.get_interview(iid).status == Status.SCHEDULED and store.twilio_call(iid) is None
    _, off = await _server(aiohttp_server, settings, store, double, twilio={"inbound": False})
    assert (await post(off + VOICE_PATH, call_params(double, PHONE), double))[0] == 404
    assert store.get_interview(iid).status == Status.SCHEDULED


async def test_a_shared_number_confirms_the_name_first(server, store, double, sample_template) -> None:
    _, base = server
    position = store.create_position(sample_template)
    ids = {}
    for name in ("Ana Ruiz", "Bo Li"):
        candidate = store.create_candidate({"name": name, "phone": PHONE, "timezone": "UTC"})
        ids[name], _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="twilio",
                                              expires_at=store.clock() + timedelta(days=1))
    status, twiml = await post(base + VOICE_PATH, call_params(double, PHONE), double)
    gather = ET.fromstring(twiml).find("Gather")
    assert status == 200 and "Am I speaking with Ana?" in gather.find("Say").text
    assert gather.get("input") == "speech dtmf" and gather.get("action").startswith(base + CONFIRM_PATH)
    # "No": the next name is asked; silence (the Gather's <Redirect>): asked again; key 1: connected.
    status, twiml = await post(gather.get("action"), call_params(double, PHONE, SpeechResult="No, I'm not."), double)
    gather = ET.fromstring(twiml).find("Gather")
    assert "Am I speaking with Bo?" in gather.find("Say").text
    status, twiml = await post(gather.get("action"), call_params(double, PHONE), double)
    gather = ET.fromstring(twiml).find("Gather")
    assert "Am I speaking with Bo?" in gather.find("Say").text
    assert all(store.get_interview(i.id).status == Status.SCHEDULED for i in ids.values())
    status, twiml = await post(gather.get("action"), call_params(double, PHONE, Digits="1"), double)
    params = {p.get("name"): p.get("value") for p in ET.fromstring(twiml).iterfind("./Connect/Stream/Parameter")}
    assert params["interviewId"] == ids["Bo Li"].id
    assert store.get_interview(ids["Bo Li"].id).status == Status.IN_PROGRESS
    assert store.get_interview(ids["Ana Ruiz"].id).status == Status.SCHEDULED
    # A confirmation for someone the number does not reach (a replayed or edited URL) connects nobody.
    stranger = store.create_candidate({"name": "Cy", "phone": "+14155550177", "timezone": "UTC"})
    url = f"{base}{CONFIRM_PATH}?candidateId={stranger.id}&ask=1"
    status, twiml = await post(url, call_params(double, PHONE, Digits="1"), double)
    assert [child.tag for child in ET.fromstring(twiml)] == ["Say", "Hangup"]


async def test_a_claimed_call_whose_stream_never_comes_is_ended(server, store, double, sample_template,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(twilio_inbound, "STREAM_WAIT_S", 1.0)
    _, base = server
    iid = twilio_interview(store, sample_template, PHONE)
    status, _ = await post(base + VOICE_PATH, call_params(double, PHONE), double)  # the caller then hangs up
    assert status == 200 and store.get_interview(iid).status == Status.IN_PROGRESS
    for _ in range(50):
        if store.get_interview(iid).status != Status.IN_PROGRESS:
            break
        await asyncio.sleep(0.1)
    interview = store.get_interview(iid)
    assert (interview.status, interview.outcome_code) == (Status.FAILED, "inbound_no_stream")


@pytest.fixture
def template(sample_template: InterviewTemplate) -> InterviewTemplate:
    """The sample template cut to one question, so a real-time call stays short."""
    data = sample_template.to_dict()
    data.update(greeting="Hi {candidate_name}, this is {company}.",
                consent="This call is recorded, and I am an AI interviewer. Do you agree to continue?",
                closing="Thank you, that's all my questions. Goodbye.",
                factors=[{**data["factors"][0], "max_follow_ups": 0}])
    return parse_template(data)


async def test_an_inbound_call_runs_the_interview_over_the_media_stream(aiohttp_server, settings, store, double,
                                                                        engines, template) -> None:
    _, base = await _server(aiohttp_server, settings, store, double, engines=engines)
    iid = twilio_interview(store, template, PHONE)
    script = CandidateScript("caller", (CONSENT, ANSWER), ai_done_ms=2000)
    call, twiml = await double.call_in(base + VOICE_PATH, PHONE, Callee(script))
    interview = store.get_interview(iid)
    assert interview.status == Status.COMPLETED, interview
    assert call.stream_end == "rest_hangup" and not call.protocol_errors
    turns = store.turns(iid)
    assert [t.role for t in turns].count("candidate") == 2 and turns[-1].role == "agent"
    assert "Hi Ana" in turns[0].text


def test_inbound_settings_fail_fast_naming_the_key(tmp_path) -> None:
    config = tmp_path / "phonescreen.toml"
    config.write_text('[sip]\ninbound_user = "has space"\n')
    with pytest.raises(SettingsError, match="sip.inbound_user"):
        load_settings(config, env={})
    config.write_text('[twilio]\ninbound = "yes"\n')
    with pytest.raises(SettingsError, match="twilio.inbound"):
        load_settings(config, env={})
    config.write_text("")
    with pytest.raises(SettingsError, match="PHONESCREEN_TWILIO_INBOUND"):
        load_settings(config, env={"PHONESCREEN_TWILIO_INBOUND": "maybe"})
    loaded = load_settings(config, env={"PHONESCREEN_SIP_INBOUND_USER": "+15005550006"})
    assert loaded.sip.inbound_user == "+15005550006" and loaded.twilio.inbound is True
    assert load_settings(config, env={}).sip.inbound_user == ""  # off by default: every INVITE gets 403
