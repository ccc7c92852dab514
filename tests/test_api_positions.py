"""/api/v1/positions over real HTTP: CRUD, versions, TOML import, validation errors, scopes, paging."""
from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest

from config.templates import InterviewTemplate, parse_template, sample_template_path
from server.http import camelize, snakeify
from server.api.schemas import COMPONENTS

BASE = "/api/v1/positions"


@pytest.fixture
def template_json(sample_template: InterviewTemplate) -> dict[str, Any]:
    """The sample template as the API's camelCase JSON."""
    return camelize(sample_template.to_dict())


async def create(api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(BASE, json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def error_of(response, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return (await response.json())["error"]


async def test_create_then_get_round_trips_the_template(api, template_json, sample_template) -> None:
    created = await create(api, template_json)
    assert created["id"].startswith("pos_") and created["version"] == 1 and created["archivedAt"] is None
    assert created["rubricVersion"] == sample_template.fingerprint()
    assert created["template"] == template_json
    fetched = await (await api.get(f"{BASE}/{created['id']}")).json()
    assert fetched == created
    assert parse_template(snakeify(fetched["template"])) == sample_template


async def test_put_makes_a_new_version_and_the_old_one_stays_readable(api, template_json) -> None:
    position = await create(api, template_json)
    changed = {**template_json, "title": "Night-shift support agent", "maxDurationS": 600}
    response = await api.put(f"{BASE}/{position['id']}", json=changed)
    assert response.status == 200
    updated = await response.json()
    assert updated["version"] == 2 and updated["template"]["title"] == "Night-shift support agent"
    assert updated["rubricVersion"] != position["rubricVersion"]
    old = await (await api.get(f"{BASE}/{position['id']}", params={"version": "1"})).json()
    assert old["version"] == 1 and old["template"] == template_json
    assert old["rubricVersion"] == position["rubricVersion"]
    current = await (await api.get(f"{BASE}/{position['id']}")).json()
    assert current["version"] == 2
    unchanged = await (await api.put(f"{BASE}/{position['id']}", json=changed)).json()
    assert unchanged["version"] == 2  # the same template again is not a new version
    assert (await error_of(await api.get(f"{BASE}/{position['id']}", params={"version": "3"}), 404))["code"] == \
        "not_found"
    assert (await error_of(await api.get(f"{BASE}/{position['id']}", params={"version": "one"}), 400))["field"] == \
        "version"


async def test_delete_archives_hides_from_the_list_and_forbids_edits(api, template_json) -> None:
    position = await create(api, template_json)
    kept = await create(api, {**template_json, "title": "Kept"})
    response = await api.delete(f"{BASE}/{position['id']}")
    assert response.status == 200
    archived = await response.json()
    assert archived["id"] == position["id"] and archived["archivedAt"]
    assert (await error_of(await api.get(f"{BASE}/{position['id']}"), 410))["code"] == "archived"
    kept_for_interviews = await api.get(f"{BASE}/{position['id']}", params={"includeArchived": "true"})
    assert kept_for_interviews.status == 200 and (await kept_for_interviews.json())["archivedAt"]
    listed = await (await api.get(BASE)).json()
    assert [p["id"] for p in listed["items"]] == [kept["id"]] and listed["total"] == 1
    everything = await (await api.get(BASE, params={"includeArchived": "true"})).json()
    assert {p["id"] for p in everything["items"]} == {position["id"], kept["id"]}
    assert (await error_of(await api.put(f"{BASE}/{position['id']}", json=template_json), 409))["code"] == "conflict"
    assert (await api.delete(f"{BASE}/{position['id']}")).status == 200  # archiving again is harmless
    assert (await error_of(await api.get(BASE, params={"includeArchived": "yes"}), 400))["field"] == \
        "includeArchived"


async def test_paging_counts_all_and_bounds_page_size(api, template_json) -> None:
    for number in range(3):
        await create(api, {**template_json, "title": f"Position {number}"})
    first = await (await api.get(BASE, params={"pageSize": "2"})).json()
    second = await (await api.get(BASE, params={"pageSize": "2", "page": "2"})).json()
    assert first["total"] == second["total"] == 3 and first["page"] == 1 and first["pageSize"] == 2
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert {p["template"]["title"] for p in first["items"] + second["items"]} == {
        "Position 0", "Position 1", "Position 2"}
    assert (await api.get(BASE, params={"pageSize": "100"})).status == 200
    for params in ({"pageSize": "101"}, {"pageSize": "0"}, {"page": "0"}, {"page": "x"}):
        error = await error_of(await api.get(BASE, params=params), 400)
        assert error["field"] == next(iter(params))


async def test_import_of_the_sample_toml(api, sample_template) -> None:
    toml = sample_template_path().read_bytes()
    response = await api.post(f"{BASE}/import", data=toml, headers={"Content-Type": "application/toml"})
    assert response.status == 201, await response.text()
    position = await response.json()
    assert position["template"]["title"] == sample_template.title
    assert position["rubricVersion"] == sample_template.fingerprint()
    as_text = await api.post(f"{BASE}/import", data=b"\xef\xbb\xbf" + toml,
                             headers={"Content-Type": "text/plain; charset=utf-8"})
    assert as_text.status == 201  # a BOM from a Windows editor is fine
    assert (await (await api.get(BASE)).json())["total"] == 2


async def test_import_errors_name_the_field_as_the_file_spells_it(api) -> None:
    """What is wrong inside the file is no schema's to state: 422, as documented."""
    toml = sample_template_path().read_text().replace("max_follow_ups = 2", "max_follow_ups = 9", 1)
    error = await error_of(await api.post(f"{BASE}/import", data=toml, headers={"Content-Type": "text/plain"}), 422)
    assert error["field"] == "factors[1].max_follow_ups" and "between 0 and 3" in error["message"]
    syntax = await error_of(await api.post(f"{BASE}/import", data="title = ", headers={"Content-Type": "text/plain"}),
                            422)
    assert syntax["message"].startswith("invalid TOML")
    binary = await error_of(await api.post(f"{BASE}/import", data=b"title = \xff",
                                           headers={"Content-Type": "text/plain"}), 422)
    assert "UTF-8" in binary["message"]
    wrong_type = await error_of(await api.post(f"{BASE}/import", json={"title": "x"}), 415)
    assert wrong_type["code"] == "unsupported_media_type" and "application/toml" in wrong_type["message"]


def _break(template_json: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(template_json)
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


_DELETE = object()


@pytest.mark.parametrize("path, value, field, words", [
    (("factors", 1, "weight"), -2, "factors[1].weight", "positive"),
    (("factors", 0, "weight"), 0, "factors[0].weight", "positive"),
    (("factors", 0, "maxFollowUp"), 1, "factors[0].maxFollowUp", "did you mean 'maxFollowUps'"),
    (("colour",), "blue", "colour", "unknown field 'colour'"),
    (("maxDurationS",), 30, "maxDurationS", "between 60 and 3600"),
    (("silenceRepromptS",), True, "silenceRepromptS", "integer"),
    (("title",), 5, "title", "string"),
    (("title",), None, "title", "string"),
    (("title",), "   ", "title", "empty"),
    (("title",), "x" * 2001, "title", "2000"),
    (("greeting",), "Hi {name}", "greeting", "placeholder"),
    (("language",), "english", "language", "language code"),
    (("factors",), [], "factors", "1 to 10"),
    (("factors",), {"name": "x"}, "factors", "list"),
    (("factors", 0, "questions"), ["a", "b", "c", "d"], "factors[0].questions", "1 to 3"),
    (("factors", 0, "questions", 0), {"text": "nested"}, "factors[0].questions[0]", "string"),
    (("factors", 2, "anchors", "weak"), _DELETE, "factors[2].anchors.weak", "required"),
    (("consent",), _DELETE, "consent", "required"),
])
async def test_bad_templates_are_400_naming_the_camel_case_field(api, template_json, path, value, field,
                                                                  words) -> None:
    body = _break(template_json, path, value)
    for response in (await api.post(BASE, json=body),
                     await api.put(f"{BASE}/{(await create(api, template_json))['id']}", json=body)):
        error = await error_of(response, 400)
        assert error["field"] == field and words in error["message"], error
    assert (await (await api.get(BASE)).json())["total"] == 1  # only the one made for the PUT


async def test_duplicate_factor_names_are_422_as_documented(api, template_json) -> None:
    """Names unique across factors is a rule no JSON Schema states: 422, not the schema's 400."""
    body = _break(template_json, ("factors", 1, "name"), "COMMUNICATION CLARITY")
    for response in (await api.post(BASE, json=body),
                     await api.put(f"{BASE}/{(await create(api, template_json))['id']}", json=body)):
        error = await error_of(response, 422)
        assert error["field"] == "factors[1].name" and "duplicate" in error["message"], error


async def test_an_empty_job_fact_topic_is_422(api, template_json) -> None:
    """OpenAPI 3.0 has no propertyNames, so a blank topic passes the schema: the rule answers 422 (fuzz run)."""
    error = await error_of(await api.post(BASE, json={**template_json, "jobFacts": {" ": "Nine to five."}}), 422)
    assert error["field"] == "jobFacts" and "topic" in error["message"]


async def test_the_template_schema_states_what_the_api_accepts(api, template_json) -> None:
    """The OpenAPI Template schema (used by the fuzz run) agrees with the validator on these bodies."""
    schema = jsonschema_rs.Draft4Validator({"$ref": "#/components/schemas/Template", "components": COMPONENTS})
    bodies = [template_json,
              {**template_json, "greeting": " Hi {candidate_name}, {{literally}} from {company}."},
              {**template_json, "greeting": "Hi {candidate_name}, this is {company}.", "company": " "},
              {**template_json, "greeting": "Hi {candidate_name}, {{company}} is literal.", "company": ""},
              {**template_json, "language": " pt-BR "},
              _break(template_json, ("factors", 0, "weight"), 0.001),
              _break(template_json, ("factors", 0, "weight"), 0),
              _break(template_json, ("greeting",), "Hi {candidate_name"),
              _break(template_json, ("greeting",), "Hi }"),
              _break(template_json, ("greeting",), " \n "),
              _break(template_json, ("language",), "en-USA"),
              _break(template_json, ("inactivityTimeoutS",), 1801),
              _break(template_json, ("factors", 0, "anchors", "great"), "x"),
              {**template_json, "factors": template_json["factors"] * 3}]
    for body in bodies:
        response = await api.post(BASE, json=body)
        assert response.status in (201, 400)
        assert schema.is_valid(body) == (response.status == 201), (body, await response.text())


async def test_bodies_that_are_not_a_json_object_are_400(api) -> None:
    bad_json = await error_of(await api.post(BASE, data=b"{title:", headers={"Content-Type": "application/json"}),
                              400)
    assert bad_json["code"] == "invalid_json"
    for body in ([1, 2], "text", None):
        assert (await error_of(await api.post(BASE, json=body), 400))["code"] == "invalid_body"
    too_big = await error_of(await api.post(BASE, json={"title": "x" * 70_000}), 413)
    assert too_big["code"] == "payload_too_large"


async def test_keys_and_scopes_are_enforced(api, make_key, template_json) -> None:
    anonymous = {"Authorization": ""}
    assert (await error_of(await api.get(BASE, headers=anonymous), 401))["code"] == "unauthorized"
    reader = make_key(["positions:read"])
    assert (await api.get(BASE, headers=reader)).status == 200
    denied = await error_of(await api.post(BASE, json=template_json, headers=reader), 403)
    assert "positions:write" in denied["message"]
    other = make_key(["candidates:read", "candidates:write"])
    assert (await api.get(BASE, headers=other)).status == 403
    toml = sample_template_path().read_text()
    assert (await api.post(f"{BASE}/import", data=toml, headers={**reader, "Content-Type": "text/plain"})).status == 403
    assert (await (await api.get(BASE)).json())["total"] == 0


async def test_unknown_ids_are_404(api, template_json) -> None:
    for method in ("GET", "DELETE"):
        error = await error_of(await api.request(method, f"{BASE}/pos_missing"), 404)
        assert "pos_missing" in error["message"]
    assert (await api.put(f"{BASE}/pos_missing", json=template_json)).status == 404
