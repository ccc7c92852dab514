"""/api/v1/candidates over real HTTP: idempotent create, CRUD, filters, validation, scopes, CSV upload."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from config.settings import InterviewSettings, ServerSettings, Settings, StoreSettings
from models.store import SessionStore, default_expiry

BASE = "/api/v1/candidates"
DATA = Path(__file__).parent / "data"
CSV_HEADERS = {"Content-Type": "text/csv"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """As conftest's, with a default time zone that is not UTC, to see that the API uses it."""
    return Settings(server=ServerSettings(max_body_bytes=64 * 1024),
                    store=StoreSettings(path=str(tmp_path / "phonescreen.db"),
                                        recordings_dir=str(tmp_path / "recordings")),
                    interviews=InterviewSettings(default_timezone="America/Chicago"))


async def post(api, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post(BASE, json=body)
    assert response.status == status, await response.text()
    return await response.json()


async def error_of(response, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return (await response.json())["error"]


async def total(api) -> int:
    return (await (await api.get(BASE)).json())["total"]


async def test_create_cleans_the_fields_and_get_returns_them(api) -> None:
    created = await post(api, {"name": " Ana Ruiz ", "phone": "+1 (415) 555-0100", "email": "ana@example.org",
                               "externalId": "ats-1", "metadata": {"source": "job board", "score": 7,
                                                                   "Mixed_Case": "kept"},
                               "tags": ["night-shift", "night-shift", "bilingual"]})
    assert created["id"].startswith("cand_")
    assert {k: created[k] for k in ("name", "phone", "email", "timezone", "externalId", "metadata", "tags")} == {
        "name": "Ana Ruiz", "phone": "+14155550100", "email": "ana@example.org", "timezone": "America/Chicago",
        "externalId": "ats-1", "metadata": {"source": "job board", "score": "7", "Mixed_Case": "kept"},
        "tags": ["night-shift", "bilingual"]}
    assert await (await api.get(f"{BASE}/{created['id']}")).json() == created
    web_only = await post(api, {"name": "Web Only", "timezone": "Europe/Paris"})
    assert web_only["phone"] is None and web_only["timezone"] == "Europe/Paris" and web_only["tags"] == []


async def test_post_is_idempotent_by_external_id_then_by_phone(api) -> None:
    first = await post(api, {"name": "Ana", "phone": "+14155550100", "externalId": "ats-1", "tags": ["a"]})
    again = await post(api, {"name": "Ana Ruiz", "phone": "+14155550100", "externalId": "ats-1"}, status=200)
    assert again["id"] == first["id"] and again["name"] == "Ana Ruiz"
    assert again["tags"] == []  # POST replaces the candidate with what was sent
    by_phone = await post(api, {"name": "Tom", "phone": "0044 20 7946 0958"})
    same_phone = await post(api, {"name": "Tom Okafor", "phone": "+44 20 7946 0958"}, status=200)
    assert same_phone["id"] == by_phone["id"] and same_phone["name"] == "Tom Okafor"
    other = await post(api, {"name": "Other", "phone": "+14155550100", "externalId": "ats-2"})
    assert other["id"] != first["id"]  # a different external id is a different person, even with that phone
    assert await total(api) == 3


async def test_patch_changes_only_the_given_fields(api) -> None:
    ana = await post(api, {"name": "Ana", "phone": "+14155550100", "email": "ana@example.org", "tags": ["a"]})
    response = await api.patch(f"{BASE}/{ana['id']}", json={"email": None, "tags": ["b", "c"],
                                                            "timezone": "Asia/Tokyo"})
    assert response.status == 200
    patched = await response.json()
    assert patched["email"] is None and patched["tags"] == ["b", "c"] and patched["timezone"] == "Asia/Tokyo"
    assert patched["name"] == "Ana" and patched["phone"] == "+14155550100"
    assert (await (await api.patch(f"{BASE}/{ana['id']}", json={})).json())["tags"] == ["b", "c"]
    assert (await error_of(await api.patch(f"{BASE}/{ana['id']}", json={"name": None}), 400))["field"] == "name"
    await post(api, {"name": "Tom", "externalId": "ats-2"})
    clash = await error_of(await api.patch(f"{BASE}/{ana['id']}", json={"externalId": "ats-2"}), 409)
    assert "ats-2" in clash["message"]


async def test_delete_erases_then_404_and_409_while_a_call_is_under_way(api, store: SessionStore,
                                                                        sample_template) -> None:
    tom = await post(api, {"name": "Tom", "phone": "+14155550101"})
    response = await api.delete(f"{BASE}/{tom['id']}")
    assert response.status == 204 and await response.read() == b""
    assert (await api.get(f"{BASE}/{tom['id']}")).status == 404
    assert (await api.delete(f"{BASE}/{tom['id']}")).status == 404
    ana = await post(api, {"name": "Ana", "phone": "+14155550100"})
    position = store.create_position(sample_template)
    interview, _ = store.create_interview(candidate_id=ana["id"], position_id=position.id, channel="sip",
                                          expires_at=default_expiry())
    store.transition(interview.id, "dialing")  # a call is being placed: erasure must wait for it to end
    await error_of(await api.delete(f"{BASE}/{ana['id']}"), 409)
    assert (await api.get(f"{BASE}/{ana['id']}")).status == 200
    store.transition(interview.id, "no_answer")
    assert (await api.delete(f"{BASE}/{ana['id']}")).status == 204  # erased with its interviews


async def test_list_pages_and_filters(api) -> None:
    for n in range(3):
        await post(api, {"name": f"Person {n}", "phone": f"+1415555010{n}", "externalId": f"ats-{n}",
                         "tags": ["night"] if n else ["day"]})
    page = await (await api.get(BASE, params={"pageSize": "2", "page": "2"})).json()
    assert page["total"] == 3 and page["page"] == 2 and page["pageSize"] == 2 and len(page["items"]) == 1
    night = await (await api.get(BASE, params={"tag": "night"})).json()
    assert night["total"] == 2 and {c["name"] for c in night["items"]} == {"Person 1", "Person 2"}
    one = await (await api.get(BASE, params={"externalId": "ats-0"})).json()
    assert [c["name"] for c in one["items"]] == ["Person 0"]
    assert (await error_of(await api.get(BASE, params={"pageSize": "101"}), 400))["field"] == "pageSize"


@pytest.mark.parametrize("body, field, words", [
    ({"phone": "+14155550100"}, "name", "required"),
    ({"name": "   "}, "name", "required"),
    ({"name": "x" * 201}, "name", "200"),
    ({"name": 5}, "name", "string"),
    ({"name": "Ana", "phone": 14155550100}, "phone", "string"),
    ({"name": "Ana", "phone": "555-0100"}, "phone", "E.164"),
    ({"name": "Ana", "email": "not-an-email"}, "email", "email"),
    ({"name": "Ana", "timezone": "Mars/Olympus"}, "timezone", "IANA"),
    ({"name": "Ana", "timezone": ["UTC"]}, "timezone", "IANA"),
    ({"name": "Ana", "externalId": "x" * 101}, "externalId", "100"),
    ({"name": "Ana", "metadata": {f"k{n}": "v" for n in range(51)}}, "metadata", "50"),
    ({"name": "Ana", "metadata": {"nested": {"a": 1}}}, "metadata", "string or number"),
    ({"name": "Ana", "metadata": ["a"]}, "metadata", "object"),
    ({"name": "Ana", "tags": [f"t{n}" for n in range(21)]}, "tags", "20"),
    ({"name": "Ana", "tags": "night"}, "tags", "list"),
    ({"name": "Ana", "favouriteColour": "blue"}, "favouriteColour", "unknown field"),
])
async def test_invalid_fields_are_400_naming_the_field(api, body, field, words) -> None:
    error = await error_of(await api.post(BASE, json=body), 400)
    assert error["field"] == field and words in error["message"], error
    assert await total(api) == 0


async def test_bodies_that_are_not_a_json_object(api) -> None:
    bad = await error_of(await api.post(BASE, data=b'{"name": ', headers={"Content-Type": "application/json"}), 400)
    assert bad["code"] == "invalid_json"
    assert (await error_of(await api.post(BASE, json=["Ana"]), 400))["code"] == "invalid_body"
    too_big = await error_of(await api.post(BASE, json={"name": "Ana", "metadata": {"cv": "x" * 70_000}}), 413)
    assert too_big["code"] == "payload_too_large"


async def test_keys_and_scopes_are_enforced(api, make_key) -> None:
    assert (await error_of(await api.get(BASE, headers={"Authorization": "Bearer psk_wrong"}), 401))["code"] == \
        "unauthorized"
    reader = make_key(["candidates:read"])
    assert (await api.get(BASE, headers=reader)).status == 200
    denied = await error_of(await api.post(BASE, json={"name": "Ana"}, headers=reader), 403)
    assert "candidates:write" in denied["message"]
    upload = await api.post(f"{BASE}/import", data="name,phone\nAna,+14155550100\n", headers={**reader, **CSV_HEADERS})
    assert upload.status == 403
    assert (await api.get(BASE, headers=make_key(["positions:read"]))).status == 403
    assert await total(api) == 0


async def test_unknown_ids_are_404(api) -> None:
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        error = await error_of(await api.request(method, f"{BASE}/cand_missing", json=body), 404)
        assert "cand_missing" in error["message"]


async def test_csv_upload_creates_then_updates_on_reupload(api) -> None:
    good = (DATA / "candidates_good.csv").read_bytes()
    response = await api.post(f"{BASE}/import", data=good, headers=CSV_HEADERS)
    assert response.status == 200, await response.text()
    first = await response.json()
    assert (first["created"], first["updated"], first["failed"], first["errors"]) == (4, 0, 0, [])
    names = [(await (await api.get(f"{BASE}/{cid}")).json())["name"] for cid in first["candidates"]]
    assert names == ["Ana Ruiz", "Okafor, Tom", "Marcus Webb", 'Lee "Kim" Park']
    marcus = await (await api.get(f"{BASE}/{first['candidates'][2]}")).json()
    assert marcus["timezone"] == "America/Chicago"  # the server's default
    form = aiohttp.FormData()
    form.add_field("file", good, filename="candidates.csv", content_type="text/csv")
    again = await (await api.post(f"{BASE}/import", data=form)).json()
    assert (again["created"], again["updated"]) == (0, 4) and again["candidates"] == first["candidates"]
    assert await total(api) == 4


async def test_csv_upload_keeps_good_rows_and_reports_bad_ones(api) -> None:
    text = ("name,phone,External ID\n"
            "Ana Ruiz,+14155550100,ats-1\n"
            "Tom Okafor,not-a-number,ats-2\n"
            ",+14155550102,ats-3\n"
            "Marcus Webb,+14155550101,ats-4\n")
    result = await (await api.post(f"{BASE}/import", data=text, headers=CSV_HEADERS)).json()
    assert (result["created"], result["updated"], result["failed"]) == (2, 0, 2)
    assert result["errors"] == [
        {"line": 3, "field": "phone", "message": "must be an E.164 number: '+', country code, up to 15 digits"},
        {"line": 4, "field": "name", "message": "is required"}]
    listed = await (await api.get(BASE)).json()
    assert sorted(c["externalId"] for c in listed["items"]) == ["ats-1", "ats-4"]
    assert len(result["candidates"]) == 2


@pytest.mark.parametrize("body, words", [
    ((DATA / "candidates_broken.csv").read_bytes(), "line 3: a quoted value is never closed"),
    (b"", "the file is empty"),
    (b"Ana Ruiz,+14155550100\n", "no 'name' column"),
    (b"name,phone\nAna\x00,+14155550100\n", "NUL bytes"),
    ("name,phone\nJosé,+14155550100\n".encode("latin-1"), "not UTF-8"),
    (b"name,Phone,phone\n", "twice"),
])
async def test_broken_csv_files_are_422_and_save_nothing(api, body: bytes, words: str) -> None:
    """What is wrong inside the file is no schema's to state: 422, as documented."""
    error = await error_of(await api.post(f"{BASE}/import", data=body, headers=CSV_HEADERS), 422)
    assert error["field"] == "file" and words in error["message"], error
    assert await total(api) == 0


async def test_csv_upload_transport_errors(api) -> None:
    wrong_type = await error_of(await api.post(f"{BASE}/import", data="name\nAna\n",
                                               headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert "text/csv" in wrong_type["message"]
    form = aiohttp.FormData()
    form.add_field("upload", b"name,phone\n", filename="x.csv")
    no_file = await error_of(await api.post(f"{BASE}/import", data=form), 400)
    assert no_file["field"] == "file" and "no field 'file'" in no_file["message"]
    malformed = await api.post(f"{BASE}/import", data=b"garbage",
                               headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert (await error_of(malformed, 400))["field"] == "file"
    huge = "name,phone\n" + "".join(f"Person {n},+1415{n:07d}\n" for n in range(3000))
    assert (await error_of(await api.post(f"{BASE}/import", data=huge, headers=CSV_HEADERS), 413))["code"] == \
        "payload_too_large"
    assert await total(api) == 0
