"""The campaign dialer's REST side: start / pause / resume / cancel, progress counts in GET, the
do-not-call list (JSON and CSV) and the voicemail settings."""
from __future__ import annotations

from config.templates import InterviewTemplate
from models.store import SessionStore

BASE = "/api/v1/campaigns"
# The API tests run on the real clock: a window open every day, all day (bar the last minute).
ALWAYS = {"start": "00:00", "end": "23:59", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


async def _draft(api, store: SessionStore, template: InterviewTemplate, phones: list[str], **settings) -> dict:
    position = store.create_position(template)
    ids = [store.upsert_candidate({"name": f"C{i}", "phone": p, "timezone": "UTC"})[0].id for i, p in enumerate(phones)]
    response = await api.post(BASE, json={"name": "Spring hiring", "positionId": position.id, "channel": "sip",
                                          "candidateIds": ids, "settings": settings})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_start_pause_resume_cancel_through_the_api(api, store: SessionStore, sample_template) -> None:
    campaign = await _draft(api, store, sample_template, ["+12025550100", "+12025550101"])
    assert campaign["status"] == "draft" and campaign["progress"]["notStarted"] == 2
    response = await api.post(f"{BASE}/{campaign['id']}/pause")
    assert response.status == 409 and "draft" in (await response.json())["error"]["message"]
    response = await api.post(f"{BASE}/{campaign['id']}/start")
    assert response.status == 200 and (await response.json())["status"] == "running"
    assert (await api.patch(f"{BASE}/{campaign['id']}", json={"name": "x"})).status == 409  # no longer a draft
    for action, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        response = await api.post(f"{BASE}/{campaign['id']}/{action}")
        assert response.status == 200 and (await response.json())["status"] == status
    body = await (await api.get(f"{BASE}/{campaign['id']}")).json()
    assert body["progress"]["cancelled"] == 2 and body["progress"]["dialed"] == 0
    assert set(body["progress"]) >= {"dialed", "inProgress", "completed", "retryPending", "failed", "skippedDnc"}
    assert (await api.post(f"{BASE}/camp_nope/start")).status == 404


async def test_progress_counts_follow_the_store(api, store: SessionStore, sample_template) -> None:
    campaign = await _draft(api, store, sample_template, ["+12025550100", "+12025550101", "+12025550102"],
                            maxConcurrentCalls=2, window=ALWAYS)
    await api.post(f"{BASE}/{campaign['id']}/start")
    await api.post("/api/v1/dnc", json={"phone": "+1 202 555 0101"})
    first, third = store.claim_due_attempts(campaign["id"], "test", limit=5, lease_s=30)  # skips the DNC number
    store.transition(first.interview_id, "dialing")
    store.transition(first.interview_id, "busy", outcome_code=486)
    store.finish_attempt(first.attempt.id, "busy", 486)
    progress = (await (await api.get(f"{BASE}/{campaign['id']}")).json())["progress"]
    assert progress == {**progress, "candidates": 3, "dialed": 2, "inProgress": 1, "retryPending": 1,
                        "notStarted": 0, "skippedDnc": 1, "failed": 0}


async def test_voicemail_settings_are_validated(api, store: SessionStore, sample_template) -> None:
    position = store.create_position(sample_template)
    body = {"name": "x", "positionId": position.id, "channel": "sip"}
    response = await api.post(BASE, json={**body, "settings": {"voicemail": {"action": "leave_message"}}})
    assert response.status == 400 and (await response.json())["error"]["field"] == "settings.voicemail.message"
    response = await api.post(BASE, json={**body, "settings": {"voicemail": {"detect": "yes"}}})
    assert response.status == 400 and (await response.json())["error"]["field"] == "settings.voicemail.detect"
    response = await api.post(BASE, json={**body, "settings": {"voicemail": {
        "detect": True, "action": "leave_message", "message": "Hi, this is Acme. We will call you back."}}})
    assert response.status == 201
    assert (await response.json())["settings"]["voicemail"]["action"] == "leave_message"


async def test_do_not_call_list(api, store: SessionStore) -> None:
    response = await api.post("/api/v1/dnc", json={"phone": "+1 (415) 555-0100", "reason": "asked by phone"})
    assert response.status == 201 and (await response.json())["phone"] == "+14155550100"
    assert (await api.post("/api/v1/dnc", json={"phone": "+14155550100"})).status == 200  # already listed
    response = await api.post("/api/v1/dnc", json={"phone": "call me maybe"})
    assert response.status == 400 and (await response.json())["error"]["field"] == "phone"
    csv_text = "phone,reason\n+14155550101,complaint\nnot a number,\n+14155550100,again\n"
    response = await api.post("/api/v1/dnc/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"})
    result = await response.json()
    assert response.status == 200
    assert (result["added"], result["alreadyListed"], result["failed"]) == (1, 1, 1)
    assert result["errors"][0]["line"] == 3
    response = await api.post("/api/v1/dnc/import", data=b"name\nAna\n", headers={"Content-Type": "text/csv"})
    assert response.status == 422 and (await response.json())["error"]["field"] == "file"
    listing = await (await api.get("/api/v1/dnc")).json()
    assert listing["total"] == 2 and {e["phone"] for e in listing["items"]} == {"+14155550100", "+14155550101"}
    assert (await api.delete("/api/v1/dnc/%2B14155550101")).status == 204
    assert (await api.delete("/api/v1/dnc/%2B14155550101")).status == 404
    assert (await api.delete("/api/v1/dnc/garbage")).status == 400
    assert not store.on_do_not_call("+14155550101") and store.on_do_not_call("+14155550100")


def test_cli_campaign_actions_and_status(settings, store: SessionStore, sample_template, tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys

    from campaign_harness import make_campaign
    campaign = make_campaign(store, sample_template, ["+12025550100", "+12025550101"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")},
           "PHONESCREEN_STORE_PATH": settings.store.path, "PHONESCREEN_STORE_URL": settings.store.url,
           "PHONESCREEN_LOG_FORMAT": "text"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server.cli", "campaign", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    assert cli("pause", campaign.id).returncode == 2  # a draft cannot be paused: a one-line error
    done = cli("start", campaign.id)
    assert done.returncode == 0 and done.stdout.strip() == f"campaign {campaign.id}: running"
    status = json.loads(cli("status", campaign.id, "--json").stdout)
    assert status["status"] == "running" and status["progress"]["notStarted"] == 2
    assert cli("cancel", campaign.id).returncode == 0
    assert "cancelled 2" in cli("status", campaign.id).stdout
    bad = cli("run", "--campaign", campaign.id)
    assert bad.returncode == 2 and "cancelled" in bad.stderr
    missing = cli("run", str(tmp_path / "nope.csv"), "--position", store.list_positions()[0][0].id)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
