"""The admin dashboard over a live loopback server and the real store: the login (wrong password, rate
limit, signed cookie, logout), the JSON and event-stream endpoints, recordings only for a logged-in admin,
and Debian's Chromium watching a real SIP interview (a media worker process dialing the simulated
candidate's SIP phone on 127.0.0.1) appear, progress and complete with no reload, then its page:
timestamped transcript, recording player, scorecard bars and citations."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import pytest
from aiohttp import web

from browser import ANSWER, CONSENT, artifact, chromium, short_template
from config.settings import Settings
from dialer.sip.pool import MediaWorkerPool
from models.store import SessionStore
from server.admin.auth import ADMIN, COOKIE, MAX_FAILURES
from server.app import make_app
from sip_harness import sim_phone, sip_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server, admin_password=PASSWORD))


@pytest.fixture
async def admin_app(settings, store, engines) -> web.Application:
    return make_app(settings, store, background_jobs=False, engines=engines)


@pytest.fixture
async def client(aiohttp_client, admin_app):
    return await aiohttp_client(admin_app)


async def log_in(client, password: str = PASSWORD):
    return await client.post("/admin/login", data={"password": password, "next": "/admin"}, allow_redirects=False)


def schedule(store: SessionStore, *, name: str = "", channel: str = "sip", phone: str | None = "+14155550142",
             candidate_id: str | None = None, campaign_id: str | None = None, position_id: str | None = None) -> str:
    position_id = position_id or store.create_position(short_template()).id
    candidate_id = candidate_id or store.upsert_candidate({"name": name, "phone": phone})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel=channel,
                                          expires_at=store.clock() + timedelta(days=1), campaign_id=campaign_id)
    return interview.id


async def test_pages_and_data_need_the_admin_login(client, store) -> None:
    interview_id = schedule(store, name="Ana Ruiz")
    response = await client.get("/admin", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login?next=/admin"
    for path in ("/admin/events", "/admin/api/interviews", f"/admin/api/interviews/{interview_id}",
                 f"/admin/interviews/{interview_id}/recording", f"/admin/events/interviews/{interview_id}"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 401, path
        assert (await response.json())["error"]["code"] == "unauthorized"

    wrong = await log_in(client, "guess")
    assert wrong.status == 401 and "Wrong password." in await wrong.text()
    assert COOKIE not in wrong.cookies

    right = await log_in(client)
    assert right.status == 303 and right.headers["Location"] == "/admin"
    set_cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/admin" in set_cookie
    assert PASSWORD not in set_cookie
    page = await client.get("/admin")
    assert page.status == 200 and "Active calls" in await page.text()
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    listing = await client.get("/admin/api/interviews")
    assert listing.status == 200 and (await listing.json())["items"][0]["id"] == interview_id

    cookie = right.cookies[COOKIE].value
    forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
    response = await client.get("/admin/api/interviews", cookies={COOKIE: forged})
    assert response.status == 401

    out = await client.post("/admin/logout", allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.clear()
    response = await client.get("/admin/api/interviews", cookies={COOKIE: cookie})  # the old cookie is revoked
    assert response.status == 401
    for junk in ("v1.9999999999.ab.\u00e9", "v1.x.y.z", "garbage", "v1." + "9" * 300):
        response = await client.get("/admin/api/interviews", headers={"Cookie": f"{COOKIE}={junk}"})
        assert response.status == 401, junk


async def test_repeated_wrong_passwords_are_slowed_down(client, admin_app) -> None:
    for _ in range(MAX_FAILURES):
        assert (await log_in(client, "nope")).status == 401
    blocked = await log_in(client)  # even the right password waits now
    assert blocked.status == 429 and "Too many wrong passwords" in await blocked.text()
    admin_app[ADMIN].failures.clear()  # the window has passed
    assert (await log_in(client)).status == 303


async def test_the_dashboard_is_off_without_a_password(aiohttp_client, settings, store) -> None:
    off = dataclasses.replace(settings, server=dataclasses.replace(settings.server, admin_password=""))
    client = await aiohttp_client(make_app(off, store, background_jobs=False))
    page = await client.get("/admin/login")
    assert page.status == 503 and "server.admin_password" in await page.text()
    assert (await log_in(client, "")).status == 503
    assert (await client.get("/admin/api/interviews")).status == 401


async def first_event(client, path: str) -> dict:
    async with client.get(path) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        async for line in response.content:
            if line.startswith(b"data: "):
                return json.loads(line[6:])
    raise AssertionError("the stream ended without an event")


async def test_counters_list_filters_and_detail(client, store) -> None:
    position = store.create_position(short_template())
    members = [store.upsert_candidate({"name": n, "phone": f"+1415555010{i}"})[0].id
               for i, n in enumerate(["Ana Ruiz", "Bo Chen", "Cy Diaz"])]
    campaign = store.create_campaign(name="Spring hiring", position_id=position.id, channel="sip", settings={},
                                     candidate_ids=members)
    ids = [schedule(store, candidate_id=member, campaign_id=campaign.id, position_id=position.id)
           for member in members]
    web_id = schedule(store, name="Dee Web", channel="web", phone=None, position_id=position.id)
    for status in ("dialing", "in_progress", "completed"):
        store.transition(ids[0], status)
    for status in ("dialing", "busy"):
        store.transition(ids[1], status)
    for status in ("dialing", "ringing"):
        store.transition(ids[2], status)
    store.transition(web_id, "in_progress")
    store.add_turn(web_id, role="agent", text="Hi Dee, thanks for joining.", start_ms=0, end_ms=1500)
    await log_in(client)

    event = await first_event(client, "/admin/events")
    data = event["data"]
    assert data["counters"] == {"dialing": 0, "ringing": 1, "inProgress": 1, "completedToday": 1, "failedToday": 1,
                                "failedTodayByStatus": {"busy": 1}}
    active = {call["id"]: call for call in data["active"]}
    assert set(active) == {ids[2], web_id}
    assert active[web_id]["lastUtterance"] == {"role": "agent", "text": "Hi Dee, thanks for joining."}
    assert active[web_id]["channel"] == "web" and active[web_id]["turns"] == 1
    [progress] = data["campaigns"]
    assert (progress["total"], progress["completed"], progress["failed"], progress["active"]) == (3, 1, 1, 1)
    assert "+1415" not in json.dumps(event)  # no phone number on the dashboard

    async def listing(**query) -> list[str]:
        response = await client.get("/admin/api/interviews", params=query)
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    assert set(await listing()) == {*ids, web_id}
    assert await listing(status="busy") == [ids[1]]
    assert await listing(channel="web") == [web_id]
    assert await listing(q="bo ch") == [ids[1]]
    assert await listing(q="%") == []  # LIKE wildcards are matched literally
    assert set(await listing(campaignId=campaign.id)) == set(ids)
    for bad in ({"status": "done"}, {"channel": "fax"}, {"q": "x" * 101}, {"pageSize": "1000"}):
        response = await client.get("/admin/api/interviews", params=bad)
        assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_parameter", bad

    detail = await (await client.get(f"/admin/api/interviews/{web_id}")).json()
    assert detail["candidate"]["name"] == "Dee Web" and detail["turns"][0]["text"].startswith("Hi Dee")
    assert detail["position"]["factors"] == [{"name": "Customer empathy", "weight": 1.0}]
    assert "joinTokenHash" not in detail and detail["recordingUrl"] is None
    phone = await (await client.get(f"/admin/api/interviews/{ids[0]}")).json()
    assert phone["candidate"]["phone"] == "***0100"
    assert (await client.get("/admin/api/interviews/int_missing")).status == 404
    assert (await client.get(f"/admin/interviews/{ids[0]}/recording")).status == 404  # none was made


def text_is(selector: str, value: str) -> str:
    """A selector for the element while its text is exactly `value` (no script: the pages' CSP forbids eval)."""
    return f"{selector}:text-is({json.dumps(value)})"


async def test_admin_watches_a_sip_interview_live_and_reads_its_report(aiohttp_client, admin_app, settings,
                                                                        store, tmp_path) -> None:
    server = await aiohttp_client(admin_app)
    position = store.create_position(short_template())
    ana = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})[0]
    bo = store.upsert_candidate({"name": "Bo Chen", "phone": "+14155550101"})[0]
    campaign = store.create_campaign(name="Spring hiring", position_id=position.id, channel="sip", settings={},
                                     candidate_ids=[ana.id, bo.id])
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(str(server.make_url("/admin")))
        assert "/admin/login" in page.url
        await page.fill("#password", "not it")
        await page.click("button[type=submit]")
        assert "Wrong password." in await page.text_content("#login-error")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin")
        await page.wait_for_selector(text_is("#counter-in-progress", "0"))
        await page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

        interview, _ = store.create_interview(candidate_id=ana.id, position_id=position.id, channel="sip",
                                              expires_at=store.clock() + timedelta(days=1), campaign_id=campaign.id)
        iid = interview.id
        row = f'#active-calls tr[data-interview="{iid}"]'
        await page.wait_for_selector(f'#recent tr[data-interview="{iid}"]')  # it appears, scheduled
        # A real SIP call: a media worker process dials the simulated candidate's SIP phone.
        with sim_phone(tmp_path, [{"name": "phone", "answers": [CONSENT, ANSWER]}]) as phone:
            async with MediaWorkerPool(sip_settings(settings), store, with_llm=False) as pool:
                call = asyncio.create_task(pool.dial(iid, phone.uri("phone")))
                await page.wait_for_selector(row, timeout=30_000)  # dialing and ringing last well under 1 s
                await page.wait_for_selector(text_is("#counter-in-progress", "1"), timeout=30_000)
                await page.wait_for_selector(text_is(f"{row} .factor", "Customer empathy"), timeout=90_000)
                await page.wait_for_selector(f"{row} .utterance .who.candidate", timeout=30_000)  # an answer
                assert await page.text_content(f"{row} .duration") not in ("", "0:00")
                await page.wait_for_selector('.campaign .segment.active')
                await page.screenshot(path=artifact("admin-dashboard-live-call.png"), full_page=True)
                assert (await asyncio.wait_for(call, 180)).status == "completed"
        await page.wait_for_selector(text_is("#counter-completed-today", "1"))
        await page.wait_for_selector(text_is("#counter-in-progress", "0"))
        await page.wait_for_selector(row, state="detached")
        await page.wait_for_selector(".campaign .segment.completed")
        assert await page.evaluate("window.sameDocument") is True  # all of it arrived without a reload
        await page.screenshot(path=artifact("admin-dashboard.png"), full_page=True)

        turns = store.turns(iid)
        answer = [t for t in turns if t.role == "candidate"][-1]
        store.save_scorecard(iid, status="scored", overall=78.0, rubric_version=position.rubric_version, data={
            "factors": [{"key": "customer_empathy", "name": "Customer empathy", "weight": 1.0, "score": 80,
                         "reasoning": "A specific example: apologized, refunded on the call, followed up.",
                         "citations": [{"turn": answer.turn_number, "quote": "refunded forty dollars"}]}],
            "language": {"cefr": "B2", "words": 31}, "ai_feedback": {"strengths": "A concrete example.",
                                                              "probe": "How they follow up."}})

        await page.click(f'#recent tr[data-interview="{iid}"] a')
        await page.wait_for_url(f"**/admin/interviews/{iid}")
        await page.wait_for_selector(".factor .bar .fill")
        assert await page.text_content("#candidate-name") == "Ana Ruiz"
        lines = await page.query_selector_all("#transcript .turn")
        assert len(lines) == len(turns)
        stamps = [await line.eval_on_selector(".timestamp", "node => node.textContent") for line in lines]
        assert stamps == [f"{t.start_ms // 60000}:{t.start_ms // 1000 % 60:02d}" for t in turns]
        src = await page.get_attribute("#recording", "src")
        assert src == f"/admin/interviews/{iid}/recording"
        recording = await page.evaluate("async (url) => { const r = await fetch(url); "
                                        "return [r.status, r.headers.get('content-type')]; }", src)
        assert recording == [200, "audio/wav"]
        width = await page.evaluate("document.querySelector('.factor .bar .fill').style.width")
        assert width == "80%"  # scores are 0-100
        assert "80 / 100" in await page.text_content(".factor .score")
        await page.click("a.citation")
        await page.wait_for_selector(f"#turn-{answer.turn_number}.cited")
        assert page.url.endswith(f"#turn-{answer.turn_number}")
        assert "B2" in await page.text_content("#scorecard")
        assert "Answered every question" in await page.text_content("#facts")  # why it ended, in words
        await page.screenshot(path=artifact("admin-interview.png"), full_page=True)

        await page.goto(str(server.make_url("/admin/interviews?status=report_ready")))
        await page.wait_for_selector(f'#interviews tr[data-interview="{iid}"]')
        await page.select_option("select[name=channel]", "web")
        await page.wait_for_selector("#no-interviews", state="visible")

    assert (await server.get(f"/admin/interviews/{iid}/recording")).status == 401  # this client never logged in
