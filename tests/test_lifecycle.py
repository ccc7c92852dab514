"""The interview lifecycle: the store allows exactly the transitions models.lifecycle lists, a refused one
changes nothing, and through the API an ended interview is immutable."""
from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest

from models.db import utcnow
from models.lifecycle import ENDED, TRANSITIONS, IllegalTransition, Status
from models.store import Conflict, SessionStore
from postgres import STORE_BACKENDS


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    return request.param

BASE = "/api/v1/interviews"


def paths_from_scheduled() -> dict[Status, list[Status]]:
    """The shortest legal sequence of transitions from scheduled to each status."""
    paths = {Status.SCHEDULED: []}
    queue = deque([Status.SCHEDULED])
    while queue:
        current = queue.popleft()
        for nxt in sorted(TRANSITIONS[current]):
            if nxt not in paths:
                paths[nxt] = [*paths[current], nxt]
                queue.append(nxt)
    return paths


PATHS = paths_from_scheduled()


def test_every_status_is_reachable() -> None:
    assert set(PATHS) == set(Status)


@pytest.fixture
def new_interview(store: SessionStore, sample_template):
    """new_interview(status) -> the id of a fresh phone interview driven there by legal transitions."""
    position = store.create_position(sample_template).id
    candidate = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})[0].id

    def make(status: Status = Status.SCHEDULED, **kwargs) -> str:
        iid = store.create_interview(candidate_id=candidate, position_id=position, channel="sip",
                                     expires_at=utcnow() + timedelta(days=1), **kwargs)[0].id
        for step in PATHS[status]:
            store.transition(iid, step)
        return iid
    return make


def snapshot(store: SessionStore, iid: str) -> tuple:
    return store.get_interview(iid), store.events(interview_id=iid), store.db["webhook_deliveries"].count


@pytest.mark.parametrize("current", list(Status))
def test_transition_succeeds_exactly_when_allowed(store: SessionStore, new_interview, current: Status) -> None:
    store.create_webhook(url="https://hooks.example.com/x", events=["interview.status_changed"])
    for new in Status:
        iid = new_interview(current)
        before, events_before, deliveries_before = snapshot(store, iid)
        if new in TRANSITIONS[current]:
            after = store.transition(iid, new)
            assert after.status == new
            assert after.updated_at >= before.updated_at
            events = store.events(interview_id=iid)
            assert events[:-1 - (new == Status.COMPLETED)] == events_before
            changed = [e for e in events[len(events_before):] if e.type == "interview.status_changed"]
            assert [(e.data["from"], e.data["to"]) for e in changed] == [(current.value, new.value)]
            assert store.db["webhook_deliveries"].count == deliveries_before + 1
        else:
            with pytest.raises(IllegalTransition):
                store.transition(iid, new)
            assert snapshot(store, iid) == (before, events_before, deliveries_before), f"{current} -> {new}"


def test_an_unknown_status_is_an_illegal_transition(store: SessionStore, new_interview) -> None:
    iid = new_interview()
    before = snapshot(store, iid)
    for bogus in ("done", "", "SCHEDULED"):
        with pytest.raises(IllegalTransition):
            store.transition(iid, bogus)
    assert snapshot(store, iid) == before


def test_timestamps_and_attempts_follow_the_status(store: SessionStore, new_interview) -> None:
    iid = new_interview(Status.DIALING)
    store.transition(iid, Status.NO_ANSWER)
    assert store.get_interview(iid).attempt_count == 1 and store.get_interview(iid).ended_at
    answered = new_interview(Status.IN_PROGRESS)
    interview = store.get_interview(answered)
    assert interview.started_at and not interview.ended_at


@pytest.mark.parametrize("ended", sorted(ENDED))
def test_no_turns_once_ended(store: SessionStore, new_interview, ended: Status) -> None:
    iid = new_interview(ended)
    with pytest.raises(Conflict):
        store.add_turn(iid, role="candidate", text="one more thing", start_ms=0, end_ms=500)
    assert store.turns(iid) == []


@pytest.mark.parametrize("ended", [Status.COMPLETED, Status.PARTIAL, Status.FAILED])
async def test_an_ended_interview_cannot_be_cancelled_or_patched(api, store, new_interview, ended):
    iid = new_interview(Status.IN_PROGRESS)
    store.add_turn(iid, role="agent", text="Hello", start_ms=0, end_ms=800)
    store.transition(iid, ended)
    before = snapshot(store, iid)

    response = await api.post(f"{BASE}/{iid}/cancel")
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "illegal_transition"
    response = await api.patch(f"{BASE}/{iid}", json={"expiresAt": (utcnow() + timedelta(days=2)).isoformat()})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "immutable"
    response = await api.patch(f"{BASE}/{iid}", json={"status": "scheduled"})
    assert response.status == 400
    with pytest.raises(Conflict):
        store.add_turn(iid, role="candidate", text="late", start_ms=900, end_ms=1200)
    assert snapshot(store, iid) == before
    assert [t.text for t in store.turns(iid)] == ["Hello"]


async def test_each_status_change_writes_an_event(api, store, new_interview):
    iid = new_interview()
    for status in ("dialing", "ringing", "in_progress", "completed"):
        store.transition(iid, status)
    events = (await (await api.get(f"{BASE}/{iid}")).json())["events"]
    assert [e["type"] for e in events] == ["interview.created", *["interview.status_changed"] * 4,
                                           "interview.completed"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in events[1:5]] == [
        ("scheduled", "dialing"), ("dialing", "ringing"), ("ringing", "in_progress"), ("in_progress", "completed")]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


async def test_a_rerun_is_a_new_interview_and_keeps_the_old_one(api, store, new_interview):
    old = new_interview(Status.IN_PROGRESS)
    store.add_turn(old, role="agent", text="Hello", start_ms=0, end_ms=800)
    store.transition(old, Status.PARTIAL)
    old_before = snapshot(store, old)
    candidate, position = store.get_interview(old).candidate_id, store.get_interview(old).position_id

    response = await api.post(BASE, json={"candidateId": candidate, "positionId": position, "channel": "web",
                                          "rerunOf": old})
    assert response.status == 201
    rerun = await response.json()
    assert rerun["id"] != old and rerun["rerunOf"] == old and rerun["status"] == "scheduled"
    assert snapshot(store, old) == old_before
    assert (await (await api.get(f"{BASE}/{old}/transcript")).json())["turns"][0]["text"] == "Hello"
    assert (await (await api.get(f"{BASE}/{rerun['id']}/transcript")).json())["turns"] == []
    listed = await (await api.get(BASE, params={"candidateId": candidate})).json()
    assert {i["id"] for i in listed["items"]} == {old, rerun["id"]}

    stranger = store.upsert_candidate({"name": "Bo Chen", "phone": "+14155550101"})[0].id
    response = await api.post(BASE, json={"candidateId": stranger, "positionId": position, "channel": "web",
                                          "rerunOf": old})
    assert response.status == 409
    assert "same candidate" in (await response.json())["error"]["message"]
