"""ai_feedback: two short paragraphs for the hiring team, built from the grades and the same transparent
features, so every sentence can be traced to the scorecard: what the candidate did well, and what the
next interviewer should probe."""
from __future__ import annotations

from typing import Any

from scoring.base import FactorResult
from scoring.features import factor_features
from scoring.transcript import GradingInput

GOOD = 70  # at or above: a strength; below: worth probing
ADEQUATE = 40
CONFIDENT = 0.5  # a CEFR estimate below this confidence is not worth a remark


def _gaps(material: GradingInput, result: FactorResult) -> str:
    factor = next(f for f in material.template.factors if f.name == result.name)
    f = factor_features(factor, material.for_factor(factor.name))
    gaps = []
    if f.answer.is_short:
        gaps.append(f"answered in only {f.answer.words} words")
    if f.answer.concrete_markers + f.answer.first_person_actions == 0:
        gaps.append("gave no concrete example")
    elif f.answer.first_person_actions == 0:
        gaps.append("did not say what they did themselves")
    if f.answer.vague_markers:
        gaps.append(f"hedged {f.answer.vague_markers} times")
    if f.weak_words:
        gaps.append(f"leaned on the weak anchor ({', '.join(f.weak_words[:3])})")
    if not f.reasoning_links:
        gaps.append("gave no reasons")
    return ", ".join(gaps[:3]) or "gave a thinner answer than on other factors"


def _strengths(graded: list[FactorResult]) -> str:
    if not graded:
        return "Too little was said to name a strength."
    ranked = sorted(graded, key=lambda r: -(r.score or 0))
    best = [r for r in ranked if (r.score or 0) >= GOOD][:2]
    if not best:
        top = ranked[0]
        if (top.score or 0) < ADEQUATE:
            return (f"No strength stood out: no factor reached the adequate range (best: {top.name.lower()}, "
                    f"{top.score}).")
        text = f"No factor reached the strong range; the most solid answer was on {top.name.lower()} ({top.score})."
        best = [top]
    else:
        names = " and ".join(f"{r.name.lower()} ({r.score})" for r in best)
        text = f"The candidate was strongest on {names}, answering with concrete, first-hand detail."
    quote = next((r.citations[0] for r in best if r.citations), None)
    if quote:
        text += f" For example (turn {quote['turn']}): \u201c{quote['quote']}\u201d"
    return text


def _probe(material: GradingInput, results: tuple[FactorResult, ...], dropped: bool,
           language: dict[str, Any]) -> str:
    missing = [r for r in results if r.score is None]
    weak = sorted((r for r in results if r.score is not None and r.score < GOOD), key=lambda r: r.score or 0)
    lines = [f"Probe {r.name.lower()} ({r.score}): the candidate {_gaps(material, r)}." for r in weak[:2]]
    if lines:
        lines.append("Ask for one specific situation each time: what they did and how it ended.")
    if missing:
        names = ", ".join(r.name.lower() for r in missing)
        lines.append(f"Not assessed ({'the call dropped first' if dropped else 'not answered'}): {names}; "
                     "cover this in the next conversation.")
    if not lines:
        lowest = min(results, key=lambda r: r.score or 0)
        lines.append(f"No clear gap; the next interviewer could confirm {lowest.name.lower()} ({lowest.score}) "
                     "with a second, different example.")
    if language.get("cefr") in ("A1", "A2") and (language.get("cefr_confidence") or 0) >= CONFIDENT:
        lines.append(f"Check spoken English for the role: the transcript reads at about {language['cefr']}.")
    return " ".join(lines)


def compose_feedback(material: GradingInput, results: tuple[FactorResult, ...], *, dropped: bool,
                     language: dict[str, Any]) -> dict[str, str]:
    graded = [r for r in results if r.score is not None]
    return {"strengths": _strengths(graded), "probe": _probe(material, results, dropped, language)}
