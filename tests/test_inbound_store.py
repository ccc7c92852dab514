"""Inbound calls without audio: which interview a caller's number reaches (open, resumable, missed), the
claim under the store's write lock (an outbound dial and an inbound call never both run one interview),
campaign attempts taken by an inbound call, reading caller IDs and yes/no answers, and the SIP account's
view of an INVITE. A real SQLite file, a clock the tests move."""
from __future__ import annotations

from datetime import timedelta

import pytest

from campaign_harness import MovableClock, make_campaign
from dialer.inbound import caller_number, confirmation, inbound_owner, keep_lease
from dialer.sip.account import asserted_identity, called_users
from models.inbound_calls import OPEN, RERUN, RESUME
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore
from postgres import STORE_BACKENDS


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    return request.param

PHONE = "+14155550100"
OWNER = "inbound-test"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def cstore(settings, clock) -> SessionStore:
    store = SessionStore(settings.store.target, clock=clock)
    yield store
    store.close()


def _candidate(store: SessionStore, name: str = "Ana Ruiz", phone: str = PHONE) -> str:
    return store.create_candidate({"name": name, "phone": phone, "timezone": "UTC"}).id


def _interview(store: SessionStore, template, candidate_id: str, *, channel: str = "sip", days: float = 1,
               position_id: str | None = None) -> str:
    position_id = position_id or store.create_position(template).id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel=channel,
                                          expires_at=store.clock() + timedelta(days=days))
    return interview.id


def _end(store: SessionStore, iid: str, *path: Status) -> None:
    for status in path:
        store.transition(iid, status)


# -- which interview a number reaches ----------------------------------------------------------------
def test_an_unknown_or_withheld_number_reaches_nobody(cstore, sample_template) -> None:
    _interview(cstore, sample_template, _candidate(cstore))
    for phone in ("+14155550199", None):
        plan = cstore.inbound_plan(phone)
        assert plan.matches == [] and plan.candidates == 0 and not plan.confirm
    assert cstore.claim_inbound(_candidate(cstore, "Bo Li", "+14155550177"), "sip", OWNER, 30) is None


def test_an_open_interview_is_claimed_once_and_an_outbound_dial_cannot_take_it(cstore, sample_template) -> None:
    cid = _candidate(cstore)
    iid = _interview(cstore, sample_template, cid)
    [match] = cstore.inbound_plan(PHONE).matches
    assert (match.candidate_id, match.interview_id, match.kind, match.name) == (cid, iid, OPEN, "Ana Ruiz")
    claim = cstore.claim_inbound(cid, "sip", OWNER, 30)
    assert claim.interview.id == iid and claim.interview.status == Status.IN_PROGRESS
    assert claim.attempt_id is None
    [change] = [e for e in cstore.events(interview_id=iid) if e.type == "interview.status_changed"]
    assert (change.data["from"], change.data["to"], change.data["reason"]) == \
        ("scheduled", "in_progress", "the candidate called in")
    with pytest.raises(IllegalTransition):  # the media worker pool's claim
        cstore.transition(iid, Status.DIALING)
    assert cstore.inbound_plan(PHONE).matches == []  # a call is under way: never a second one
    assert cstore.claim_inbound(cid, "sip", OWNER, 30) is None


def test_a_candidate_being_dialed_is_not_reached_and_expired_invites_are_not_open(cstore, sample_template) -> None:
    cid = _candidate(cstore)
    iid = _interview(cstore, sample_template, cid)
    cstore.transition(iid, Status.DIALING)  # our call is ringing their phone right now
    assert cstore.inbound_plan(PHONE).matches == []
    other = _candidate(cstore, "Bo Li", "+14155550177")
    _interview(cstore, sample_template, other, days=0.5)
    cstore.clock.advance(24 * 3600)  # past its invite expiry
    assert cstore.inbound_plan("+14155550177").matches == []


