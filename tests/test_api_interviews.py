"""/api/v1/interviews over a live loopback server and a real SQLite file."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from config.settings import InterviewSettings, Settings
from models.db import parse_time
from models.store import SessionStore

BASE = "/api/v1/interviews"
PUBLIC_URL = "https://screen.example.com"
EXPIRY_DAYS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Not the defaults, so the test sees the API read them: a public URL and a 3-day invite expiry."""
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server, public_url=PUBLIC_URL + "/"),
                               interviews=InterviewSettings(invite_expiry_days=EXPIRY_DAYS))


@pytest.fixture
def position_id(store: SessionStore, sample_template) -> str:
    return store.create_position(sample_template).id


@pytest.fixture
def candidate_id(store: SessionStore) -> str:
    return store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})[0].id


def iso_in(delta: timedelta, offset_hours: int = 0) -> str:
    return (datetime.now(timezone.utc) + delta).astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


async def create(api, candidate_id: str, position_id: str, **extra) -> dict:
    response = await api.post(BASE, json={"candidateId": candidate_id, "positionId": position_id,
                                          "channel": "web", **extra})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_create_returns_the_join_link_once_and_stores_only_a_hash(api, store, candidate_id, position_id):
    before = datetime.now(timezone.utc)
    body = await create(api, candidate_id, position_id)
    token = body["joinToken"]
    assert body["joinUrl"] == f"{PUBLIC_URL}/join#{token}"
    assert body["status"] == "scheduled" and body["channel"] == "web" and body["positionVersion"] == 1
    assert "joinTokenHash" not in body
    expires = parse_time(body["expiresAt"])
    assert before + timedelta(days=EXPIRY_DAYS) <= expires <= datetime.now(timezone.utc) + timedelta(days=EXPIRY_DAYS)
    assert store.find_interview_by_token(token).id == body["id"]
    row = next(store.db.query("SELECT join_token_hash FROM interviews WHERE id = ?", [body["id"]]))
    assert token not in row["join_token_hash"]
    for path in (f"{BASE}/{body['id']}", BASE):
        text = await (await api.get(path)).text()
        assert token not in text and "joinTokenHash" not in text and "joinToken" not in text


async def test_create_with_an_offset_expiry_and_a_phone_channel(api, candidate_id, position_id):
    expires = iso_in(timedelta(days=2), offset_hours=-5)
    body = await create(api, candidate_id, position_id, channel="sip", expiresAt=expires)
    assert body["channel"] == "sip"
    assert parse_time(body["expiresAt"]) == datetime.fromisoformat(expires)
    assert body["expiresAt"].endswith("Z")


