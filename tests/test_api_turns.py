"""The integrator's path (server/api/turns.py) over a live loopback server, a real SQLite file and the real
understanding models: post turns, read the history, correct a turn, finalize into a scorecard."""
from __future__ import annotations

import asyncio
import time

import pytest

from models.lifecycle import Status
from models.store import SessionStore
from server.api import turns as api_turns

INTERVIEWS = "/api/v1/interviews"

CONSENT = ("Hi Ana, this is the screening assistant for Acme Support. This call is recorded and I am an AI. "
           "Is it okay if we continue?")
# Concrete answers, one per factor of the sample template (and one to a follow-up).
ANSWERS = {
    "Communication clarity": "I would pull up both bills side by side and go through them line by line with the "
                             "customer. Last year I did exactly that for a man whose bill jumped by forty dollars: "
                             "I showed him the promo discount had ended, explained what that meant in plain words, "
                             "and then checked he understood by asking him to tell me what changed. He thanked me.",
    "Customer empathy": "A woman called me furious because her internet had been down for three days and she "
                        "worked from home. I let her finish, told her I understood how stressful that was, "
                        "apologized, booked the earliest technician visit and called her back the next morning "
                        "to confirm it was fixed. She calmed down and stayed with us.",
    "Problem solving": "First I would ask the customer to confirm the address and check with neighbours or the "
                       "reception desk. Then I would look at the carrier's tracking and the delivery photo, open a "
                       "claim with the carrier, and tell the customer when they will hear back. If nothing turns "
                       "up in two days I would send a replacement.",
    "Reliability and availability": "I can work evenings every weekday and most weekends. The rotation is fine "
                                    "for me, I have my own car and no other job, so I can cover shifts at short "
                                    "notice too.",
}
FOLLOW_UP = "Could you give me one specific example of a time you did that?"
FOLLOW_UP_ANSWER = ("Sure. In March a customer was charged twice for the same month. I opened both invoices, "
                    "showed her where the duplicate came from, refunded it and emailed her a summary the same day.")


@pytest.fixture
def position_id(store: SessionStore, sample_template) -> str:
    return store.create_position(sample_template).id


@pytest.fixture
def candidate_id(store: SessionStore) -> str:
    return store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100", "timezone": "America/New_York"})[0].id


async def schedule(api, candidate_id: str, position_id: str, channel: str = "web") -> str:
    response = await api.post(INTERVIEWS, json={"candidateId": candidate_id, "positionId": position_id,
                                                "channel": channel})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


@pytest.fixture
async def interview_id(api, candidate_id, position_id) -> str:
    return await schedule(api, candidate_id, position_id)


async def post(api, iid: str, number: int, role: str, content: str, *, status: int = 201, **extra) -> dict:
    response = await api.post(f"{INTERVIEWS}/{iid}/turns",
                              json={"turnNumber": number, "role": role, "content": content, **extra})
    body = await response.json()
    assert response.status == status, body
    return body


async def error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"error"} and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["field"] == field, body
    return body["error"]


def script(template) -> list[tuple[str, str, bool]]:
    """A whole interview as an integrator's agent would post it: (role, content, isPendingQuestion)."""
    turns = [("agent", CONSENT, False), ("candidate", "Yes, that's fine with me.", False)]
    for i, factor in enumerate(template.factors):
        lead = "Thank you, let's begin. " if i == 0 else "Thank you. "
        turns += [("agent", lead + factor.questions[0], True), ("candidate", ANSWERS[factor.name], False)]
        if i == 0:
            turns += [("agent", FOLLOW_UP, True), ("candidate", FOLLOW_UP_ANSWER, False)]
    turns.append(("agent", template.closing, False))
    return turns


