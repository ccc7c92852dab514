"""The records the session store keeps. Plain frozen dataclasses: the store builds them, everyone reads them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.templates import EvaluationFactor, InterviewTemplate

__all__ = ["Position", "EvaluationFactor", "Candidate", "Campaign", "Interview", "Turn", "Scorecard", "Event",
           "WebhookEndpoint", "WebhookDelivery", "ApiKey", "CallAttempt", "Invitation", "CHANNELS", "ROLES"]

CHANNELS = ("sip", "twilio", "web")
ROLES = ("agent", "candidate")  # who an integrator's posted turns may come from (server/api/turns.py)
TURN_ROLES = (*ROLES, "recruiter")  # every stored turn: a recruiter speaks on a recruiter-led call


@dataclass(frozen=True)
class Position:
    id: str
    version: int
    template: InterviewTemplate
    rubric_version: str  # fingerprint of the template at this version, stored with every scorecard
    created_at: str
    updated_at: str
    archived_at: str | None = None

    @property
    def title(self) -> str:
        return self.template.title

    @property
    def factors(self) -> tuple[EvaluationFactor, ...]:
        return self.template.factors


@dataclass(frozen=True)
class Candidate:
    id: str
    name: str
    phone: str | None
    email: str | None
    timezone: str
    external_id: str | None
    metadata: dict[str, str]
    tags: list[str]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    position_id: str
    channel: str
    status: str
    settings: dict[str, Any]
    candidate_ids: list[str]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Interview:
    id: str
    candidate_id: str
    position_id: str
    position_version: int
    campaign_id: str | None
    channel: str
    status: str
    attempt_count: int
    outcome_code: str | None
    recording_path: str | None
    expires_at: str
    created_at: str
    updated_at: str
    started_at: str | None
    ended_at: str | None
    rerun_of: str | None
    join_token_hash: str | None = field(default=None, repr=False)
    end_reason: str | None = None  # why an answered call ended (the interviewer's words: stopped, declined, ...)
    callback_at: str | None = None  # the moment the candidate asked to be called back (ISO-8601, their offset)
    scheduled_for: str | None = None  # not dialed before this (a callback); None: as soon as possible
    legs: int = 1  # calls this interview took: one more for each resume after a dropped call
    led_by: str | None = None  # None: the AI; "recruiter": a person with the copilot; "ai_handover": handed to the AI


@dataclass(frozen=True)
class Invitation:
    """A message (e-mail or SMS) carrying an interview's join link, and how its delivery went."""
    id: str
    interview_id: str
    candidate_id: str
    channel: str  # email | sms
    status: str  # queued | sending | sent | delivered | failed | bounced
    reason: str | None  # why it failed, bounced or is being retried (the provider's words)
    attempts: int
    next_attempt_at: str | None
    provider_id: str | None  # Twilio's message SID, or the e-mail's Message-ID
    created_at: str
    updated_at: str
    sent_at: str | None


@dataclass(frozen=True)
class Turn:
    interview_id: str
    turn_number: int
    role: str
    text: str
    start_ms: int
    end_ms: int
    stt_confidence: float | None
    interrupted: bool
    created_at: str


@dataclass(frozen=True)
class TurnEvaluation:
    """What the interviewer understood of one turn (see models/schema.py, migration 4)."""
    interview_id: str
    turn_number: int
    role: str
    factor: str | None  # the factor asked about (agent) or being answered (candidate)
    question: str | None  # the question a candidate turn answers
    kind: str  # agent: the reply's kind (question, follow_up, ...); candidate: the intent (answer, repeat, ...)
    evaluation: dict | None  # an answer's evaluation: score, relevance, specificity, flags, reasoning


@dataclass(frozen=True)
class Scorecard:
    id: str
    interview_id: str
    version: int
    status: str  # scored | partial | low_confidence
    overall: float | None
    rubric_version: str
    data: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    entity: str
    entity_id: str
    interview_id: str | None
    data: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    events: list[str]
    active: bool
    description: str | None
    created_at: str
    updated_at: str
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class WebhookDelivery:
    id: str
    endpoint_id: str
    event_id: int
    event_type: str
    payload: str  # the exact body that is signed and sent
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: list[str]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class CallAttempt:
    """One try at calling a campaign candidate (models/campaign_dialing.py)."""
    id: str
    campaign_id: str
    candidate_id: str
    interview_id: str | None  # created when a dialer claims the attempt
    attempt_no: int  # 1 for the first call to the candidate in this campaign
    status: str  # pending (due at due_at) | active (claimed, leased) | done
    outcome: str | None  # the interview's end (completed, partial, no_answer, busy, voicemail...) or skipped_dnc...
    sip_code: int | None
    lease_owner: str | None
    lease_expires_at: str | None
    heartbeat_at: str | None
    due_at: str
    expires_at: str | None  # the campaign's invite expiry: not reached by then -> expired
    created_at: str
    updated_at: str
    started_at: str | None
    ended_at: str | None