def test_a_missed_call_gets_a_rerun_on_the_channel_called(cstore, sample_template) -> None:
    cid = _candidate(cstore)
    missed = _interview(cstore, sample_template, cid, channel="twilio")
    _end(cstore, missed, Status.DIALING, Status.NO_ANSWER)
    [match] = cstore.inbound_plan(PHONE).matches
    assert (match.kind, match.interview_id) == (RERUN, missed)
    claim = cstore.claim_inbound(cid, "sip", OWNER, 30)
    rerun = claim.interview
    assert rerun.id != missed and rerun.rerun_of == missed and rerun.channel == "sip"
    assert rerun.status == Status.IN_PROGRESS and rerun.expires_at == cstore.get_interview(missed).expires_at
    assert cstore.get_interview(missed).status == Status.NO_ANSWER


def test_a_dropped_interview_is_resumed_while_resumes_are_left(cstore, sample_template) -> None:
    cid = _candidate(cstore)
    iid = _interview(cstore, sample_template, cid)
    _end(cstore, iid, Status.DIALING, Status.IN_PROGRESS, Status.PARTIAL)
    assert cstore.inbound_plan(PHONE).matches[0].kind == RESUME
    claim = cstore.claim_inbound(cid, "twilio", OWNER, 30)
    assert (claim.interview.id, claim.interview.legs, claim.interview.status) == (iid, 2, Status.IN_PROGRESS)
    assert claim.interview.channel == "twilio"  # it runs on the channel the candidate called
    _end(cstore, iid, Status.PARTIAL)
    cstore.claim_inbound(cid, "sip", OWNER, 30)
    _end(cstore, iid, Status.PARTIAL)  # three legs: the default two resumes are used up
    assert cstore.inbound_plan(PHONE).matches == []


def test_an_open_interview_comes_before_a_missed_one_and_web_interviews_are_not_reached(cstore,
                                                                                       sample_template) -> None:
    cid = _candidate(cstore)
    missed = _interview(cstore, sample_template, cid)
    _end(cstore, missed, Status.DIALING, Status.BUSY)
    waiting = _interview(cstore, sample_template, cid)
    [match] = cstore.inbound_plan(PHONE).matches
    assert (match.kind, match.interview_id) == (OPEN, waiting)
    web_only = _candidate(cstore, "Bo Li", "+14155550177")
    _interview(cstore, sample_template, web_only, channel="web")
    assert cstore.inbound_plan("+14155550177").matches == []


def test_a_shared_number_asks_which_candidate(cstore, sample_template) -> None:
    ana, bo, cy = _candidate(cstore), _candidate(cstore, "Bo Li"), _candidate(cstore, "Cy Young")
    _interview(cstore, sample_template, ana)
    _interview(cstore, sample_template, bo)
    plan = cstore.inbound_plan(PHONE)
    assert plan.confirm and plan.candidates == 3
    assert [m.candidate_id for m in plan.matches] == [ana, bo]  # Cy has nothing to run
    assert cstore.claim_inbound(cy, "sip", OWNER, 30) is None


# -- campaigns -----------------------------------------------------------------------------------------
def _campaign_missed(store: SessionStore, template) -> tuple[str, str, str]:
    """A running campaign whose first call went unanswered: (campaign, candidate, missed interview)."""
    campaign = make_campaign(store, template, [PHONE], retry={"no_answer": {"delay_s": 3600, "max_attempts": 3}})
    store.campaign_action(campaign.id, "start")
    [claim] = store.claim_due_attempts(campaign.id, "dialer", limit=1, lease_s=30)
    _end(store, claim.interview_id, Status.DIALING, Status.NO_ANSWER)
    retry = store.finish_attempt(claim.attempt.id, "no_answer")
    assert retry is not None and retry.status == "pending"
    return campaign.id, claim.attempt.candidate_id, claim.interview_id


