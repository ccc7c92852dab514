"""A campaign's results as CSV for import into an ATS: one row per interview of the campaign (latest
scorecard version), and one for each campaign candidate without an interview yet, in the campaign's
candidate order. Factor scores are columns `score_<factor key>` of the campaign's position; the invitation
columns are the newest invitation's delivery state (empty when none was sent)."""
from __future__ import annotations

import csv
import io
from typing import Any

from models.store import SessionStore
from scoring.base import factor_key

FIXED_COLUMNS = ("candidate_id", "external_id", "candidate_name", "email", "interview_id", "interview_status",
                 "end_reason", "callback_at", "channel", "ended_at", "rerun_of", "scorecard_version", "scorecard_status", "overall",
                 "rubric_version", "grader", "invitation_channel", "invitation_status", "invitation_reason")
LANGUAGE_COLUMNS = ("cefr", "speaking_rate_wpm")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): it gets a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _rows(store: SessionStore, campaign_id: str) -> list[dict[str, Any]]:
    """Interviews of the campaign with their candidate, then members without one; in candidate order."""
    interviews = list(store.db.query(
        "SELECT i.id AS interview_id, i.status AS interview_status, i.end_reason, i.callback_at, i.channel, "
        "i.ended_at, i.rerun_of, "
        "c.id AS candidate_id, c.external_id, c.name AS candidate_name, c.email, cc.position AS member "
        "FROM interviews i JOIN candidates c ON c.id = i.candidate_id "
        "LEFT JOIN campaign_candidates cc ON cc.campaign_id = i.campaign_id AND cc.candidate_id = i.candidate_id "
        "WHERE i.campaign_id = ?", [campaign_id]))
    waiting = list(store.db.query(
        "SELECT c.id AS candidate_id, c.external_id, c.name AS candidate_name, c.email, cc.position AS member "
        "FROM campaign_candidates cc JOIN candidates c ON c.id = cc.candidate_id "
        "WHERE cc.campaign_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM interviews i WHERE i.campaign_id = cc.campaign_id AND i.candidate_id = cc.candidate_id)",
        [campaign_id]))
    rows = interviews + [{**row, "interview_status": "not_scheduled"} for row in waiting]
    # Former members (removed from the list after their interview) go last.
    return sorted(rows, key=lambda r: (r["member"] is None, r["member"] or 0, r.get("ended_at") or "",
                                       r.get("interview_id") or ""))


def campaign_results_csv(store: SessionStore, campaign_id: str) -> str:
    campaign = store.get_campaign(campaign_id)  # NotFound for an unknown campaign
    factors = [factor_key(f.name) for f in store.get_position(campaign.position_id).factors]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*FIXED_COLUMNS, *(f"score_{key}" for key in factors), *LANGUAGE_COLUMNS])
    rows = _rows(store, campaign_id)
    invitations = store.latest_invitations([r["interview_id"] for r in rows if r.get("interview_id")])
    for row in rows:
        invitation = invitations.get(row.get("interview_id") or "")
        if invitation is not None:  # the newest invitation's delivery state (bounced, with the reason)
            row = {**row, "invitation_channel": invitation.channel, "invitation_status": invitation.status,
                   "invitation_reason": invitation.reason}
        scorecards = store.scorecards(row["interview_id"]) if row.get("interview_id") else []
        latest = scorecards[-1] if scorecards else None
        data = latest.data if latest else {}
        scores = {f.get("key"): f.get("score") for f in data.get("factors", [])}
        language = data.get("language", {})
        values = {**row, "scorecard_version": latest and latest.version, "scorecard_status": latest and latest.status,
                  "overall": latest and latest.overall, "rubric_version": latest and latest.rubric_version,
                  "grader": data.get("grader", {}).get("name")}
        writer.writerow([*(_cell(values.get(c)) for c in FIXED_COLUMNS),
                         *(_cell(scores.get(key)) for key in factors),
                         *(_cell(language.get(c)) for c in LANGUAGE_COLUMNS)])
    return out.getvalue()
