"""The store's side of the campaign dialer on a real SQLite file with a clock the tests move: calling
windows per candidate time zone, the concurrency cap, do-not-call, retries per outcome, leases recovered
after a dialer dies, and two processes claiming at once."""
from __future__ import annotations

import multiprocessing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from campaign_harness import WEDNESDAY_NOON, MovableClock, make_campaign
from models.pacing import TokenBucket
from models.calling_window import next_call_time
from models.lifecycle import Status
from models.store import Conflict, SessionStore
from postgres import STORE_BACKENDS


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    return request.param

PHONES = [f"+1202555{n:04d}" for n in range(6)]
WINDOW = {"start": "09:00", "end": "20:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def cstore(settings, clock) -> SessionStore:
    store = SessionStore(settings.store.target, clock=clock)
    yield store
    store.close()


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# -- calling windows --------------------------------------------------------------------------------
def test_window_in_the_candidates_own_time_zone() -> None:
    # Wednesday 12:00 UTC is 07:00 in Chicago (before the window) and 21:00 in Tokyo (after it).
    assert next_call_time(WEDNESDAY_NOON, "UTC", WINDOW) == WEDNESDAY_NOON
    assert next_call_time(WEDNESDAY_NOON, "America/Chicago", WINDOW) == _utc(2030, 1, 9, 15, 0)
    assert next_call_time(WEDNESDAY_NOON, "Asia/Tokyo", WINDOW) == _utc(2030, 1, 10, 0, 0)  # Thu 09:00 JST


def test_window_skips_days_not_chosen_and_its_end_is_exclusive() -> None:
    friday_evening = _utc(2030, 1, 11, 20, 0)  # Friday 20:00 UTC: the window has just closed
    assert next_call_time(friday_evening, "UTC", WINDOW) == _utc(2030, 1, 14, 9, 0)  # Monday
    weekend = {**WINDOW, "weekdays": ["sat"]}
    assert next_call_time(WEDNESDAY_NOON, "UTC", weekend) == _utc(2030, 1, 12, 9, 0)


def test_token_bucket_paces_attempts() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, monotonic=lambda: now[0])
    assert bucket.available() == 2
    bucket.take(2)
    assert bucket.available() == 0
    now[0] += 0.5
    assert bucket.available() == 1
    now[0] += 10
    assert bucket.available() == 2  # never more than the burst
    with pytest.raises(ValueError):
        bucket.take(3)


def test_pacing_and_cap_are_the_campaigns_across_dialer_nodes(settings, cstore: SessionStore, clock,
                                                              sample_template) -> None:
    """Two nodes (two stores) claiming together get the campaign's rate and cap between them, not each."""
    other = SessionStore(settings.store.target, clock=clock)
    try:
        campaign = make_campaign(cstore, sample_template, PHONES, max_concurrent_calls=3, attempts_per_second=2.0)
        cstore.campaign_action(campaign.id, "start")
        t = 1_000_000.0
        first = cstore.claim_due_attempts(campaign.id, "node-a", limit=10, lease_s=60, paced_at=t)
        assert len(first) == 2  # the burst: one second's worth
        assert other.claim_due_attempts(campaign.id, "node-b", limit=10, lease_s=60, paced_at=t) == []
        assert len(other.claim_due_attempts(campaign.id, "node-b", limit=10, lease_s=60, paced_at=t + 0.5)) == 1
        # Tokens again, but the cap (3 active between both nodes) holds.
        assert cstore.claim_due_attempts(campaign.id, "node-a", limit=10, lease_s=60, paced_at=t + 5) == []
        cstore.finish_attempt(first[0].attempt.id, "failed")
        assert len(other.claim_due_attempts(campaign.id, "node-b", limit=10, lease_s=60, paced_at=t + 5)) == 1
        # A node whose clock is behind gets the token left (1 of the burst of 2), and no refill for going back.
        for attempt in cstore.list_attempts(campaign.id):  # free the cap: pacing alone limits what follows
            if attempt.status == "active":
                cstore.finish_attempt(attempt.id, "failed")
        assert len(cstore.claim_due_attempts(campaign.id, "node-a", limit=10, lease_s=60, paced_at=t + 4)) == 1
        assert cstore.claim_due_attempts(campaign.id, "node-a", limit=10, lease_s=60, paced_at=t + 4) == []
    finally:
        other.close()