async def test_calling_back_takes_the_pending_retry_and_the_campaign_never_redials(cstore, sample_template) -> None:
    campaign_id, cid, missed = _campaign_missed(cstore, sample_template)
    owner = inbound_owner("sip")
    claim = cstore.claim_inbound(cid, "sip", owner, 30)
    assert claim.interview.rerun_of == missed and claim.interview.campaign_id == campaign_id
    attempt = cstore.get_attempt(claim.attempt_id)
    assert (attempt.status, attempt.attempt_no, attempt.interview_id, attempt.lease_owner) == \
        ("active", 2, claim.interview.id, owner)
    _end(cstore, claim.interview.id, Status.COMPLETED)
    await keep_lease(cstore, claim, owner, max_s=5, poll_s=0.01)
    attempt = cstore.get_attempt(claim.attempt_id)
    assert (attempt.status, attempt.outcome) == ("done", "completed")
    cstore.clock.advance(7200)  # the retry would have been due by now
    assert cstore.claim_due_attempts(campaign_id, "dialer", limit=5, lease_s=30) == []
    assert cstore.get_campaign(campaign_id).status == "completed"


def test_an_interview_a_dialer_claimed_but_not_dialed_is_taken_with_its_attempt(cstore, sample_template) -> None:
    campaign = make_campaign(cstore, sample_template, [PHONE])
    cstore.campaign_action(campaign.id, "start")
    [dialer] = cstore.claim_due_attempts(campaign.id, "dialer", limit=1, lease_s=30)  # waiting for a free line
    claim = cstore.claim_inbound(dialer.attempt.candidate_id, "sip", OWNER, 30)
    assert claim.interview.id == dialer.interview_id and claim.attempt_id == dialer.attempt.id
    assert cstore.get_attempt(dialer.attempt.id).lease_owner == OWNER
    with pytest.raises(IllegalTransition):  # what the campaign's dial then meets
        cstore.transition(dialer.interview_id, Status.DIALING)
    assert cstore.renew_leases("dialer", [dialer.attempt.id], 30) == 0


# -- caller IDs, answers, INVITEs -------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "number"), [
    ("sip:+14155550100@trunk.example.com", "+14155550100"),
    ('"Ana" <sip:14155550100@10.0.0.1:5060;user=phone>', "+14155550100"),
    ("<tel:+1-415-555-0100>", "+14155550100"),
    ("sip:0014155550100@pbx", "+14155550100"),
    ("+1 (415) 555-0100", "+14155550100"),
    ("sip:anonymous@anonymous.invalid", None),
    ("sip:04155550100@pbx", None),  # a national number: no country to place it in
    ("", None),
])
def test_caller_numbers_are_read_as_e164(given, number) -> None:
    assert caller_number(given) == number


@pytest.mark.parametrize(("text", "digit", "answer"), [
    ("Yes.", "", True), ("Yeah, speaking.", "", True), ("That's me.", "", True), ("Yes, this is Ana.", "", True),
    ("That\u2019s me.", "", True), ("No.", "", False), ("No, this is her sister.", "", False), ("Wrong number.", "", False),
    ("Hello?", "", None), ("", "", None), ("", "1", True), ("", "2", False), ("", "5", None),
])
def test_yes_or_no_to_am_i_speaking_with(text, digit, answer) -> None:
    assert confirmation(text, digit) is answer


def test_the_account_reads_who_an_invite_is_for_and_who_it_is_from() -> None:
    invite = ("INVITE sip:+15005550006@10.0.0.5:5080;transport=udp SIP/2.0\r\n"
              "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
              "From: <sip:+14155550100@trunk>;tag=1\r\nt: <sip:interview@screen.example.com>\r\n"
              "P-Asserted-Identity: <sip:+14155550111@trunk>\r\nCall-ID: x\r\n\r\n")
    assert called_users(invite) == {"+15005550006", "interview"}
    assert asserted_identity(invite) == "<sip:+14155550111@trunk>"
    assert asserted_identity(invite.replace("P-Asserted", "X-Other")) == ""
