"""The rated answers (data/ratings/*.json) with their templates, for calibration and the agreement bench."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from config.templates import EvaluationFactor, InterviewTemplate, load_template_file

ROOT = Path(__file__).resolve().parent.parent
SETS = ("call_center_support", "collections_agent")


@dataclass(frozen=True)
class RatedAnswer:
    template: InterviewTemplate
    factor: EvaluationFactor
    question: str
    text: str
    human: int
    split: str  # tune | heldout
    source: str  # hiring-team | phonescreen
    trap: str | None
    batch: str | None = None  # a group of answers added together ("fresh-2026-12-05": held-out, never scored
    # before they were committed), reported apart by the bench


def load_rated(split: str | None = None) -> list[RatedAnswer]:
    items = []
    for name in SETS:
        template = load_template_file(ROOT / "config" / "templates" / f"{name}.toml")
        factors = {f.name: f for f in template.factors}
        for item in json.loads((ROOT / "data" / "ratings" / f"{name}.json").read_text())["items"]:
            if split is None or item["split"] == split:
                items.append(RatedAnswer(template, factors[item["f"]], item["q"], item["t"], int(item["h"]),
                                         item["split"], item.get("source", "phonescreen"), item.get("trap"),
                                         item.get("batch")))
    return items