async def test_a_whole_interview_is_understood_and_finalized_into_a_scorecard(api, store, interview_id,
                                                                             sample_template):
    turns = script(sample_template)
    posted = []
    for number, (role, content, pending) in enumerate(turns, start=1):
        posted.append(await post(api, interview_id, number, role, content, isPendingQuestion=pending))
    assert store.get_interview(interview_id).status == Status.IN_PROGRESS  # the first turn started it

    consent, yes, first_q, first_a, probe, probe_a = posted[:6]
    assert consent["kind"] == "statement" and consent["intent"] is None and not consent["isPendingQuestion"]
    assert yes["intent"] == "consent_yes" and yes["factor"] is None and yes["evaluation"] is None
    first = sample_template.factors[0]
    assert first_q["kind"] == "question" and first_q["isPendingQuestion"]
    assert (first_q["factor"], first_q["question"]) == (first.name, first.questions[0])
    assert first_a["intent"] == "answer" and first_a["factor"] == first.name
    assert first_a["question"] == first.questions[0]
    assert first_a["evaluation"]["factor"] == first.name and first_a["evaluation"]["score"] > 40
    assert {"relevance", "specificity", "flags", "reasoning"} <= set(first_a["evaluation"])
    assert (probe["kind"], probe["factor"], probe["question"]) == ("follow_up", first.name, FOLLOW_UP)
    assert probe_a["factor"] == first.name and probe_a["question"] == FOLLOW_UP
    assert posted[-1]["kind"] == "closing"

    response = await api.get(f"{INTERVIEWS}/{interview_id}/history")
    assert response.status == 200
    history = await response.json()
    assert history["interviewId"] == interview_id and history["status"] == "in_progress"
    assert [t["turnNumber"] for t in history["turns"]] == list(range(1, len(turns) + 1))
    assert history["turns"] == posted  # what each POST answered is what was stored
    answers = [t for t in history["turns"] if t["intent"] == "answer"]
    assert {t["factor"] for t in answers} == {f.name for f in sample_template.factors}
    assert all(t["evaluation"]["score"] is not None for t in answers)
    # The same understanding is what the store keeps for scoring (attribution from what was asked).
    known = store.turn_evaluations(interview_id)
    assert {n: k.kind for n, k in known.items()} == {t["turnNumber"]: t["kind"] for t in history["turns"]}

    response = await api.post(f"{INTERVIEWS}/{interview_id}/finalize")
    scorecard = await response.json()
    assert response.status == 201, scorecard
    assert scorecard["interviewId"] == interview_id and scorecard["version"] == 1
    assert scorecard["status"] == "scored" and scorecard["overall"] is not None
    factors = scorecard["data"]["factors"]
    assert [f["name"] for f in factors] == [f.name for f in sample_template.factors]
    assert all(f["score"] is not None and 0 <= f["score"] <= 100 for f in factors), factors
    by_name = {f["name"]: f for f in factors}
    assert set(by_name[first.name]["answeredTurns"]) == {first_a["turnNumber"], probe_a["turnNumber"]}
    assert store.get_interview(interview_id).status == Status.REPORT_READY

    # Finalizing again (a retry) returns the same scorecard, no new version; no more turns are taken.
    again = await api.post(f"{INTERVIEWS}/{interview_id}/finalize")
    assert again.status == 200 and (await again.json())["id"] == scorecard["id"]
    assert len(store.scorecards(interview_id)) == 1
    late = await api.post(f"{INTERVIEWS}/{interview_id}/turns",
                          json={"turnNumber": len(turns) + 1, "role": "candidate", "content": "One more thing."})
    await error(late, 409, "not_in_progress")
    patch = await api.patch(f"{INTERVIEWS}/{interview_id}/turns/4", json={"content": "Something else."})
    await error(patch, 409, "not_in_progress")


