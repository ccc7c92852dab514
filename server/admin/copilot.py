"""What the recruiter's copilot pane shows during a recruiter-led call, read from the store (the call runs
in a media worker): the plan (the template's factors, each ticked once answered), the next suggested
question with another wording and an example of a strong answer, each candidate answer's evaluation, the
transcript by role, and the recruiter's notes."""
from __future__ import annotations

from typing import Any

from config.logging_setup import mask_phone
from models.store import SessionStore
from scoring.plan import covered_factors, next_factor, suggestion
from server.api.interviews import turn_json


def copilot(store: SessionStore, interview_id: str) -> dict[str, Any]:
    interview = store.get_interview(interview_id)  # NotFound -> 404
    candidate = store.get_candidate(interview.candidate_id)
    template = store.get_position(interview.position_id, interview.position_version).template
    understood = store.turn_evaluations(interview_id)
    covered = covered_factors(understood.values())
    asked = [e.question for e in understood.values() if e.kind == "question" and e.question]
    following = next_factor(template, covered)
    turns = store.turns(interview_id)
    evaluations = []
    for turn in turns:
        known = understood.get(turn.turn_number)
        if turn.role == "candidate" and known is not None and known.kind == "answer" and known.evaluation:
            evaluations.append({"turn": turn.turn_number, "factor": known.factor, "question": known.question,
                                "answer": turn.text, "score": known.evaluation.get("score"),
                                "reasoning": known.evaluation.get("reasoning"),
                                "flags": known.evaluation.get("flags") or []})
    return {
        "interview_id": interview.id, "status": interview.status, "led_by": interview.led_by,
        "started_at": interview.started_at, "ended_at": interview.ended_at,
        "candidate": {"name": candidate.name, "phone": mask_phone(candidate.phone)},
        "title": template.title,
        "plan": [{"factor": f.name, "weight": f.weight, "covered": f.name in covered} for f in template.factors],
        "suggestion": suggestion(following, asked) if following is not None else None,
        "evaluations": evaluations,
        "turns": [turn_json(t) for t in turns],
        "notes": store.notes(interview_id),
    }