# -- campaign status ----------------------------------------------------------------------------------
def test_start_pause_resume_cancel(cstore: SessionStore, sample_template) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:2])
    with pytest.raises(Conflict):
        cstore.campaign_action(campaign.id, "pause")  # a draft is not running
    assert cstore.campaign_action(campaign.id, "start").status == "running"
    assert cstore.campaign_progress(campaign.id)["not_started"] == 2
    with pytest.raises(Conflict):
        cstore.campaign_action(campaign.id, "start")
    assert cstore.campaign_action(campaign.id, "pause").status == "paused"
    assert cstore.claim_due_attempts(campaign.id, "a", limit=5, lease_s=30) == []  # paused: nothing dialed
    assert cstore.campaign_action(campaign.id, "resume").status == "running"
    assert cstore.campaign_action(campaign.id, "cancel").status == "cancelled"
    progress = cstore.campaign_progress(campaign.id)
    assert progress["cancelled"] == 2 and progress["not_started"] == 0
    events = [r["type"] for r in cstore.db.query("SELECT type FROM events WHERE entity_id = ?", [campaign.id])]
    assert events == ["campaign.started", "campaign.paused", "campaign.resumed", "campaign.cancelled"]


def test_claims_respect_the_cap_windows_and_do_not_call(cstore: SessionStore, sample_template, clock) -> None:
    zones = ["UTC", "UTC", "UTC", "UTC", "America/Chicago", "UTC"]
    campaign = make_campaign(cstore, sample_template, PHONES, timezones=zones, max_concurrent_calls=2)
    cstore.add_do_not_call(PHONES[0], "asked not to be called")
    cstore.campaign_action(campaign.id, "start")
    claims = cstore.claim_due_attempts(campaign.id, "dialer-a", limit=10, lease_s=30)
    assert len(claims) == 2  # the cap
    assert [c.phone for c in claims] == PHONES[1:3]
    assert cstore.claim_due_attempts(campaign.id, "dialer-b", limit=10, lease_s=30) == []  # cap across dialers
    progress = cstore.campaign_progress(campaign.id)
    assert progress["skipped_dnc"] == 1 and progress["in_progress"] == 2
    [dnc] = cstore.list_attempts(campaign.id, campaign.candidate_ids[0])
    assert dnc.outcome == "skipped_dnc" and dnc.interview_id is None  # no call placed
    for claim in claims:
        interview = cstore.get_interview(claim.interview_id)
        assert interview.campaign_id == campaign.id and interview.status == Status.SCHEDULED
        cstore.transition(claim.interview_id, Status.DIALING)
        cstore.transition(claim.interview_id, Status.IN_PROGRESS)
        cstore.transition(claim.interview_id, Status.COMPLETED)
        assert cstore.finish_attempt(claim.attempt.id, "completed", 200) is None
    claims = cstore.claim_due_attempts(campaign.id, "dialer-a", limit=10, lease_s=30)
    # The Chicago candidate is deferred to 09:00 in Chicago; the other two are called.
    assert [c.phone for c in claims] == [PHONES[3], PHONES[5]]
    [chicago] = cstore.list_attempts(campaign.id, campaign.candidate_ids[4])
    assert chicago.status == "pending" and chicago.due_at == "2030-01-09T15:00:00.000000Z"


def _end_call(store: SessionStore, interview_id: str, status: str, code: str | None = None) -> None:
    store.transition(interview_id, Status.DIALING)
    store.transition(interview_id, status, outcome_code=code)


def test_retries_follow_the_policy_per_outcome(cstore: SessionStore, sample_template, clock) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:3], max_concurrent_calls=3, retry={
        "busy": {"delay_s": 600, "max_attempts": 2}, "no_answer": {"delay_s": 3600, "max_attempts": 3},
        "voicemail": {"delay_s": 7200, "max_attempts": 1}})
    cstore.campaign_action(campaign.id, "start")
    claims = cstore.claim_due_attempts(campaign.id, "a", limit=3, lease_s=30)
    outcomes = {claims[0]: (Status.BUSY, "486"), claims[1]: (Status.NO_ANSWER, None),
                claims[2]: (Status.NO_ANSWER, "voicemail")}
    for claim, (status, code) in outcomes.items():
        _end_call(cstore, claim.interview_id, status, code)
    busy_retry = cstore.finish_attempt(claims[0].attempt.id, "busy", 486)
    no_answer_retry = cstore.finish_attempt(claims[1].attempt.id, "no_answer", None)
    assert cstore.finish_attempt(claims[2].attempt.id, "voicemail", 200) is None  # one attempt only
    assert busy_retry.attempt_no == 2 and busy_retry.due_at == "2030-01-09T12:10:00.000000Z"
    assert no_answer_retry.due_at == "2030-01-09T13:00:00.000000Z"
    assert cstore.campaign_progress(campaign.id)["retry_pending"] == 2
    assert cstore.claim_due_attempts(campaign.id, "a", limit=3, lease_s=30) == []  # nothing due yet
    clock.advance(600)
    [retry] = cstore.claim_due_attempts(campaign.id, "a", limit=3, lease_s=30)
    assert retry.attempt.attempt_no == 2
    assert cstore.get_interview(retry.interview_id).rerun_of == claims[0].interview_id  # the retry chain
    _end_call(cstore, retry.interview_id, Status.BUSY, "486")
    assert cstore.finish_attempt(retry.attempt.id, "busy", 486) is None  # max_attempts 2 reached
    progress = cstore.campaign_progress(campaign.id)
    assert progress["failed"] == 2 and progress["retry_pending"] == 1 and progress["dialed"] == 4
    assert cstore.get_campaign(campaign.id).status == "running"