async def test_a_retried_post_returns_the_stored_turn_and_never_duplicates(api, store, interview_id,
                                                                           sample_template):
    first = await post(api, interview_id, 1, "agent", CONSENT)
    assert await post(api, interview_id, 1, "agent", CONSENT, status=200) == first
    question = "Thank you, let's begin. " + sample_template.factors[0].questions[0]
    await post(api, interview_id, 2, "candidate", "Yes, go ahead.")
    await post(api, interview_id, 3, "agent", question, isPendingQuestion=True)
    # Two copies of the same request racing (a client retrying on a timeout): one stores, one replays.
    body = {"turnNumber": 4, "role": "candidate", "content": ANSWERS["Communication clarity"]}
    responses = await asyncio.gather(*(api.post(f"{INTERVIEWS}/{interview_id}/turns", json=body) for _ in range(2)))
    assert sorted(r.status for r in responses) == [200, 201]
    bodies = [await r.json() for r in responses]
    assert bodies[0] == bodies[1] and bodies[0]["evaluation"]["score"] is not None
    assert [t.turn_number for t in store.turns(interview_id)] == [1, 2, 3, 4]

    # The same number with other content, role or pending flag is not a retry.
    for changed in ({"content": "Something different."}, {"role": "agent"}):
        response = await api.post(f"{INTERVIEWS}/{interview_id}/turns", json={**body, **changed})
        await error(response, 409, "turn_exists", "turnNumber")
    response = await api.post(f"{INTERVIEWS}/{interview_id}/turns",
                              json={"turnNumber": 3, "role": "agent", "content": question})
    await error(response, 409, "turn_exists", "turnNumber")
    assert len(store.turns(interview_id)) == 4


async def test_a_turn_stored_without_its_understanding_gets_it_on_the_retry(api, store, interview_id,
                                                                            sample_template):
    """The request died between storing the turn and its understanding: the retry completes it."""
    await post(api, interview_id, 1, "agent", "Thank you, let's begin. " + sample_template.factors[1].questions[0],
               isPendingQuestion=True)
    store.add_turn(interview_id, role="candidate", text=ANSWERS["Customer empathy"], start_ms=0, end_ms=0)
    replay = await post(api, interview_id, 2, "candidate", ANSWERS["Customer empathy"], status=200)
    assert replay["intent"] == "answer" and replay["factor"] == "Customer empathy"
    assert replay["evaluation"]["score"] is not None
    assert store.turn_evaluations(interview_id)[2].kind == "answer"


async def test_a_correction_is_understood_again_with_the_turns_after_it(api, store, interview_id, sample_template):
    empathy, problem = sample_template.factors[1], sample_template.factors[2]
    await post(api, interview_id, 1, "agent", "Let's begin. " + empathy.questions[0], isPendingQuestion=True)
    vague = await post(api, interview_id, 2, "candidate", "I'm a people person so I just stay calm and try to help them, that's basically it.")
    assert vague["factor"] == empathy.name
    corrected = await api.patch(f"{INTERVIEWS}/{interview_id}/turns/2", json={"content": ANSWERS[empathy.name]})
    assert corrected.status == 200
    body = await corrected.json()
    assert body["content"] == ANSWERS[empathy.name] and body["intent"] == "answer"
    assert body["evaluation"]["score"] > vague["evaluation"]["score"]
    assert store.turns(interview_id)[1].text == ANSWERS[empathy.name]

    # The agent actually asked the problem-solving question: the answer after it moves with it.
    response = await api.patch(f"{INTERVIEWS}/{interview_id}/turns/1", json={"content": problem.questions[0]})
    assert response.status == 200
    assert (await response.json())["factor"] == problem.name
    history = await (await api.get(f"{INTERVIEWS}/{interview_id}/history")).json()
    assert history["turns"][1]["factor"] == problem.name and history["turns"][1]["question"] == problem.questions[0]
    assert history["turns"][1]["evaluation"]["factor"] == problem.name

    # A correction that makes turn 1 a plain statement: the answer has no factor left to answer.
    response = await api.patch(f"{INTERVIEWS}/{interview_id}/turns/1",
                               json={"content": problem.questions[0], "isPendingQuestion": False})
    assert (await response.json())["kind"] == "statement"
    history = await (await api.get(f"{INTERVIEWS}/{interview_id}/history")).json()
    assert history["turns"][1]["factor"] is None and history["turns"][1]["evaluation"] is None

    await error(await api.patch(f"{INTERVIEWS}/{interview_id}/turns/3", json={"content": "x"}), 404, "not_found")
    await error(await api.patch(f"{INTERVIEWS}/{interview_id}/turns/2", json={"content": " "}), 400, field="content")
    await error(await api.patch(f"{INTERVIEWS}/{interview_id}/turns/2",
                                json={"content": "Yes.", "isPendingQuestion": True}), 422, field="isPendingQuestion")


