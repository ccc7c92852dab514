"""A person on request: within the recruiters' hours a candidate who asks for a real person is put through
to the configured recruiter — a SIP REFER the candidate's phone follows, a Twilio `<Dial>` — and the
interview ends `transferred` with its transcript; when the transfer cannot go through, a recruiter calls
back."""
from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from aiohttp.test_utils import unused_port

from config.settings import HandoffSettings
from config.templates import InterviewTemplate, parse_template
from dialer.simulator import CandidateScript
from dialer.sip.pool import MediaWorkerPool
from models.lifecycle import ACTIVE, Status
from server.app import make_app
from server.channels.twilio_endpoints import place_call
from sip_harness import new_interview, short_template, sim_phone, sip_settings
from twilio_double import Callee, twilio_interview, twilio_settings

CONSENT = "Yes, I agree."
ASK = "Can I speak to a real person, please?"
ALWAYS_OPEN = {"hours": "00:00-23:59", "weekdays": "mon,tue,wed,thu,fri,sat,sun", "timezone": "UTC"}
RECRUITERS_NUMBER = "+15005550009"


def _asked_and_transferred(store, iid: str) -> None:
    interview = store.get_interview(iid)
    assert interview.status == Status.TRANSFERRED and interview.end_reason == "transferred"
    texts = [t.text for t in store.turns(iid)]
    assert any("real person" in text.lower() for text in texts)  # the transcript is kept
    assert any("put you through to a recruiter" in text for text in texts)


async def test_a_sip_candidate_is_referred_to_the_recruiter(settings, store, tmp_path) -> None:
    script = {"name": "wants-a-person", "answers": [CONSENT, ASK]}
    with sim_phone(tmp_path, [script]) as phone:
        recruiter = phone.uri("recruiter")  # the same test phone answers as the recruiters' line
        settings = dataclasses.replace(sip_settings(settings), handoff=HandoffSettings(sip_uri=recruiter,
                                                                                         **ALWAYS_OPEN))
        iid = new_interview(store, short_template())
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(iid, phone.uri("wants-a-person"))
    assert result.status == Status.TRANSFERRED
    _asked_and_transferred(store, iid)
    reports = phone.reports()
    [candidate] = [r for r in reports if r["user"] == "wants-a-person"]
    assert candidate["transferred_to"] == f"<{recruiter}>" or candidate["transferred_to"] == recruiter
    # The candidate's phone followed the REFER: the recruiters' line rang and answered.
    assert any(r["user"] == "recruiter" and r.get("answered") == 200 for r in reports), reports


async def test_a_refused_transfer_becomes_a_recruiter_callback(settings, store, tmp_path) -> None:
    script = {"name": "wants-a-person", "answers": [CONSENT, ASK]}
    with sim_phone(tmp_path, [script]) as phone:
        busy_line = phone.uri("busy")  # the recruiters' line answers 486: the phone's NOTIFY says so
        settings = dataclasses.replace(sip_settings(settings), handoff=HandoffSettings(sip_uri=busy_line,
                                                                                         **ALWAYS_OPEN))
        iid = new_interview(store, short_template())
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(iid, phone.uri("wants-a-person"))
    assert result.status == Status.CALLBACK_SCHEDULED
    interview = store.get_interview(iid)
    assert interview.end_reason == "human_requested"
    assert any("couldn't reach a recruiter" in t.text for t in store.turns(iid))


@pytest.fixture
def template(sample_template: InterviewTemplate) -> InterviewTemplate:
    data = sample_template.to_dict()
    data.update(greeting="Hi {candidate_name}, this is {company}.",
                consent="This call is recorded, and I am an AI interviewer. Do you agree to continue?",
                factors=[{**data["factors"][0], "max_follow_ups": 0}])
    return parse_template(data)


async def test_a_twilio_candidate_is_put_through_with_dial(aiohttp_server, settings, store, double, engines,
                                                          template) -> None:
    port = unused_port()
    settings = dataclasses.replace(twilio_settings(settings, double, port),
                                   handoff=HandoffSettings(phone=RECRUITERS_NUMBER, **ALWAYS_OPEN))
    app = make_app(settings, store, background_jobs=False, engines=engines)
    await aiohttp_server(app, port=port)
    phone = "+14155550124"
    iid = twilio_interview(store, template, phone)
    double.callees[phone] = Callee(CandidateScript("wants-a-person", (CONSENT, ASK), ai_done_ms=2000))
    call = await double.wait_ended(await place_call(app, iid), timeout_s=240)
    deadline = time.monotonic() + 60
    while store.get_interview(iid).status in ACTIVE and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert call.stream_end == "redirected" and call.dialed == RECRUITERS_NUMBER
    assert not call.protocol_errors
    _asked_and_transferred(store, iid)