def test_campaign_completes_when_nothing_is_left(cstore: SessionStore, sample_template) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:1])
    cstore.campaign_action(campaign.id, "start")
    [claim] = cstore.claim_due_attempts(campaign.id, "a", limit=1, lease_s=30)
    _end_call(cstore, claim.interview_id, Status.DECLINED, "603")
    assert cstore.finish_attempt(claim.attempt.id, "declined", 603) is None  # declined is never retried
    assert cstore.get_campaign(campaign.id).status == "completed"


def test_an_expired_lease_is_recovered_by_another_dialer(cstore: SessionStore, sample_template, clock) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:3], max_concurrent_calls=3,
                             retry={"failed": {"delay_s": 60, "max_attempts": 2}})
    cstore.campaign_action(campaign.id, "start")
    talking, ringing, unclaimed = cstore.claim_due_attempts(campaign.id, "dead", limit=3, lease_s=30)
    cstore.transition(talking.interview_id, Status.DIALING)
    cstore.transition(talking.interview_id, Status.IN_PROGRESS)
    cstore.add_turn(talking.interview_id, role="agent", text="Hello", start_ms=0, end_ms=500)
    cstore.transition(ringing.interview_id, Status.DIALING)
    clock.advance(20)
    assert cstore.renew_leases("dead", [talking.attempt.id], 30) == 1
    clock.advance(20)  # the two other leases have run out; the talking one has 10 s left
    assert cstore.recover_expired_attempts(owner="dead") == []  # a dialer never recovers its own attempts
    recovered = {a.id: a for a in cstore.recover_expired_attempts(owner="new")}
    assert set(recovered) == {ringing.attempt.id, unclaimed.attempt.id}
    assert cstore.get_interview(ringing.interview_id).status == Status.FAILED
    assert recovered[ringing.attempt.id].outcome == "failed"
    assert recovered[unclaimed.attempt.id].status == "pending"  # never dialed: dialed later, once
    assert cstore.get_interview(unclaimed.interview_id).status == Status.CANCELLED
    clock.advance(30)
    [talking_recovered] = cstore.recover_expired_attempts(owner="new")
    interview = cstore.get_interview(talking.interview_id)
    assert interview.status == Status.PARTIAL and interview.outcome_code == "dialer_lost"
    assert [t.text for t in cstore.turns(talking.interview_id)] == ["Hello"]  # its transcript is kept
    assert talking_recovered.outcome == "partial"
    # The failed one is retried after its delay, the unclaimed one now; the cut-off one resumes after its own.
    clock.advance(60)
    claims = cstore.claim_due_attempts(campaign.id, "new", limit=3, lease_s=30)
    assert sorted(c.phone for c in claims) == sorted([PHONES[1], PHONES[2]])
    clock.advance(60)  # retry.partial's default delay: 120 s
    [resumed] = cstore.claim_due_attempts(campaign.id, "new", limit=3, lease_s=30)
    assert resumed.interview_id == talking.interview_id  # the same interview, its transcript kept
    assert cstore.get_interview(resumed.interview_id).legs == 2


def _drop(store: SessionStore, interview_id: str) -> None:
    """An answered call that asked a question, then the line dropped."""
    store.transition(interview_id, Status.DIALING)
    store.transition(interview_id, Status.IN_PROGRESS)
    turn = store.add_turn(interview_id, role="agent", text="Tell me about a hard call.", start_ms=0, end_ms=900)
    store.set_turn_evaluation(interview_id, turn.turn_number, role="agent", kind="question", factor="Empathy")
    store.transition(interview_id, Status.PARTIAL, outcome_code="remote_hangup")


