"""The one grader interface: a GradingInput (masked answers per factor) in, one result per factor out.
Implementations: scoring.evaluator_grader (per-answer evaluations, the default), scoring.feature_grader
(keyword counts) and scoring.llm_grader."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from scoring.transcript import GradingInput


@dataclass(frozen=True)
class FactorResult:
    name: str
    score: int | None  # 0-100; None: no answer to grade (never a guess)
    reasoning: str
    citations: tuple[dict, ...]  # {"turn": int, "quote": str}, quotes verbatim from that candidate turn
    source: str  # the grader that produced it: feature | llm
    answered_turns: tuple[int, ...] = ()


@dataclass(frozen=True)
class Grading:
    grader: str  # feature | llm
    model: str  # feature grader version, or the chat model's name
    factors: tuple[FactorResult, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. why the LLM grader fell back
    # Per-answer evaluations ({turn, factor, score, relevance, specificity, flags, reasoning}), in turn
    # order: what each factor's score was built from (the evaluator and LLM graders fill it).
    answers: tuple[dict, ...] = field(default=())


class Grader(Protocol):
    name: str

    def grade(self, material: GradingInput) -> Grading:
        """Grade every factor of material.template. Deterministic for the same input."""


def factor_key(name: str) -> str:
    """'Customer empathy' -> 'customer_empathy': a stable key for the factor in exports."""
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_") or "factor"
