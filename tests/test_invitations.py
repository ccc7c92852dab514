"""Invitations that reach candidates, over real local servers: a real SMTP server (aiosmtpd on 127.0.0.1)
receives the invitation e-mail, and the link in it, opened in Debian's Chromium, starts the web interview;
SMS through the Twilio double (Messages resource, signed delivery callbacks); bounces, transient failures
retried a bounded number of times, a sender that dies mid-send; sending for a selection and a campaign; the
delivery state in the API and the CSV export; nothing but masked addresses in the logs."""
from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import logging
import re
import time
from datetime import timedelta
from email.message import EmailMessage

import pytest
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller

from browser import ANSWER, CONSENT, artifact, chromium, short_template
from config.settings import EmailSettings, InvitationSettings, Settings
from models.store import SessionStore
from server.app import make_app
from server.invitations import InvitationSender
from twilio_double import twilio_settings

ADDRESS = "ana.ruiz@example.com"
PHONE = "+14155550123"
ADMIN_PASSWORD = "correct horse battery staple"


class Inbox:
    """An aiosmtpd handler that keeps what it accepts, and refuses chosen recipients with chosen replies."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 No such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def invite_settings(base: Settings, smtp_port: int, double, port: int, **invitations) -> Settings:
    """E-mail through the local SMTP server (plain: it is loopback), SMS through the Twilio double, and
    retries quick enough for a test."""
    settings = twilio_settings(base, double, port)
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, admin_password=ADMIN_PASSWORD))
    return dataclasses.replace(
        settings, email=EmailSettings(host="127.0.0.1", port=smtp_port, starttls=False, sender="Acme Hiring <jobs@acme.example>",
                                      timeout_s=5),
        invitations=InvitationSettings(**{"backoff_base_s": 0.01, **invitations}))


@pytest.fixture
async def live(aiohttp_server, aiohttp_client, settings, store, double, engines, smtp, make_key):
    """The app on 127.0.0.1 with e-mail and SMS configured; returns (settings, API client)."""
    port = unused_port()
    configured = invite_settings(settings, smtp[1], double, port)
    server = await aiohttp_server(make_app(configured, store, background_jobs=False, engines=engines), port=port)
    return configured, await aiohttp_client(server, headers=make_key())


async def web_interview(api, template=None, *, name: str = "Ana Ruiz", email_address: str | None = ADDRESS,
                        phone: str | None = PHONE) -> str:
    """Through the API: a position, a candidate and a scheduled web interview; returns the interview id."""
    template = template or short_template()
    position = await (await api.post("/api/v1/positions", json=template.to_dict())).json()
    body = {"name": name, **({"email": email_address} if email_address else {}), **({"phone": phone} if phone else {})}
    candidate = await (await api.post("/api/v1/candidates", json=body)).json()
    response = await api.post("/api/v1/interviews", json={"candidateId": candidate["id"], "positionId": position["id"],
                                                          "channel": "web"})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def invite(api, interview_id: str, channel: str = "email") -> dict:
    response = await api.post(f"/api/v1/interviews/{interview_id}/invitations", json={"channel": channel})
    assert response.status == 202, await response.text()
    return await response.json()


def link_in(message: EmailMessage) -> str:
    match = re.search(r"http://127\.0\.0\.1:\d+/join#[A-Za-z0-9_-]+", message.get_content())
    assert match, message.get_content()
    return match.group(0)


async def test_emailed_link_starts_the_web_interview(live, store, smtp, engines, tmp_path, caplog) -> None:
    from test_web_channel import answers_wav
    settings, api = live
    inbox, _ = smtp
    interview_id = await web_interview(api)
    queued = await invite(api, interview_id)
    assert queued["status"] == "queued" and queued["channel"] == "email"

    with caplog.at_level(logging.INFO):
        assert await InvitationSender(settings, store).run_once() == 1
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == ADDRESS and message["From"] == "Acme Hiring <jobs@acme.example>"
    assert message["Subject"] == "Your interview for Support agent screen at Acme Support"
    text = message.get_content()
    assert text.startswith("Hello Ana,") and "Support agent screen" in text
    link = link_in(message)
    token = link.split("#", 1)[1]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("phonescreen"))
    assert "a***@example.com" in logged and ADDRESS not in logged and token not in logged

    detail = await (await api.get(f"/api/v1/interviews/{interview_id}")).json()
    assert detail["invitation"]["status"] == "sent" and detail["invitation"]["attempts"] == 1
    listed = await (await api.get(f"/api/v1/interviews/{interview_id}/invitations")).json()
    assert listed["items"][0]["providerId"] == message["Message-ID"]

    wav = answers_wav(tmp_path / "answers.wav", engines, short_template())
    async with chromium(tmp_path / "profile", fake_audio=wav) as browser:
        page = await browser.new_page()
        await page.goto(link)
        await page.wait_for_selector("#intro", state="visible", timeout=20_000)
        assert await page.text_content("#candidate-name") == "Ana"
        await page.click("#start")
        await page.wait_for_selector('#state[data-state="speaking"]', timeout=60_000)
        await page.screenshot(path=artifact("invitation-link-interview.png"))
        assert store.get_interview(interview_id).status == "in_progress"
        deadline = time.monotonic() + 60
        while not store.turns(interview_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        greeting = store.turns(interview_id)[0]
        assert greeting.role == "agent" and "Ana" in greeting.text
    deadline = time.monotonic() + 30  # the browser left: the interview ends (partial), every turn kept
    while store.get_interview(interview_id).status == "in_progress" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert store.get_interview(interview_id).status == "partial"
    assert CONSENT and ANSWER  # the scripted microphone (answers_wav) speaks these


async def test_a_refused_address_bounces_and_is_not_retried(live, store, smtp) -> None:
    settings, api = live
    inbox, _ = smtp
    inbox.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: no such user"
    interview_id = await web_interview(api, email_address="gone@example.com")
    await invite(api, interview_id)
    await InvitationSender(settings, store).run_once()
    invitation = store.invitations_of(interview_id)[0]
    assert invitation.status == "bounced" and invitation.attempts == 1
    assert invitation.reason.startswith("550") and "no such user" in invitation.reason
    await asyncio.sleep(0.05)
    assert await InvitationSender(settings, store).run_once() == 0  # a bounce is final
    assert inbox.messages == []
    detail = await (await api.get(f"/api/v1/interviews/{interview_id}")).json()
    assert detail["invitation"]["status"] == "bounced" and "550" in detail["invitation"]["reason"]


async def test_a_transient_failure_is_retried_until_it_goes_or_attempts_run_out(live, store, smtp) -> None:
    settings, api = live
    inbox, _ = smtp
    inbox.refuse[ADDRESS] = "451 4.3.0 Mailbox busy, try again later"
    first = await web_interview(api)
    await invite(api, first)
    sender = InvitationSender(settings, store)
    await sender.run_once()
    waiting = store.invitations_of(first)[0]
    assert waiting.status == "queued" and waiting.attempts == 1 and waiting.reason.startswith("451")
    del inbox.refuse[ADDRESS]
    await asyncio.sleep(0.05)  # the backoff (backoff_base_s = 0.01)
    await sender.run_once()
    sent = store.invitations_of(first)[0]
    assert sent.status == "sent" and sent.attempts == 2 and len(inbox.messages) == 1

    # The SMTP server is down for good: max_attempts sends, then failed.
    down = dataclasses.replace(settings, email=dataclasses.replace(settings.email, port=unused_port()),
                               invitations=dataclasses.replace(settings.invitations, max_attempts=3))
    second = await web_interview(api, name="Bo Chen", email_address="bo@example.com", phone="+14155550124")
    await invite(api, second)
    sender = InvitationSender(down, store)
    for _ in range(5):
        await sender.run_once()
        await asyncio.sleep(0.1)
    failed = store.invitations_of(second)[0]
    assert failed.status == "failed" and failed.attempts == 3 and "Connection" in failed.reason


async def test_a_sender_that_dies_mid_send_never_sends_twice(settings, store, smtp) -> None:
    """A claim whose sender died is marked failed when its lease runs out, never sent again."""
    from browser import short_template as template_of
    position = store.create_position(template_of())
    candidate = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=1))
    store.queue_invitation(interview.id, "email")
    assert store.queue_invitation(interview.id, "email").id == store.invitations_of(interview.id)[0].id  # one
    claimed = store.claim_invitations(10, lease_s=0.05)  # ... and the sender dies here
    assert len(claimed) == 1 and store.get_invitation(claimed[0].invitation.id).status == "sending"
    assert store.claim_invitations(10, lease_s=0.05) == []  # not claimable while held
    await asyncio.sleep(0.1)
    assert store.claim_invitations(10, lease_s=60) == []
    after = store.get_invitation(claimed[0].invitation.id)
    assert after.status == "failed" and "interrupted" in after.reason and after.attempts == 1
    # The dead sender's token was never recorded as sent; a new invitation can be queued and is a new job.
    assert store.queue_invitation(interview.id, "email").id != after.id


async def test_sms_invitation_through_twilio_reports_delivery(live, store, double) -> None:
    settings, api = live
    interview_id = await web_interview(api)
    await invite(api, interview_id, "sms")
    await InvitationSender(settings, store).run_once()
    message = next(iter(double.messages.values()))
    assert message.to == PHONE and message.from_ == double.from_number
    assert message.body.startswith("Hi Ana, your interview for Support agent screen at Acme Support is ready: ")
    assert re.search(r"/join#[A-Za-z0-9_-]{40,}$", message.body)
    await asyncio.wait_for(message.done.wait(), 10)
    assert [status for status, _ in message.callbacks] == ["sent", "delivered"]
    assert all(code == 204 for _, code in message.callbacks)
    invitation = store.invitations_of(interview_id)[0]
    assert invitation.status == "delivered" and invitation.provider_id == message.sid and invitation.sent_at

    # The carrier refuses the next one: undelivered is a bounce, with Twilio's error code.
    other = await web_interview(api, name="Bo Chen", email_address=None, phone="+14155550177")
    double.message_fates["+14155550177"] = "undelivered"
    await invite(api, other, "sms")
    await InvitationSender(settings, store).run_once()
    bounced = next(m for m in double.messages.values() if m.to == "+14155550177")
    await asyncio.wait_for(bounced.done.wait(), 10)
    invitation = store.invitations_of(other)[0]
    assert invitation.status == "bounced" and "30003" in invitation.reason


async def test_twilio_outage_is_retried_and_bad_callbacks_change_nothing(live, store, double) -> None:
    settings, api = live
    interview_id = await web_interview(api)
    await invite(api, interview_id, "sms")
    double.messages_refused = 1
    sender = InvitationSender(settings, store)
    await sender.run_once()
    waiting = store.invitations_of(interview_id)[0]
    assert waiting.status == "queued" and "20503" in waiting.reason
    await asyncio.sleep(0.05)
    await sender.run_once()
    assert store.invitations_of(interview_id)[0].status in ("sent", "delivered")
    # An unsigned callback is refused (403) and moves nothing.
    response = await api.post(f"/twilio/message-status?invitationId={waiting.id}",
                              data={"MessageSid": "SMx", "MessageStatus": "failed"})
    assert response.status == 403
    assert store.invitations_of(interview_id)[0].status in ("sent", "delivered")


async def test_selection_and_campaign_invitations_and_the_csv(live, store, smtp) -> None:
    settings, api = live
    inbox, _ = smtp
    ok = await web_interview(api)
    no_mail = await web_interview(api, name="Bo Chen", email_address=None, phone="+14155550124")
    response = await api.post("/api/v1/invitations", json={"channel": "email",
                                                           "interviewIds": [ok, no_mail, "int_missing"]})
    assert response.status == 202
    batch = await response.json()
    assert [i["interviewId"] for i in batch["queued"]] == [ok]
    assert {r["interviewId"]: r["message"] for r in batch["refused"]}.keys() == {no_mail, "int_missing"}

    position = await (await api.post("/api/v1/positions", json=short_template().to_dict())).json()
    members = []
    for n, mail in enumerate(["cy@example.com", None]):
        body = {"name": f"Member {n}", "phone": f"+1415555020{n}", **({"email": mail} if mail else {})}
        members.append((await (await api.post("/api/v1/candidates", json=body)).json())["id"])
    campaign = await (await api.post("/api/v1/campaigns", json={"name": "Spring", "positionId": position["id"],
                                                                "channel": "sip", "candidateIds": members})).json()
    response = await api.post(f"/api/v1/campaigns/{campaign['id']}/invitations", json={"channel": "email"})
    assert response.status == 202
    batch = await response.json()
    assert len(batch["queued"]) == 1 and [r["candidateId"] for r in batch["refused"]] == [members[1]]
    again = await (await api.post(f"/api/v1/campaigns/{campaign['id']}/invitations", json={"channel": "email"})).json()
    assert again["queued"][0]["id"] == batch["queued"][0]["id"]  # still waiting: the same job, not a second

    await InvitationSender(settings, store).run_once()
    assert sorted(m["To"] for m in inbox.messages) == [ADDRESS, "cy@example.com"]
    csv_text = await (await api.get(f"/api/v1/campaigns/{campaign['id']}/results.csv")).text()
    header, *rows = csv_text.splitlines()
    columns = header.split(",")
    sent_row = next(dict(zip(columns, r.split(","))) for r in rows if "Member 0" in r)
    assert sent_row["invitation_status"] == "sent" and sent_row["invitation_channel"] == "email"


async def test_sending_needs_a_configured_channel_and_a_scheduled_web_interview(api, store) -> None:
    """The plain app has neither SMTP nor Twilio: 409 not_configured, and nothing is queued."""
    interview_id = await web_interview(api)
    response = await api.post(f"/api/v1/interviews/{interview_id}/invitations", json={"channel": "email"})
    assert response.status == 409 and (await response.json())["error"]["code"] == "not_configured"
    response = await api.post(f"/api/v1/interviews/{interview_id}/invitations", json={"channel": "fax"})
    assert response.status == 400
    assert store.invitations_of(interview_id) == []


async def test_queueing_refuses_a_phone_interview_and_a_started_one(settings, store) -> None:
    from models.store import Conflict
    position = store.create_position(short_template())
    candidate = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS, "phone": PHONE})
    phone, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                      expires_at=store.clock() + timedelta(days=1))
    with pytest.raises(Conflict, match="only a web interview"):
        store.queue_invitation(phone.id, "email")
    web, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                    expires_at=store.clock() + timedelta(days=1))
    store.queue_invitation(web.id, "email")
    store.transition(web.id, "in_progress")  # the candidate used their first link meanwhile
    assert store.claim_invitations(10, 60) == []
    assert "in_progress" in store.invitations_of(web.id)[0].reason
    with pytest.raises(Conflict, match="only a scheduled interview"):
        store.queue_invitation(web.id, "email")


async def test_sender_token_opens_the_interview_and_the_first_link_still_works(store) -> None:
    position = store.create_position(short_template())
    candidate = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS})
    interview, own = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                            expires_at=store.clock() + timedelta(days=1))
    store.queue_invitation(interview.id, "email")
    [claimed] = store.claim_invitations(10, 60)
    assert store.find_interview_by_token(claimed.token).id == interview.id
    assert store.find_interview_by_token(own).id == interview.id
    assert store.find_interview_by_token("not-a-token") is None
    row = store._one("SELECT * FROM invitations WHERE id = ?", [claimed.invitation.id])
    assert claimed.token not in str(row)  # only its hash is stored


def test_settings_refuse_a_template_with_an_unknown_placeholder(tmp_path) -> None:
    from config.settings import SettingsError, load_settings
    path = tmp_path / "phonescreen.toml"
    path.write_text('[invitations]\nemail_body = "Hi {name}: {link}"\n')
    with pytest.raises(SettingsError, match="invitations.email_body"):
        load_settings(path, env={})
    path.write_text('[invitations]\nsms_body = "Hi {candidate_name}, call us"\n')  # no link: useless
    with pytest.raises(SettingsError, match="invitations.sms_body"):
        load_settings(path, env={})


async def test_dashboard_sends_an_invitation_and_shows_its_delivery(live, store, smtp, tmp_path) -> None:
    settings, api = live
    inbox, _ = smtp
    inbox.refuse["gone@example.com"] = "550 5.1.1 no such user"
    interview_id = await web_interview(api, email_address="gone@example.com")
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(str(api.make_url(f"/admin/interviews/{interview_id}")))
        await page.fill("#password", ADMIN_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#invite", state="visible", timeout=20_000)
        await page.click("#invite-email")
        await page.wait_for_selector("#invite-result:text-is('Queued.')", timeout=10_000)
        await page.wait_for_selector('.invitation[data-status="queued"]', timeout=10_000)
        await InvitationSender(settings, store).run_once()
        await page.wait_for_selector('.invitation[data-status="bounced"]', timeout=10_000)  # pushed, no reload
        assert "550 5.1.1 no such user" in await page.text_content(".invitation")
        await page.screenshot(path=artifact("invitation-bounced-dashboard.png"))
        await page.goto(str(api.make_url("/admin/interviews")))
        await page.wait_for_selector("#interviews td.invitation", timeout=10_000)
        assert await page.text_content("#interviews td.invitation") == "email bounced"


# -- a campaign's shared link ----------------------------------------------------------------------
async def shared_campaign(api) -> tuple[str, str]:
    """A campaign and its shared link; returns (campaign id, link)."""
    position = await (await api.post("/api/v1/positions", json=short_template().to_dict())).json()
    campaign = await (await api.post("/api/v1/campaigns", json={"name": "Walk-in", "positionId": position["id"],
                                                                "channel": "sip", "candidateIds": []})).json()
    response = await api.post(f"/api/v1/campaigns/{campaign['id']}/link")
    assert response.status == 201, await response.text()
    return campaign["id"], (await response.json())["applyUrl"]


async def test_shared_link_makes_a_candidate_and_interview_per_visitor(api, store) -> None:
    campaign_id, url = await shared_campaign(api)
    token = url.split("#", 1)[1]
    response = await api.post("/apply", json={"token": token, "name": "Ana Ruiz", "phone": "+1 (415) 555-0123"})
    assert response.status == 201, await response.text()
    join_token = (await response.json())["joinToken"]
    interview = store.find_interview_by_token(join_token)
    assert interview.campaign_id == campaign_id and interview.channel == "web" and interview.status == "scheduled"
    assert store.get_candidate(interview.candidate_id).phone == "+14155550123"

    again = await api.post("/apply", json={"token": token, "name": "Ana R.", "phone": "0014155550123"})
    assert again.status == 409
    assert "already applied" in (await again.json())["error"]["message"]
    other = await api.post("/apply", json={"token": token, "name": "Bo Chen", "phone": "+14155550124"})
    assert other.status == 201
    assert len(store.list_interviews(campaign_id=campaign_id)[0]) == 2

    bad_phone = await api.post("/apply", json={"token": token, "name": "Cy", "phone": "12"})
    assert bad_phone.status == 400 and "country code" in (await bad_phone.json())["error"]["message"]
    assert (await api.post("/apply", json={"token": "nope", "name": "Cy", "phone": "+14155550125"})).status == 404
    new_url = (await (await api.post(f"/api/v1/campaigns/{campaign_id}/link")).json())["applyUrl"]
    assert (await api.post("/apply", json={"token": token, "name": "Cy", "phone": "+14155550125"})).status == 404
    store.archive_position(store.get_campaign(campaign_id).position_id)  # the job is no longer open
    refused = await api.post("/apply", json={"token": new_url.split("#", 1)[1], "name": "Cy", "phone": "+14155550125"})
    assert refused.status == 404 and "no longer open" in (await refused.json())["error"]["message"]
    assert (await api.delete(f"/api/v1/campaigns/{campaign_id}/link")).status == 204
    closed = await api.post("/apply", json={"token": new_url.split("#", 1)[1], "name": "Cy", "phone": "+14155550125"})
    assert closed.status == 404
    csv_text = await (await api.get(f"/api/v1/campaigns/{campaign_id}/results.csv")).text()
    assert "Ana Ruiz" in csv_text and "Bo Chen" in csv_text


async def test_shared_link_page_leads_to_the_interview_and_refuses_a_duplicate(api, store, tmp_path) -> None:
    _, url = await shared_campaign(api)
    link = str(api.make_url("/apply")) + "#" + url.split("#", 1)[1]
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(link)
        await page.fill("#name", "Ana Ruiz")
        await page.fill("#phone", "+1 415 555 0123")
        await page.click("#apply")
        await page.wait_for_selector("#intro", state="visible", timeout=20_000)  # the /join page, ready
        assert "/join#" in page.url
        assert await page.text_content("#candidate-name") == "Ana"

        second = await browser.new_page()
        await second.goto(link)
        await second.fill("#name", "Ana Ruiz")
        await second.fill("#phone", "+14155550123")
        await second.click("#apply")
        await second.wait_for_selector("#apply-error", state="visible", timeout=20_000)
        assert "already applied" in await second.text_content("#apply-error")
        await second.screenshot(path=artifact("shared-link-duplicate.png"))
        assert "/apply#" in second.url


def test_cli_invites_a_campaign_and_sends_now(tmp_path, smtp) -> None:
    import os
    import subprocess
    import sys
    inbox, port = smtp
    path = tmp_path / "store.db"
    store = SessionStore(path)
    position = store.create_position(short_template())
    ana = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS, "phone": PHONE})
    bo = store.create_candidate({"name": "Bo Chen", "phone": "+14155550124"})
    campaign = store.create_campaign(name="Spring", position_id=position.id, channel="sip", settings={},
                                     candidate_ids=[ana.id, bo.id])
    store.close()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")},
           "PHONESCREEN_STORE_PATH": str(path), "PHONESCREEN_LOG_FORMAT": "text",
           "PHONESCREEN_EMAIL_HOST": "127.0.0.1", "PHONESCREEN_EMAIL_PORT": str(port),
           "PHONESCREEN_EMAIL_STARTTLS": "false", "PHONESCREEN_EMAIL_SENDER": "jobs@acme.example"}
    result = subprocess.run([sys.executable, "-m", "server.cli", "invite", "--campaign", campaign.id, "--send"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "queued 1 invitation(s) by email, refused 1" in result.stdout
    assert f"{bo.id}: candidate {bo.id!r} has no e-mail address" in result.stdout
    assert ": sent" in result.stdout
    assert [m["To"] for m in inbox.messages] == [ADDRESS] and "/join#" in inbox.messages[0].get_content()
    assert ADDRESS not in result.stderr


def test_erasing_a_candidate_removes_their_invitations(store) -> None:
    position = store.create_position(short_template())
    candidate = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=1))
    store.queue_invitation(interview.id, "email")
    store.claim_invitations(10, 60)
    store.erase_candidate(candidate.id)
    assert store.db.execute("SELECT COUNT(*) FROM invitations").fetchone()[0] == 0


def test_starttls_and_login_are_used_and_a_bad_login_fails_for_good(tmp_path, settings, store) -> None:
    """A real SMTP server that demands STARTTLS (a certificate from a test CA) before AUTH LOGIN."""
    import ssl
    from aiosmtpd.smtp import AuthResult

    from tls_certs import issue, make_ca
    ca = make_ca(tmp_path / "tls", "smtp")
    leaf = issue(tmp_path / "tls", ca, "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf.cert, leaf.key)

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.login == b"jobs" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        position = store.create_position(short_template())
        candidate = store.create_candidate({"name": "Ana Ruiz", "email": ADDRESS})
        good = dataclasses.replace(settings, email=EmailSettings(
            host="127.0.0.1", port=controller.port, starttls=True, ca_file=str(leaf.ca), username="jobs",
            password="s3cret", sender="jobs@acme.example", timeout_s=5))
        for email_settings, expected in ((good.email, "sent"),
                                         (dataclasses.replace(good.email, password="wrong"), "failed")):
            interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                                  expires_at=store.clock() + timedelta(days=1))
            store.queue_invitation(interview.id, "email")
            asyncio.run(InvitationSender(dataclasses.replace(good, email=email_settings), store).run_once())
            invitation = store.invitations_of(interview.id)[0]
            assert invitation.status == expected, invitation
        assert invitation.attempts == 1 and invitation.reason.startswith("535")  # a refused login: not retried
        assert len(inbox.messages) == 1
    finally:
        controller.stop()
