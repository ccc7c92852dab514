"""The store's half of the campaign dialer: campaign status changes, call attempts with leases, retries
and the do-not-call list. A mixin of SessionStore (the only writer of records), kept in its own module.

An attempt is `pending` (due at `due_at`), `active` (claimed by one dialer process under a lease it renews
by heartbeat) or `done` (with its outcome). Claims run under BEGIN IMMEDIATE and a partial unique index
allows one open attempt per candidate and campaign, so two dialers never call a candidate at once. A
retry is a new attempt, and its interview a new interview pointing at the previous one (`rerun_of`).
A dialer that dies leaves active attempts whose lease runs out: `recover_expired_attempts` ends their
interviews (in progress -> partial, still dialing -> failed, never dialed -> dialed again later) and
applies the retry policy, so no due retry is forgotten.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from models.pacing import TokenBucket
from models.calling_window import next_call_time
from models.campaign_settings import RETRY_OUTCOMES, resume_settings
from models.db import dumps, fmt_time, immediate, new_id, parse_time
from models.errors import Conflict, NotFound
from models.lifecycle import IllegalTransition, Status
from models.records import CallAttempt, Campaign, Interview
from models.validation import normalize_phone

# Campaign status -> the actions allowed from it and the status each leads to.
CAMPAIGN_ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"draft", "running", "paused"}), "cancelled"),
}
CAMPAIGN_STATUSES = ("draft", "running", "paused", "completed", "cancelled")
# The candidate was reached: never called again by the retry policy (a callback is its own attempt).
REACHED = frozenset({"completed", "partial", "declined", "withdrawn", "no_response", "transferred",
                     "callback_scheduled"})
CALLBACK = "callback_scheduled"
# Outcomes of attempts that placed no call.
SKIPPED_DNC, EXPIRED, CANCELLED, NO_ROUTE = "skipped_dnc", "expired", "cancelled", "no_route"
DIALER_LOST = "dialer_lost"  # outcome code of an interview whose dialer died (its lease ran out)
PROGRESS_KEYS = ("candidates", "not_started", "dialed", "in_progress", "completed", "partial", "declined", "withdrawn",
                 "no_response", "callback_scheduled", "transferred", "retry_pending",
                 "failed", "skipped_dnc", "cancelled", "expired")


@dataclasses.dataclass(frozen=True)
class Claim:
    """An attempt a dialer has just claimed: the interview to dial and the number to call."""
    attempt: CallAttempt
    interview_id: str
    phone: str
    channel: str


@dataclasses.dataclass(frozen=True)
class DoNotCallEntry:
    phone: str
    reason: str | None
    created_at: str


def attempt_outcome(interview: Interview) -> str:
    """What an ended interview means for the campaign: its status, except that an answering machine
    (no_answer with outcome code voicemail, as both channels record it) is its own outcome."""
    if interview.status == Status.NO_ANSWER and interview.outcome_code == "voicemail":
        return "voicemail"
    if interview.status == Status.REPORT_READY:
        return "completed"
    return str(interview.status)


def resumable(interview: Interview, settings: dict[str, Any], now: datetime) -> bool:
    """A dropped interview may be called again to go on where it stopped: resumes left under the campaign's
    `resume.max_resumes`, and created at most `resume.max_age_s` ago."""
    if interview.status != Status.PARTIAL:
        return False
    resume = resume_settings(settings.get("resume", {}))
    age_s = (now - parse_time(interview.created_at)).total_seconds()
    return interview.legs <= resume["max_resumes"] and age_s <= resume["max_age_s"]


class CampaignDialing:
    """Mixed into SessionStore: uses its db, clock, now(), get_campaign(), create_interview(), transition()."""

    # -- campaign status -----------------------------------------------------------------------------
    def campaign_action(self, cid: str, action: str) -> Campaign:
        """start | pause | resume | cancel. Starting makes every candidate's first attempt, due now;
        cancelling ends the attempts not dialed yet (calls in progress finish)."""
        allowed, new_status = CAMPAIGN_ACTIONS[action]
        with immediate(self.db):
            campaign = self.get_campaign(cid)
            if campaign.status not in allowed:
                raise Conflict(f"a {campaign.status} campaign cannot be {_past(action)}")
            now = self.now()
            if action == "start":
                if not campaign.candidate_ids:
                    raise Conflict("the campaign has no candidates")
                days = campaign.settings.get("invite_expiry_days", 7)
                expires = fmt_time(self.clock() + timedelta(days=days))
                for candidate_id in campaign.candidate_ids:
                    self._insert_attempt(cid, candidate_id, 1, due_at=now, expires_at=expires)
            if action == "cancel":
                self.db.execute("UPDATE call_attempts SET status = 'done', outcome = ?, updated_at = ?, ended_at = ? "
                                "WHERE campaign_id = ? AND status = 'pending'", [CANCELLED, now, now, cid])
            self.db["campaigns"].update(cid, {"status": new_status, "updated_at": now})
            self._campaign_event(f"campaign.{_past(action)}", cid, {"from": campaign.status, "to": new_status})
        return self.get_campaign(cid)

    def _campaign_event(self, event_type: str, cid: str, data: dict[str, Any]) -> None:
        self.db["events"].insert({"type": event_type, "entity": "campaign", "entity_id": cid, "interview_id": None,
                                  "data": dumps({"campaignId": cid, **data}), "created_at": self.now()})

    def _insert_attempt(self, cid: str, candidate_id: str, attempt_no: int, *, due_at: str,
                        expires_at: str | None) -> str:
        aid, now = new_id("att"), self.now()
        self.db["call_attempts"].insert({"id": aid, "campaign_id": cid, "candidate_id": candidate_id,
                                         "attempt_no": attempt_no, "status": "pending", "due_at": due_at,
                                         "expires_at": expires_at, "created_at": now, "updated_at": now})
        return aid

    def _complete_if_done(self, cid: str) -> None:
        """A running campaign with no pending or active attempt left has finished."""
        campaign = self.get_campaign(cid)
        if campaign.status == "running" and not self._one(
                "SELECT 1 FROM call_attempts WHERE campaign_id = ? AND status IN ('pending', 'active')", [cid]):
            self.db["campaigns"].update(cid, {"status": "completed", "updated_at": self.now()})
            self._campaign_event("campaign.completed", cid, {"from": "running", "to": "completed"})

    def running_campaigns(self, channel: str | None = None) -> list[Campaign]:
        where, params = ("AND channel = ?", [channel]) if channel else ("", [])
        return [self.get_campaign(r["id"]) for r in self.db.query(
            f"SELECT id FROM campaigns WHERE status = 'running' {where} ORDER BY created_at, id", params)]

    # -- claims ----------------------------------------------------------------------------------------
    def claim_due_attempts(self, cid: str, owner: str, *, limit: int, lease_s: float,
                           paced_at: float | None = None) -> list[Claim]:
        """Claim up to `limit` due attempts of a running campaign for `owner`, within the campaign's
        concurrency cap (active attempts of every dialer count) and, given `paced_at` (Unix seconds, real
        time), within its pacing: one token bucket per campaign in the store, shared by every dialer node,
        so N nodes together dial at the campaign's rate, not N times it. Attempts outside the candidate's calling
        window are deferred to its next opening; numbers on the do-not-call list end `skipped_dnc`, and
        attempts past the invite expiry end `expired`, all without a call. Each claimed attempt gets a
        scheduled interview; the caller dials it."""
        claims: list[Claim] = []
        if limit <= 0:
            return claims
        with immediate(self.db):
            campaign = self.get_campaign(cid)
            if campaign.status != "running":
                return claims
            settings = campaign.settings
            active = self.db.execute("SELECT COUNT(*) FROM call_attempts WHERE campaign_id = ? AND status = 'active'",
                                     [cid]).fetchone()[0]
            room = min(limit, settings["max_concurrent_calls"] - active)
            bucket = self._pacing_bucket(cid, settings["attempts_per_second"], paced_at) if paced_at else None
            if bucket is not None:
                room = min(room, bucket.available())
            now_dt, now = self.clock(), self.now()
            rows = list(self.db.query(  # oldest due first, then in the campaign's candidate order
                "SELECT a.* FROM call_attempts a LEFT JOIN campaign_candidates c ON c.campaign_id = a.campaign_id "
                "AND c.candidate_id = a.candidate_id WHERE a.campaign_id = ? AND a.status = 'pending' "
                "AND a.due_at <= ? ORDER BY a.due_at, a.attempt_no, c.position, a.id LIMIT ?",
                [cid, now, max(room, 0) * 4 + 20]))
            for row in rows:
                if room <= 0:
                    break
                attempt = _attempt(row)
                if attempt.expires_at and attempt.expires_at <= now:
                    self._end_attempt(attempt.id, EXPIRED, None)
                    continue
                candidate = self.get_candidate(attempt.candidate_id)
                if candidate.phone and self.on_do_not_call(candidate.phone):
                    self._end_attempt(attempt.id, SKIPPED_DNC, None)
                    continue
                opens = next_call_time(now_dt, candidate.timezone, settings["window"])
                if opens > now_dt:
                    self.db["call_attempts"].update(attempt.id, {"due_at": fmt_time(opens), "updated_at": now})
                    continue
                previous = self._one("SELECT interview_id FROM call_attempts WHERE campaign_id = ? AND candidate_id = ? "
                                     "AND interview_id IS NOT NULL ORDER BY attempt_no DESC LIMIT 1",
                                     [cid, attempt.candidate_id])
                before = self.get_interview(previous["interview_id"]) if previous else None
                if before is not None and resumable(before, settings, now_dt):
                    # The line dropped mid-interview: the same interview goes on where it stopped.
                    interview = self.reopen_to_resume(before.id, f"redialled to resume (attempt {attempt.attempt_no})")
                else:
                    interview, _token = self.create_interview(
                        candidate_id=attempt.candidate_id, position_id=campaign.position_id, channel=campaign.channel,
                        expires_at=parse_time(attempt.expires_at) if attempt.expires_at else now_dt + timedelta(days=7),
                        campaign_id=cid, rerun_of=before.id if before else None)
                lease = fmt_time(now_dt + timedelta(seconds=lease_s))
                self.db["call_attempts"].update(attempt.id, {
                    "status": "active", "interview_id": interview.id, "lease_owner": owner, "lease_expires_at": lease,
                    "heartbeat_at": now, "started_at": now, "updated_at": now})
                claims.append(Claim(self.get_attempt(attempt.id), interview.id, candidate.phone or "", campaign.channel))
                room -= 1
            if bucket is not None and claims:
                bucket.take(len(claims))
                self.db["pacing_buckets"].upsert({"campaign_id": cid, "tokens": bucket.tokens,
                                                  "refilled_at": bucket.updated}, pk="campaign_id")
            self._complete_if_done(cid)
        return claims

    def _pacing_bucket(self, cid: str, rate: float, paced_at: float) -> TokenBucket:
        """The campaign's shared token bucket as stored (full when none is), refilled up to `paced_at`."""
        bucket = TokenBucket(rate, monotonic=lambda: paced_at)
        row = self._one("SELECT tokens, refilled_at FROM pacing_buckets WHERE campaign_id = ?", [cid])
        if row is not None:  # a node whose clock is behind refills nothing rather than going back in time
            bucket.tokens, bucket.updated = min(row["tokens"], bucket.burst), min(row["refilled_at"], paced_at)
        return bucket

    def renew_leases(self, owner: str, attempt_ids: list[str], lease_s: float) -> int:
        """The heartbeat: extend `owner`'s leases on these active attempts; returns how many it still holds."""
        if not attempt_ids:
            return 0
        now = self.now()
        lease = fmt_time(self.clock() + timedelta(seconds=lease_s))
        marks = ",".join("?" * len(attempt_ids))
        with immediate(self.db):
            cursor = self.db.execute(
                f"UPDATE call_attempts SET lease_expires_at = ?, heartbeat_at = ?, updated_at = ? "
                f"WHERE status = 'active' AND lease_owner = ? AND id IN ({marks})", [lease, now, now, owner, *attempt_ids])
            return cursor.rowcount

    def finish_attempt(self, attempt_id: str, outcome: str, sip_code: int | None = None) -> CallAttempt | None:
        """Store an active attempt's outcome and apply the campaign's retry policy; returns the retry
        attempt it scheduled, if any. An attempt that is no longer active (recovered meanwhile) is left."""
        with immediate(self.db):
            attempt = self.get_attempt(attempt_id)
            if attempt.status != "active":
                return None
            return self._end_attempt(attempt_id, outcome, sip_code)

    def _end_attempt(self, attempt_id: str, outcome: str, sip_code: int | None) -> CallAttempt | None:
        moment = self.clock()  # read once: the retry is due exactly its delay after this end
        now = fmt_time(moment)
        attempt = self.get_attempt(attempt_id)
        self.db["call_attempts"].update(attempt_id, {"status": "done", "outcome": outcome, "sip_code": sip_code,
                                                     "lease_owner": None, "lease_expires_at": None,
                                                     "updated_at": now, "ended_at": now})
        campaign = self.get_campaign(attempt.campaign_id)
        retry = None
        policy = campaign.settings.get("retry", {}).get(outcome)
        callback_at = self._callback_moment(attempt.interview_id) if outcome == CALLBACK else None
        if callback_at is not None and campaign.status in ("running", "paused"):
            # The candidate chose the time: no retry limit applies; the calling window still does (claims
            # defer a due attempt outside it to the window's next opening).
            retry = self.get_attempt(self._insert_attempt(attempt.campaign_id, attempt.candidate_id,
                                                          attempt.attempt_no + 1, due_at=fmt_time(callback_at),
                                                          expires_at=attempt.expires_at))
        elif (outcome in RETRY_OUTCOMES and policy and campaign.status in ("running", "paused")
                and attempt.attempt_no < policy["max_attempts"]
                and (outcome != "partial" or resumable(self.get_interview(attempt.interview_id), campaign.settings,
                                                       moment))):
            due = moment + timedelta(seconds=policy["delay_s"])
            if attempt.expires_at is None or fmt_time(due) < attempt.expires_at:
                retry = self.get_attempt(self._insert_attempt(attempt.campaign_id, attempt.candidate_id,
                                                              attempt.attempt_no + 1, due_at=fmt_time(due),
                                                              expires_at=attempt.expires_at))
        self._complete_if_done(attempt.campaign_id)
        return retry

    def _callback_moment(self, interview_id: str | None) -> datetime | None:
        row = self.db.execute("SELECT callback_at FROM interviews WHERE id = ?", [interview_id]).fetchone() \
            if interview_id else None
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def recover_expired_attempts(self, owner: str | None = None) -> list[CallAttempt]:
        """Attempts whose dialer stopped renewing its lease (it died): end their interviews (in progress ->
        partial, ringing or dialing -> failed, both with outcome code dialer_lost), apply the retry policy.
        An attempt whose interview was never dialed goes back to pending. `owner`'s own attempts are left
        alone (it knows they are alive). Returns the recovered attempts."""
        recovered = []
        expired = [r["id"] for r in self.db.query(
            "SELECT id FROM call_attempts WHERE status = 'active' AND lease_expires_at <= ? AND lease_owner IS NOT ?",
            [self.now(), owner])]
        for attempt_id in expired:
            with immediate(self.db):
                attempt = self.get_attempt(attempt_id)
                if attempt.status != "active" or (attempt.lease_expires_at or "") > self.now():
                    continue  # renewed or recovered by another process since we looked
                self._recover(attempt)
                recovered.append(self.get_attempt(attempt_id))
        return recovered

    def _recover(self, attempt: CallAttempt) -> None:
        interview = self.get_interview(attempt.interview_id) if attempt.interview_id else None
        if interview is None or interview.status == Status.SCHEDULED:
            if interview is not None:
                self.transition(interview.id, Status.CANCELLED, reason="its dialer stopped before dialing")
            self.db["call_attempts"].update(attempt.id, {"status": "pending", "interview_id": None, "lease_owner": None,
                                                         "lease_expires_at": None, "updated_at": self.now()})
            return
        new = {Status.IN_PROGRESS: Status.PARTIAL, Status.DIALING: Status.FAILED, Status.RINGING: Status.FAILED}
        if interview.status in new:
            try:
                interview = self.transition(interview.id, new[Status(interview.status)], outcome_code=DIALER_LOST,
                                            reason="the campaign dialer stopped (lease expired)")
            except IllegalTransition:
                interview = self.get_interview(interview.id)
        self._end_attempt(attempt.id, attempt_outcome(interview), None)

    # -- reading ---------------------------------------------------------------------------------------
    def get_attempt(self, attempt_id: str) -> CallAttempt:
        row = self._one("SELECT * FROM call_attempts WHERE id = ?", [attempt_id])
        if row is None:
            raise NotFound("call attempt", attempt_id)
        return _attempt(row)

    def list_attempts(self, cid: str, candidate_id: str | None = None) -> list[CallAttempt]:
        where, params = ("AND candidate_id = ?", [candidate_id]) if candidate_id else ("", [])
        return [_attempt(r) for r in self.db.query(
            f"SELECT * FROM call_attempts WHERE campaign_id = ? {where} ORDER BY candidate_id, attempt_no",
            [cid, *params])]

    def campaign_progress(self, cid: str) -> dict[str, int]:
        """Per candidate, from its latest attempt: not_started (first call not placed yet), in_progress,
        retry_pending, completed, partial (reached, call cut short), failed (no retry left), skipped_dnc,
        cancelled, expired; plus `dialed`, the calls placed so far (retries included)."""
        campaign = self.get_campaign(cid)
        counts = dict.fromkeys(PROGRESS_KEYS, 0)
        counts["candidates"] = len(campaign.candidate_ids)
        latest: dict[str, dict] = {}
        for row in self.db.query("SELECT * FROM call_attempts WHERE campaign_id = ? ORDER BY attempt_no", [cid]):
            latest[row["candidate_id"]] = row
            if row["interview_id"] is not None:
                counts["dialed"] += 1
        counts["not_started"] = len(set(campaign.candidate_ids) - set(latest))
        for row in latest.values():
            counts[_progress_key(row)] += 1
        return counts

    # -- do not call -----------------------------------------------------------------------------------
    def add_do_not_call(self, phone: str, reason: str | None = None) -> tuple[DoNotCallEntry, bool]:
        """Returns the entry and whether it is new (a known number keeps its first entry)."""
        phone = normalize_phone(phone)
        with immediate(self.db):
            existing = self._one("SELECT * FROM do_not_call WHERE phone = ?", [phone])
            if existing:
                return DoNotCallEntry(**existing), False
            self.db["do_not_call"].insert({"phone": phone, "reason": reason, "created_at": self.now()})
        return DoNotCallEntry(**self._one("SELECT * FROM do_not_call WHERE phone = ?", [phone])), True

    def remove_do_not_call(self, phone: str) -> None:
        phone = normalize_phone(phone)
        with immediate(self.db):
            if not self.db.execute("DELETE FROM do_not_call WHERE phone = ?", [phone]).rowcount:
                raise NotFound("do-not-call number", phone)

    def on_do_not_call(self, phone: str) -> bool:
        return self._one("SELECT 1 FROM do_not_call WHERE phone = ?", [phone]) is not None

    def list_do_not_call(self, *, page: int = 1, page_size: int = 20) -> tuple[list[DoNotCallEntry], int]:
        rows, total = self._page("do_not_call", [], [], page, page_size, order="created_at DESC, phone")
        return [DoNotCallEntry(**r) for r in rows], total


def _past(action: str) -> str:
    return {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]


def _progress_key(row: dict) -> str:
    if row["status"] == "active":
        return "in_progress"
    if row["status"] == "pending":
        return "retry_pending" if row["attempt_no"] > 1 else "not_started"
    outcome = row["outcome"]
    if outcome in REACHED or outcome in (SKIPPED_DNC, CANCELLED, EXPIRED):
        return outcome
    return "failed"


def _attempt(row: dict) -> CallAttempt:
    return CallAttempt(**{f.name: row.get(f.name) for f in dataclasses.fields(CallAttempt)})