@pytest.mark.parametrize("body, status, code, field", [
    ({"turnNumber": 2, "role": "agent", "content": "Hello"}, 409, "turn_number", "turnNumber"),
    ({"turnNumber": 0, "role": "agent", "content": "Hello"}, 400, None, "turnNumber"),
    ({"turnNumber": "1", "role": "agent", "content": "Hello"}, 400, None, "turnNumber"),
    ({"turnNumber": True, "role": "agent", "content": "Hello"}, 400, None, "turnNumber"),
    ({"turnNumber": 1, "role": "system", "content": "Hello"}, 400, None, "role"),
    ({"turnNumber": 1, "content": "Hello"}, 400, None, "role"),
    ({"turnNumber": 1, "role": "agent", "content": ""}, 400, None, "content"),
    ({"turnNumber": 1, "role": "agent", "content": "   "}, 400, None, "content"),
    ({"turnNumber": 1, "role": "agent", "content": 42}, 400, None, "content"),
    ({"turnNumber": 1, "role": "agent", "content": "x" * 10_001}, 400, None, "content"),
    ({"turnNumber": 1, "role": "agent", "content": "Hello", "speaker": "bot"}, 400, "unknown_field", "speaker"),
    ({"turnNumber": 1, "role": "agent", "content": "Hello", "audioUrl": "ftp://x/y.wav"}, 400, None, "audioUrl"),
    ({"turnNumber": 1, "role": "agent", "content": "Hello", "isPendingQuestion": "yes"}, 400, None,
     "isPendingQuestion"),
    ({"turnNumber": 1, "role": "candidate", "content": "Hello", "isPendingQuestion": True}, 422, "invalid_field",
     "isPendingQuestion"),
    # A pending question that is none of the position's, with no factor under way: nothing to attribute.
    ({"turnNumber": 1, "role": "agent", "content": "What's your favourite colour?", "isPendingQuestion": True},
     422, "invalid_field", "content"),
])
async def test_bad_turns_are_refused_with_a_clear_error_and_change_nothing(api, store, interview_id, body, status,
                                                                          code, field):
    await error(await api.post(f"{INTERVIEWS}/{interview_id}/turns", json=body), status, code, field)
    assert store.turns(interview_id) == []
    assert store.get_interview(interview_id).status == Status.SCHEDULED  # not started by a refused turn


async def test_a_body_that_is_not_json_and_an_unknown_interview(api, interview_id):
    response = await api.post(f"{INTERVIEWS}/{interview_id}/turns", data="turnNumber=1",
                              headers={"Content-Type": "text/plain"})
    await error(response, 415)
    response = await api.post(f"{INTERVIEWS}/nope/turns", json={"turnNumber": 1, "role": "agent", "content": "Hi"})
    await error(response, 404, "not_found")
    await error(await api.get(f"{INTERVIEWS}/nope/history"), 404, "not_found")
    await error(await api.post(f"{INTERVIEWS}/nope/finalize"), 404, "not_found")