@pytest.mark.parametrize("changes, field", [
    ({"candidateId": None}, "candidateId"),
    ({"candidateId": 42}, "candidateId"),
    ({"positionId": ""}, "positionId"),
    ({"positionId": "p" * 101}, "positionId"),
    ({"channel": "fax"}, "channel"),
    ({"channel": ["web"]}, "channel"),
    ({"expiresAt": "2030-01-31T17:00:00"}, "expiresAt"),  # no offset
    ({"expiresAt": "next tuesday"}, "expiresAt"),
    ({"expiresAt": 1767225600}, "expiresAt"),
    ({"rerunOf": {"id": "x"}}, "rerunOf"),
    ({"status": "completed"}, "status"),
])
async def test_create_rejects_bad_fields_naming_them(api, candidate_id, position_id, changes, field):
    body = {"candidateId": candidate_id, "positionId": position_id, "channel": "web", **changes}
    response = await api.post(BASE, json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field


@pytest.mark.parametrize("expires_at", [
    "2001-01-31T17:00:00Z",  # past
    "9999-12-31T23:59:59-14:00",  # beyond the datetime range once in UTC
    iso_in(timedelta(days=400)),
])
async def test_create_refuses_an_expiry_outside_the_next_365_days_with_422(api, candidate_id, position_id,
                                                                          expires_at):
    """Well-formed date-times the schema accepts but "relative to now" refuses: 422 as documented, not 400."""
    response = await api.post(BASE, json={"candidateId": candidate_id, "positionId": position_id, "channel": "web",
                                          "expiresAt": expires_at})
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["field"] == "expiresAt" and "365 days" in error["message"]


@pytest.mark.parametrize("which", ["candidate", "position", "rerunOf"])
async def test_unknown_ids_in_the_body_are_404_naming_which(api, candidate_id, position_id, which):
    body = {"candidateId": candidate_id, "positionId": position_id, "channel": "web"}
    key = {"candidate": "candidateId", "position": "positionId", "rerunOf": "rerunOf"}[which]
    body[key] = "nope_123"
    response = await api.post(BASE, json=body)
    assert response.status == 404
    message = (await response.json())["error"]["message"]
    assert "nope_123" in message
    assert message.startswith({"candidate": "candidate", "position": "position", "rerunOf": "interview"}[which])


async def test_a_phone_interview_needs_a_phone_and_an_active_position(api, store, position_id):
    no_phone = store.upsert_candidate({"name": "Web Only", "email": "web@example.com"})[0].id
    response = await api.post(BASE, json={"candidateId": no_phone, "positionId": position_id, "channel": "twilio"})
    assert response.status == 409
    assert "no phone" in (await response.json())["error"]["message"]
    store.archive_position(position_id)
    response = await api.post(BASE, json={"candidateId": no_phone, "positionId": position_id, "channel": "web"})
    assert response.status == 409
    assert "archived" in (await response.json())["error"]["message"]


async def test_list_filters_and_pages(api, store, candidate_id, position_id):
    other = store.upsert_candidate({"name": "Bo Chen", "phone": "+14155550101"})[0].id
    first = await create(api, candidate_id, position_id)
    second = await create(api, candidate_id, position_id, channel="sip")
    third = await create(api, other, position_id)
    store.transition(third["id"], "in_progress")
    store.add_turn(third["id"], role="agent", text="Hello", start_ms=0, end_ms=900)

    everything = await (await api.get(BASE, params={"pageSize": "2"})).json()
    assert everything["total"] == 3 and everything["pageSize"] == 2 and everything["page"] == 1
    assert [i["id"] for i in everything["items"]] == [third["id"], second["id"]]
    assert all("turns" not in i and "joinTokenHash" not in i for i in everything["items"])
    page_two = await (await api.get(BASE, params={"pageSize": "2", "page": "2"})).json()
    assert [i["id"] for i in page_two["items"]] == [first["id"]]

    async def ids(**params) -> set[str]:
        response = await api.get(BASE, params=params)
        assert response.status == 200
        return {i["id"] for i in (await response.json())["items"]}

    assert await ids(candidateId=candidate_id) == {first["id"], second["id"]}
    assert await ids(status="in_progress") == {third["id"]}
    assert await ids(channel="sip") == {second["id"]}
    assert await ids(positionId=position_id, channel="web") == {first["id"], third["id"]}
    assert await ids(campaignId="camp_none") == set()


@pytest.mark.parametrize("params, field", [
    ({"pageSize": "101"}, "pageSize"), ({"pageSize": "0"}, "pageSize"), ({"page": "x"}, "page"),
    ({"status": "done"}, "status"), ({"channel": "fax"}, "channel"),
])
async def test_list_rejects_bad_parameters(api, params, field):
    response = await api.get(BASE, params=params)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field


async def test_detail_has_turns_latest_scorecard_and_status_history(api, store, candidate_id, position_id):
    iid = (await create(api, candidate_id, position_id))["id"]
    store.transition(iid, "in_progress")
    store.add_turn(iid, role="agent", text="Why this job?", start_ms=0, end_ms=1200)
    store.add_turn(iid, role="candidate", text="I like helping people.", start_ms=1300, end_ms=3100,
                   stt_confidence=0.91, interrupted=True)
    store.transition(iid, "completed")
    store.save_scorecard(iid, status="scored", overall=3.5, rubric_version="r1", data={"factors": []})
    store.save_scorecard(iid, status="scored", overall=4.0, rubric_version="r1", data={"factors": []})

    response = await api.get(f"{BASE}/{iid}")
    assert response.status == 200
    detail = await response.json()
    assert detail["status"] == "report_ready"
    assert detail["turns"] == [
        {"turnNumber": 1, "role": "agent", "text": "Why this job?", "startMs": 0, "endMs": 1200,
         "sttConfidence": None, "interrupted": False},
        {"turnNumber": 2, "role": "candidate", "text": "I like helping people.", "startMs": 1300, "endMs": 3100,
         "sttConfidence": 0.91, "interrupted": True}]
    assert detail["scorecardVersions"] == 2
    assert detail["scorecard"]["version"] == 2 and detail["scorecard"]["overall"] == 4.0
    changes = [(e["data"]["from"], e["data"]["to"]) for e in detail["events"]
               if e["type"] == "interview.status_changed"]
    assert changes == [("scheduled", "in_progress"), ("in_progress", "completed"), ("completed", "report_ready")]
    assert detail["events"][0]["type"] == "interview.created"
    assert "joinTokenHash" not in detail

    transcript = await (await api.get(f"{BASE}/{iid}/transcript")).json()
    assert transcript == {"interviewId": iid, "turns": detail["turns"]}


async def test_detail_of_a_fresh_interview_has_no_scorecard(api, candidate_id, position_id):
    iid = (await create(api, candidate_id, position_id))["id"]
    detail = await (await api.get(f"{BASE}/{iid}")).json()
    assert detail["turns"] == [] and detail["scorecard"] is None and detail["scorecardVersions"] == 0


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("PATCH", ""), ("POST", "/cancel"), ("GET", "/transcript")])
async def test_unknown_interview_is_404(api, method, suffix):
    body = {"expiresAt": iso_in(timedelta(days=1))} if method == "PATCH" else None
    response = await api.request(method, f"{BASE}/int_missing{suffix}", json=body)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_reschedule_only_expires_at_and_only_while_scheduled(api, store, candidate_id, position_id):
    iid = (await create(api, candidate_id, position_id))["id"]
    new_expiry = iso_in(timedelta(days=10), offset_hours=2)
    response = await api.patch(f"{BASE}/{iid}", json={"expiresAt": new_expiry})
    assert response.status == 200
    assert parse_time((await response.json())["expiresAt"]) == datetime.fromisoformat(new_expiry)
    assert parse_time(store.get_interview(iid).expires_at) == datetime.fromisoformat(new_expiry)

    for body, field in (({"status": "completed"}, "status"), ({"transcript": []}, "transcript"),
                        ({}, "expiresAt"), ({"expiresAt": None}, "expiresAt")):
        response = await api.patch(f"{BASE}/{iid}", json=body)
        assert response.status == 400
        assert (await response.json())["error"]["field"] == field
    assert store.get_interview(iid).status == "scheduled"

    store.transition(iid, "in_progress")
    response = await api.patch(f"{BASE}/{iid}", json={"expiresAt": iso_in(timedelta(days=5))})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"


async def test_cancel_records_the_change_once(api, store, candidate_id, position_id):
    iid = (await create(api, candidate_id, position_id))["id"]
    response = await api.post(f"{BASE}/{iid}/cancel")
    assert response.status == 200
    assert (await response.json())["status"] == "cancelled"
    assert store.get_interview(iid).ended_at is not None
    again = await api.post(f"{BASE}/{iid}/cancel")
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "illegal_transition"
    cancels = [e for e in store.events(interview_id=iid) if e.data.get("to") == "cancelled"]
    assert len(cancels) == 1


async def test_scopes_are_enforced(api, make_key, candidate_id, position_id):
    read_only = make_key(["interviews:read"])
    body = {"candidateId": candidate_id, "positionId": position_id, "channel": "web"}
    assert (await api.post(BASE, json=body, headers=read_only)).status == 403
    assert (await api.get(BASE, headers=read_only)).status == 200
    assert (await api.get(BASE, headers=make_key(["campaigns:read"]))).status == 403
