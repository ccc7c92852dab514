"""Every scheduled interview is dialled on its own channel by `phonescreen serve`'s one dialing job
(server/dialing.py), whichever channels are enabled: a Twilio interview created through the API and a
Twilio campaign, both with SIP disabled, are dialled through the local Twilio double (real aiohttp servers
on 127.0.0.1, the real store, signed status callbacks); two servers on one store never dial an interview
twice; a campaign whose channel cannot dial here waits, untouched, and says why on the API and the
dashboard. The callees are busy or do not answer, so no voice engine is needed."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from typing import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, unused_port

from campaign_harness import OffsetClock
from config.settings import ServerSettings, Settings, SipSettings, TwilioSettings
from dialer.channels import campaign_blocked_reason, channel_problem
from models.store import SessionStore
from server.app import make_app
from server.http import SETTINGS
from twilio_double import Callee, TwilioDouble, twilio_settings

CAMPAIGNS = "/api/v1/campaigns"
WAIT_S = 60.0  # bounds every wait: the double's calls ring for 0.2 s and end at once


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll the store until `condition` holds; bounded, never a timing assertion."""
    for _ in range(int(timeout_s / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


async def serving(aiohttp_server, aiohttp_client, settings: Settings, store: SessionStore, double: TwilioDouble,
                  headers: dict[str, str]) -> tuple[web.Application, TestClient]:
    """`phonescreen serve`'s app with its background jobs (the dialing job among them), Twilio on the
    double, SIP disabled (the test settings), listening on the port its public URL names."""
    port = unused_port()
    app = make_app(twilio_settings(settings, double, port), store, background_jobs=True)
    assert not app[SETTINGS].sip.enabled and app[SETTINGS].twilio.enabled
    server = await aiohttp_server(app, port=port)
    return app, await aiohttp_client(server, headers=headers)


async def new_candidate(client: TestClient, phone: str, name: str = "Ana Ruiz") -> str:
    response = await client.post("/api/v1/candidates", json={"name": name, "phone": phone, "timezone": "UTC"})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def new_interview(client: TestClient, candidate_id: str, position_id: str, channel: str = "twilio") -> str:
    response = await client.post("/api/v1/interviews", json={"candidateId": candidate_id, "positionId": position_id,
                                                             "channel": channel})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def new_campaign(client: TestClient, position_id: str, channel: str, candidate_ids: list[str]) -> dict:
    response = await client.post(CAMPAIGNS, json={"name": f"{channel} hiring", "positionId": position_id,
                                                  "channel": channel, "candidateIds": candidate_ids})
    assert response.status == 201, await response.text()
    return await response.json()


def calls_to(double: TwilioDouble) -> Counter:
    return Counter(call.to for call in double.calls.values())


async def test_serve_dials_a_twilio_interview_created_through_the_api_with_sip_disabled(
        aiohttp_server, aiohttp_client, settings, store, double, make_key, sample_template) -> None:
    _, client = await serving(aiohttp_server, aiohttp_client, settings, store, double, make_key())
    phone = "+14155550123"
    double.callees[phone] = Callee(answer="busy")
    position = store.create_position(sample_template)
    interview_id = await new_interview(client, await new_candidate(client, "+1 415 555 0123"), position.id)

    await until(lambda: store.get_interview(interview_id).status == "busy", "the interview dialled and busy")
    [call] = double.calls.values()
    await double.wait_ended(call.sid, timeout_s=WAIT_S)
    assert call.to == phone and call.stream_params["interviewId"] == interview_id
    assert [status for status, _ in call.callbacks] == ["initiated", "ringing", "busy"]
    record = await (await client.get(f"/api/v1/interviews/{interview_id}")).json()
    assert (record["status"], record["outcomeCode"], record["attemptCount"]) == ("busy", "busy", 1)
    assert [e["data"]["to"] for e in record["events"] if e["type"] == "interview.status_changed"] == \
        ["dialing", "ringing", "busy"]
    assert store.twilio_call(interview_id).call_sid == call.sid


async def test_two_servers_on_one_store_dial_each_api_interview_once(
        aiohttp_server, aiohttp_client, settings, store, double, make_key, sample_template) -> None:
    """Both dialing jobs see the same due interviews; the claim (scheduled -> dialing under the write
    lock) lets exactly one of them place each call."""
    _, first = await serving(aiohttp_server, aiohttp_client, settings, store, double, make_key())
    other_store = SessionStore(settings.store.path)  # the second server's own connection to the same file
    try:
        await serving(aiohttp_server, aiohttp_client, settings, other_store, double, make_key())
        phones = [f"+1415555014{n}" for n in range(4)]
        for phone in phones:
            double.callees[phone] = Callee(answer="no-answer")
        position = store.create_position(sample_template)
        ids = [await new_interview(first, await new_candidate(first, phone, f"Candidate {n}"), position.id)
               for n, phone in enumerate(phones)]
        await until(lambda: all(store.get_interview(i).status == "no_answer" for i in ids), "all four dialled")
        for call in list(double.calls.values()):
            await double.wait_ended(call.sid, timeout_s=WAIT_S)
        assert calls_to(double) == Counter(phones)  # one call per interview, whichever server placed it
        assert sorted(call.stream_params["interviewId"] for call in double.calls.values()) == sorted(ids)
        assert [store.get_interview(i).attempt_count for i in ids] == [1] * 4
    finally:
        other_store.close()


async def test_twilio_campaign_is_dialled_with_sip_disabled_while_a_sip_campaign_waits_saying_why(
        aiohttp_server, aiohttp_client, settings, double, make_key, sample_template) -> None:
    store = SessionStore(settings.store.path, clock=OffsetClock())  # Wednesday noon: inside the default window
    try:
        app, client = await serving(aiohttp_server, aiohttp_client, settings, store, double, make_key())
        position = store.create_position(sample_template)
        # The SIP campaign starts first, so every tick that dials the Twilio campaign has passed over it.
        sip_phone = "+12025550100"
        sip = await new_campaign(client, position.id, "sip", [await new_candidate(client, sip_phone, "Sy Pee")])
        assert (await client.post(f"{CAMPAIGNS}/{sip['id']}/start")).status == 200
        answers = {"+14155550151": "busy", "+14155550152": "no-answer"}
        for phone, answer in answers.items():
            double.callees[phone] = Callee(answer=answer)
        members = [await new_candidate(client, phone, f"Tw {n}") for n, phone in enumerate(answers)]
        twilio = await new_campaign(client, position.id, "twilio", members)
        assert twilio["blockedReason"] is None
        started = await (await client.post(f"{CAMPAIGNS}/{twilio['id']}/start")).json()
        assert started["status"] == "running" and started["blockedReason"] is None

        def first_attempts_done() -> bool:
            attempts = store.list_attempts(twilio["id"])
            return len(attempts) >= 2 and all(a.status == "done" for a in attempts if a.attempt_no == 1)
        await until(first_attempts_done, "both candidates of the Twilio campaign dialled")
        for call in list(double.calls.values()):
            await double.wait_ended(call.sid, timeout_s=WAIT_S)

        assert calls_to(double) == Counter(list(answers))  # each candidate called once; nobody at the SIP number
        for candidate_id, phone in zip(members, answers):
            [first, *retry] = store.list_attempts(twilio["id"], candidate_id)
            assert first.outcome == {"busy": "busy", "no-answer": "no_answer"}[answers[phone]]
            interview = store.get_interview(first.interview_id)
            assert (interview.channel, interview.campaign_id, interview.attempt_count) == ("twilio", twilio["id"], 1)
            assert [a.status for a in retry] == ["pending"]  # the retry policy applies as on SIP
        body = await (await client.get(f"{CAMPAIGNS}/{twilio['id']}")).json()
        assert body["progress"]["dialed"] == 2 and body["blockedReason"] is None

        # The SIP campaign was never claimed from: its attempt is untouched, and it says why.
        [waiting] = store.list_attempts(sip["id"])
        assert (waiting.status, waiting.interview_id, waiting.attempt_no) == ("pending", None, 1)
        body = await (await client.get(f"{CAMPAIGNS}/{sip['id']}")).json()
        assert body["status"] == "running" and body["progress"]["dialed"] == 0
        assert "sip.enabled" in body["blockedReason"]
        assert app[SETTINGS].twilio.auth_token not in json.dumps(body)
    finally:
        store.close()


# -- a campaign that cannot dial says why --------------------------------------------------------
PASSWORD = "correct horse battery staple"
GOOD_TWILIO = TwilioSettings(enabled=True, account_sid="AC" + "0123456789abcdef" * 2, auth_token="secret-token",
                             from_number="+15005550006")
PUBLIC = ServerSettings(public_url="https://screen.example.com")


@pytest.mark.parametrize(("settings_change", "channel", "named"), [
    ({"sip": SipSettings(enabled=False, domain="trunk.example.com")}, "sip", "sip.enabled"),
    ({"sip": SipSettings(enabled=True, domain="")}, "sip", "sip.domain"),
    ({"sip": SipSettings(enabled=True, domain="trunk.example.com")}, "sip", None),
    ({"twilio": TwilioSettings(enabled=False)}, "twilio", "twilio.enabled"),
    ({"twilio": dataclasses.replace(GOOD_TWILIO, account_sid="AC12"), "server": PUBLIC}, "twilio",
     "twilio.account_sid"),
    ({"twilio": GOOD_TWILIO, "server": ServerSettings()}, "twilio", "server.public_url"),
    ({"twilio": GOOD_TWILIO, "server": PUBLIC}, "twilio", None),
])
def test_channel_problem_names_the_setting_to_change(settings_change, channel, named) -> None:
    settings = dataclasses.replace(Settings(), **settings_change)
    problem = channel_problem(settings, channel)
    assert (problem is None) == (named is None), problem
    if named:
        assert named in problem and "secret-token" not in problem
        assert campaign_blocked_reason(settings, channel, "running") == problem
        assert campaign_blocked_reason(settings, channel, "paused") == problem
    for over in ("completed", "cancelled"):  # nothing left to dial: nothing to explain
        assert campaign_blocked_reason(settings, channel, over) is None


async def test_a_campaign_on_a_channel_that_cannot_dial_says_why_on_the_api_and_the_dashboard(
        aiohttp_client, settings, store, make_key, sample_template) -> None:
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, admin_password=PASSWORD))
    assert not settings.sip.enabled and not settings.twilio.enabled
    client = await aiohttp_client(make_app(settings, store, background_jobs=False), headers=make_key())
    position = store.create_position(sample_template)
    member = await new_candidate(client, "+12025550100")
    sip = await new_campaign(client, position.id, "sip", [member])
    twilio = await new_campaign(client, position.id, "twilio", [member])
    over = await new_campaign(client, position.id, "twilio", [member])
    assert "sip.enabled" in sip["blockedReason"] and "twilio.enabled" in twilio["blockedReason"]
    started = await (await client.post(f"{CAMPAIGNS}/{sip['id']}/start")).json()
    assert started["status"] == "running" and started["blockedReason"] == sip["blockedReason"]
    assert (await (await client.post(f"{CAMPAIGNS}/{over['id']}/cancel")).json())["blockedReason"] is None
    listing = await (await client.get(CAMPAIGNS)).json()
    reasons = {c["id"]: c["blockedReason"] for c in listing["items"]}
    assert reasons == {sip["id"]: sip["blockedReason"], twilio["id"]: twilio["blockedReason"], over["id"]: None}

    # The dashboard's live data carries the same reason under each campaign's progress bar.
    login = await client.post("/admin/login", data={"password": PASSWORD, "next": "/admin"}, allow_redirects=False)
    assert login.status == 303
    async with client.get("/admin/events") as response:
        assert response.status == 200
        line = b""
        async for line in response.content:
            if line.startswith(b"data: "):
                break
    campaigns = {c["id"]: c for c in json.loads(line[6:])["data"]["campaigns"]}
    assert {cid: c["blockedReason"] for cid, c in campaigns.items()} == reasons
    assert campaigns[sip["id"]]["status"] == "running"