async def test_only_the_integrators_own_interview_in_progress_takes_turns(api, store, interview_id, candidate_id,
                                                                         position_id):
    # Cancelled: not in progress.
    cancelled = await schedule(api, candidate_id, position_id)
    assert (await api.post(f"{INTERVIEWS}/{cancelled}/cancel")).status == 200
    response = await api.post(f"{INTERVIEWS}/{cancelled}/turns", json={"turnNumber": 1, "role": "agent",
                                                                       "content": CONSENT})
    await error(response, 409, "not_in_progress")
    await error(await api.post(f"{INTERVIEWS}/{cancelled}/finalize"), 409, "not_in_progress")
    # A SIP interview: phonescreen dials it itself.
    sip = await schedule(api, candidate_id, position_id, channel="sip")
    response = await api.post(f"{INTERVIEWS}/{sip}/turns", json={"turnNumber": 1, "role": "agent", "content": CONSENT})
    await error(response, 409, "not_integrator")
    # A call phonescreen is running (the candidate joined from the web link): no posted turns, no finalize.
    store.transition(interview_id, Status.IN_PROGRESS, reason="candidate joined from the web link")
    response = await api.post(f"{INTERVIEWS}/{interview_id}/turns", json={"turnNumber": 1, "role": "agent",
                                                                          "content": CONSENT})
    await error(response, 409, "not_integrator")
    await error(await api.post(f"{INTERVIEWS}/{interview_id}/finalize"), 409, "not_integrator")
    # A scheduled interview cannot be finalized; an expired invitation takes no first turn.
    fresh = await schedule(api, candidate_id, position_id)
    await error(await api.post(f"{INTERVIEWS}/{fresh}/finalize"), 409, "not_in_progress")
    store.db["interviews"].update(fresh, {"expires_at": "2020-01-01T00:00:00.000Z"})
    response = await api.post(f"{INTERVIEWS}/{fresh}/turns", json={"turnNumber": 1, "role": "agent", "content": CONSENT})
    await error(response, 409, "expired")
    assert store.get_interview(fresh).status == Status.SCHEDULED and store.turns(fresh) == []


async def test_each_endpoint_needs_its_scope(api, store, make_key, interview_id):
    read_only = make_key(["interviews:read"])
    response = await api.post(f"{INTERVIEWS}/{interview_id}/turns", headers=read_only,
                              json={"turnNumber": 1, "role": "agent", "content": CONSENT})
    assert "turns:write" in (await error(response, 403, "forbidden"))["message"]
    await error(await api.patch(f"{INTERVIEWS}/{interview_id}/turns/1", headers=read_only, json={"content": "x"}),
                403, "forbidden")
    await error(await api.post(f"{INTERVIEWS}/{interview_id}/finalize", headers=read_only), 403, "forbidden")
    interviews_write = make_key(["interviews:write"])
    await error(await api.post(f"{INTERVIEWS}/{interview_id}/finalize", headers=interviews_write), 403, "forbidden")
    write_only = make_key(["turns:write"])
    await error(await api.get(f"{INTERVIEWS}/{interview_id}/history", headers=write_only), 403, "forbidden")
    await error(await api.get(f"{INTERVIEWS}/{interview_id}/history", headers={"Authorization": "Bearer psk_nope"}),
                401, "unauthorized")
    assert store.turns(interview_id) == []
    # The integrator's key: turns:write to post, interviews:read to read the history.
    integrator = make_key(["turns:write", "interviews:read"])
    response = await api.post(f"{INTERVIEWS}/{interview_id}/turns", headers=integrator,
                              json={"turnNumber": 1, "role": "agent", "content": CONSENT})
    assert response.status == 201
    assert (await api.get(f"{INTERVIEWS}/{interview_id}/history", headers=integrator)).status == 200


async def test_model_work_runs_off_the_event_loop(api, interview_id, monkeypatch):
    """While one turn is being understood, the server keeps answering other requests."""
    understand = api_turns.understand

    def slow(*args):
        time.sleep(0.8)
        return understand(*args)

    monkeypatch.setattr(api_turns, "understand", slow)
    posting = asyncio.ensure_future(api.post(f"{INTERVIEWS}/{interview_id}/turns",
                                             json={"turnNumber": 1, "role": "agent", "content": CONSENT}))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    response = await api.get(f"{INTERVIEWS}/{interview_id}/history")
    assert response.status == 200 and time.monotonic() - started < 0.4
    assert not posting.done()
    assert (await posting).status == 201