def test_a_dropped_interview_is_resumed_within_the_resume_policy(cstore: SessionStore, sample_template,
                                                                  clock) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:2], max_concurrent_calls=2,
                             retry={"partial": {"delay_s": 60, "max_attempts": 5}},
                             resume={"max_resumes": 1, "max_age_s": 3600})
    cstore.campaign_action(campaign.id, "start")
    first, second = cstore.claim_due_attempts(campaign.id, "a", limit=2, lease_s=30)
    _drop(cstore, first.interview_id)
    retry = cstore.finish_attempt(first.attempt.id, "partial")
    assert retry is not None and retry.due_at == "2030-01-09T12:01:00.000000Z"
    clock.advance(60)
    [again] = cstore.claim_due_attempts(campaign.id, "a", limit=2, lease_s=30)
    interview = cstore.get_interview(again.interview_id)
    assert again.interview_id == first.interview_id and interview.status == Status.SCHEDULED
    assert interview.legs == 2 and interview.ended_at is None and interview.rerun_of is None
    assert [t.text for t in cstore.turns(interview.id)] == ["Tell me about a hard call."]
    reopened = [e for e in cstore.events(interview_id=interview.id) if e.data.get("to") == "scheduled"]
    assert reopened and reopened[-1].data["from"] == "partial" and reopened[-1].data["leg"] == 2
    started = interview.started_at
    _drop(cstore, interview.id)
    assert cstore.get_interview(interview.id).started_at == started  # the interview's start, not the leg's
    assert cstore.finish_attempt(again.attempt.id, "partial") is None  # max_resumes 1: used up
    # Too old to resume: the policy's max_age_s counts from the interview's creation.
    _drop(cstore, second.interview_id)
    clock.advance(3601)
    assert cstore.finish_attempt(second.attempt.id, "partial") is None
    assert cstore.campaign_progress(campaign.id)["partial"] == 2


def _claim_in_process(path: str, campaign_id: str, owner: str, out) -> None:
    store = SessionStore(path, clock=lambda: WEDNESDAY_NOON)
    claimed = []
    for _ in range(20):
        claimed += [c.attempt.candidate_id for c in store.claim_due_attempts(campaign_id, owner, limit=1, lease_s=60)]
    out.put(claimed)


def test_two_processes_never_claim_one_candidate(settings, sample_template, tmp_path: Path) -> None:
    store = SessionStore(settings.store.target, clock=lambda: WEDNESDAY_NOON)
    phones = [f"+1202555{n:04d}" for n in range(30)]
    campaign = make_campaign(store, sample_template, phones, max_concurrent_calls=20)
    store.campaign_action(campaign.id, "start")
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_claim_in_process, args=(settings.store.target, campaign.id, f"p{i}", out))
               for i in range(3)]
    for worker in workers:
        worker.start()
    claimed = [cid for _ in workers for cid in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=30)
    assert len(claimed) == 20 == len(set(claimed))  # the cap, and no candidate twice
    assert store.campaign_progress(campaign.id)["in_progress"] == 20
    store.close()


def test_a_callback_request_becomes_the_next_attempt_at_that_time(cstore: SessionStore, sample_template,
                                                                  clock) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:1], timezones=["America/Chicago"])
    cstore.campaign_action(campaign.id, "start")
    clock.advance(4 * 3600)  # 16:00 UTC = 10:00 in Chicago, inside the window
    [claim] = cstore.claim_due_attempts(campaign.id, "dialer-a", limit=5, lease_s=30)
    for status in (Status.DIALING, Status.IN_PROGRESS):
        cstore.transition(claim.interview_id, status)
    tomorrow_ten = _utc(2030, 1, 10, 16, 0)  # "call me back tomorrow at ten", Chicago time
    assert cstore.schedule_callback(claim.interview_id, tomorrow_ten) is None  # the campaign makes the attempt
    cstore.transition(claim.interview_id, Status.CALLBACK_SCHEDULED, reason="callback_scheduled")
    callback = cstore.finish_attempt(claim.attempt.id, "callback_scheduled")
    assert callback is not None and callback.attempt_no == 2 and callback.due_at == "2030-01-10T16:00:00.000000Z"
    assert cstore.campaign_progress(campaign.id)["retry_pending"] == 1


def test_a_resumed_twilio_interview_gets_a_new_call(cstore: SessionStore, sample_template, clock) -> None:
    campaign = make_campaign(cstore, sample_template, PHONES[:1], channel="twilio",
                             retry={"partial": {"delay_s": 60, "max_attempts": 2}})
    cstore.campaign_action(campaign.id, "start")
    [claim] = cstore.claim_due_attempts(campaign.id, "a", limit=1, lease_s=30)
    cstore.issue_stream_token(claim.interview_id, 60)
    assert cstore.bind_twilio_call_sid(claim.interview_id, "CA" + "1" * 32)
    _drop(cstore, claim.interview_id)
    cstore.finish_attempt(claim.attempt.id, "partial")
    clock.advance(60)
    [again] = cstore.claim_due_attempts(campaign.id, "a", limit=1, lease_s=30)
    assert again.interview_id == claim.interview_id
    cstore.issue_stream_token(again.interview_id, 60)  # one Twilio call per leg, not per interview
    assert cstore.bind_twilio_call_sid(again.interview_id, "CA" + "2" * 32)
