"""The store's half of inbound calls: which interview a caller's number reaches, and taking it under the
write lock. A mixin of SessionStore (the only writer of records), like campaign_dialing.py.

A number reaches each candidate stored with it (E.164, as candidates are stored). Per candidate, the newest
phone interview of each position counts: `scheduled` and unexpired is open (run it), `partial` and
resumable is resumed (`reopen_to_resume`), a missed call (no_answer, busy, failed, callback_scheduled)
before its expiry gets a re-run (`rerun_of`, as a campaign retry makes one). A candidate with a call under
way (dialing, ringing, in progress) is reached by none: never two live calls for one interview or person.

`claim_inbound` does it all in one transaction, ending `scheduled -> in_progress` (the caller is already
on the line), so an outbound dialer's claim (`scheduled -> dialing`) and an inbound call never both run
one interview. A campaign interview takes the candidate's open attempt (or a new one) under the caller's
lease, so the campaign's retry policy applies to how it ends and nobody redials a candidate who called.
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from models.campaign_dialing import resumable
from models.db import fmt_time, immediate, parse_time
from models.lifecycle import ACTIVE, Status
from models.records import Interview

PHONE_CHANNELS = ("sip", "twilio")
MISSED = frozenset({Status.NO_ANSWER, Status.BUSY, Status.FAILED, Status.CALLBACK_SCHEDULED})
OPEN, RESUME, RERUN = "open", "resume", "rerun"
_PREFERENCE = {OPEN: 0, RESUME: 1, RERUN: 2}  # a waiting interview before a dropped one before a missed one
INBOUND_REASON = "the candidate called in"


@dataclasses.dataclass(frozen=True)
class InboundMatch:
    """A candidate a number reaches, and what their call would run."""
    candidate_id: str
    name: str  # the candidate's full name (the leg asks for the first name when a number is shared)
    interview_id: str  # the interview to run (open, resume) or the missed one a re-run is made of
    kind: str  # open | resume | rerun


@dataclasses.dataclass(frozen=True)
class InboundPlan:
    matches: list[InboundMatch]  # candidates with something to run, oldest candidate first
    candidates: int  # every candidate stored with the number

    @property
    def confirm(self) -> bool:
        """A shared number: the caller says which candidate they are before anything runs."""
        return self.candidates > 1 and bool(self.matches)


@dataclasses.dataclass(frozen=True)
class InboundClaim:
    interview: Interview  # now in_progress on the caller's channel
    attempt_id: str | None  # the campaign attempt it runs under: the caller keeps its lease and finishes it


class InboundCalls:
    """Mixed into SessionStore: uses its db, clock, now(), get_*(), create_interview(), transition(),
    reopen_to_resume() and the campaign attempts' helpers."""

    def inbound_plan(self, phone: str | None) -> InboundPlan:
        """Who a caller's number (E.164, or None when it gave none) reaches. Reads only."""
        if not phone:
            return InboundPlan([], 0)
        rows = list(self.db.query("SELECT id, name FROM candidates WHERE phone = ? ORDER BY created_at, rowid",
                                  [phone]))
        matches = [m for m in (self._inbound_match(r["id"], r["name"]) for r in rows) if m is not None]
        return InboundPlan(matches, len(rows))

    def claim_inbound(self, candidate_id: str, channel: str, owner: str, lease_s: float) -> InboundClaim | None:
        """Take what the candidate's call runs, now: the interview moves to in_progress on `channel` (a
        missed one's re-run is made first, a dropped one reopened), and a campaign interview's attempt
        becomes `owner`'s, leased `lease_s`. None when nothing is left to run (an outbound call took it)."""
        with immediate(self.db):
            candidate = self.get_candidate(candidate_id)
            match = self._inbound_match(candidate.id, candidate.name)
            if match is None:
                return None
            iid = match.interview_id
            if match.kind == RESUME:
                self.reopen_to_resume(iid, f"{INBOUND_REASON} to resume")
            elif match.kind == RERUN:
                iid = self._inbound_rerun(self.get_interview(iid), channel)
            if self.get_interview(iid).channel != channel:  # the record says how the call really ran
                self.db["interviews"].update(iid, {"channel": channel, "updated_at": self.now()})
            interview = self.transition(iid, Status.IN_PROGRESS, reason=INBOUND_REASON)
            return InboundClaim(interview, self._inbound_attempt(interview, owner, lease_s))

    # -- which interview ----------------------------------------------------------------------------------
    def _inbound_match(self, candidate_id: str, name: str) -> InboundMatch | None:
        marks = ",".join("?" * len(PHONE_CHANNELS))
        rows = self.db.query(f"SELECT id FROM interviews WHERE candidate_id = ? AND channel IN ({marks}) "
                             "ORDER BY created_at DESC, rowid DESC", [candidate_id, *PHONE_CHANNELS])
        newest: dict[str, Interview] = {}  # position -> its newest interview (re-runs replace older ones)
        for row in rows:
            interview = self.get_interview(row["id"])
            if interview.led_by is not None:  # a recruiter's call: theirs to place, never run by the AI on a call-in
                if interview.status in ACTIVE:
                    return None
                continue
            newest.setdefault(interview.position_id, interview)
        if any(i.status in ACTIVE for i in newest.values()):
            return None  # a call is under way: the candidate is being called, or is talking to us already
        options = [(kind, i) for i in newest.values() if (kind := self._inbound_kind(i)) is not None]
        if not options:
            return None
        kind, interview = min(options, key=lambda o: (_PREFERENCE[o[0]], -_stamp(o[1])))
        return InboundMatch(candidate_id, name, interview.id, kind)

    def _inbound_kind(self, interview: Interview) -> str | None:
        now = self.now()
        if interview.status == Status.SCHEDULED and interview.expires_at > now:
            return OPEN
        if interview.status == Status.PARTIAL and resumable(interview, self._campaign_settings(interview),
                                                             self.clock()):
            return RESUME
        if interview.status in MISSED and interview.expires_at > now \
                and self.get_position(interview.position_id).archived_at is None:
            return RERUN
        return None

    def _campaign_settings(self, interview: Interview) -> dict:
        return self.get_campaign(interview.campaign_id).settings if interview.campaign_id else {}

    def _inbound_rerun(self, missed: Interview, channel: str) -> str:
        campaign_id = missed.campaign_id
        if campaign_id and self.get_campaign(campaign_id).status not in ("running", "paused"):
            campaign_id = None  # a finished campaign takes no new calls: the re-run stands alone
        interview, _token = self.create_interview(
            candidate_id=missed.candidate_id, position_id=missed.position_id, channel=channel,
            expires_at=parse_time(missed.expires_at), campaign_id=campaign_id, rerun_of=missed.id)
        return interview.id

    # -- the campaign attempt ------------------------------------------------------------------------------
    def _inbound_attempt(self, interview: Interview, owner: str, lease_s: float) -> str | None:
        """The campaign attempt the call runs under, leased to `owner`: the dialer's own attempt for this
        interview (taken over), the candidate's pending retry, or a new attempt."""
        if not interview.campaign_id or self.get_campaign(interview.campaign_id).status not in ("running", "paused"):
            return None
        now = self.now()
        lease = {"lease_owner": owner, "lease_expires_at": fmt_time(self.clock() + timedelta(seconds=lease_s)),
                 "heartbeat_at": now, "updated_at": now}
        row = self._one("SELECT * FROM call_attempts WHERE campaign_id = ? AND candidate_id = ? "
                        "AND status IN ('pending', 'active')", [interview.campaign_id, interview.candidate_id])
        if row is not None and row["status"] == "active" and row["interview_id"] != interview.id:
            return None  # another interview of the candidate is being dialed under it (never ours to end)
        if row is None:
            last = self.db.execute("SELECT COALESCE(MAX(attempt_no), 0) FROM call_attempts WHERE campaign_id = ? "
                                   "AND candidate_id = ?", [interview.campaign_id, interview.candidate_id]).fetchone()
            aid = self._insert_attempt(interview.campaign_id, interview.candidate_id, last[0] + 1, due_at=now,
                                       expires_at=interview.expires_at)
        else:
            aid = row["id"]
        started = {} if row is not None and row["status"] == "active" else {"started_at": now}
        self.db["call_attempts"].update(aid, {**lease, **started, "status": "active", "interview_id": interview.id})
        return aid


def _stamp(interview: Interview) -> float:
    return parse_time(interview.created_at).timestamp()
