"""The JSON Schema (OpenAPI 3.0 dialect: `nullable`) of a scorecard's `data` as the REST API shows it
(camelCase keys; the store keeps them snake_case). server/api/interviews.py puts it in the OpenAPI
document; tests validate real scorecards against it."""
from __future__ import annotations

from typing import Any


def _obj(properties: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "properties": properties}
    return {**schema, "nullable": True} if nullable else schema


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_COUNT = {"type": "integer", "minimum": 0}

CITATION_SCHEMA = _obj({
    "turn": {"type": "integer", "minimum": 1, "description": "The candidate turn the quote comes from."},
    "quote": {"type": "string", "minLength": 1, "description": "Verbatim text of that turn."},
})

FACTOR_SCHEMA = _obj({
    "key": _STRING, "name": _STRING,
    "weight": {"type": "number", "minimum": 0, "maximum": 1, "description": "Share of the template's total weight."},
    "score": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True,
              "description": "Null when the candidate gave no answer on this factor (never a guess)."},
    "reasoning": _STRING,
    "citations": {"type": "array", "items": CITATION_SCHEMA},
    "source": {"type": "string", "enum": ["evaluator", "feature", "llm"], "description": "The grader that graded it."},
    "answeredTurns": {"type": "array", "items": {"type": "integer", "minimum": 1}},
})

LANGUAGE_SCHEMA = _obj({
    "words": _COUNT, "answers": _COUNT,
    "speakingRateWpm": {**_NULLABLE_NUMBER, "description": "Words per minute of answer time (turn timings)."},
    "fillerCount": _COUNT,
    "fillerRatePer100Words": {"type": "number", "minimum": 0},
    "lexicalDiversity": {"type": "number", "minimum": 0, "maximum": 1,
                         "description": "Moving-average type-token ratio (window of 40 words)."},
    "meanAnswerWords": {"type": "number", "minimum": 0},
    "meanSttConfidence": _NULLABLE_NUMBER,
    "cefr": {"type": "string", "enum": ["A1", "A2", "B1", "B2", "C1", "C2"], "nullable": True,
             "description": "An estimate from the transcript; pronunciation is not judged."},
    "cefrConfidence": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
    "cefrBasis": {"type": "object", "nullable": True},
    "cefrNote": {**_NULLABLE_STRING, "description": "Why there is no CEFR estimate, if there is none."},
})

ANSWER_EVALUATION_SCHEMA = _obj({
    "turn": {"type": "integer", "minimum": 1}, "startMs": _COUNT, "factor": _STRING,
    "score": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True,
              "description": "Null when too little was said to judge."},
    "relevance": {"type": "string", "enum": ["relevant", "off_topic"]},
    "specificity": {"type": "string", "enum": ["concrete", "vague"]},
    "flags": {"type": "array", "items": _STRING,
              "description": "e.g. hostile, rubric_read_back, buzzwords, verb_salad, off_topic, contradiction."},
    "reasoning": _STRING,
})
INTEGRITY_SCHEMA = _obj({
    "kind": {"type": "string", "enum": ["rubric_read_back", "same_answer_repeated"]},
    "turn": {"type": "integer", "minimum": 1}, "atMs": _COUNT, "detail": _STRING,
})


SCORECARD_DATA_SCHEMA = _obj({
    "grader": _obj({"name": {"type": "string", "enum": ["evaluator", "feature", "llm"]}, "model": _STRING,
                    "requested": {"type": "string", "enum": ["auto", "evaluator", "feature", "llm"]},
                    "temperature": {"type": "number"}, "seed": {"type": "integer"}}),
    "rubricVersion": {**_STRING, "description": "Fingerprint of the interview template that was graded."},
    "template": _obj({"title": _STRING, "language": _STRING}),
    "factors": {"type": "array", "items": FACTOR_SCHEMA},
    "answerEvaluations": {"type": "array", "items": ANSWER_EVALUATION_SCHEMA,
                          "description": "Each answer's evaluation, which the factor scores are built from "
                                         "(empty for the keyword feature grader)."},
    "integrity": {"type": "array", "items": INTEGRITY_SCHEMA,
                  "description": "Advisory, timestamped signals for the hiring team; they never change a score."},
    "coverage": _obj({"factorsTotal": _COUNT, "factorsAnswered": _COUNT, "candidateWords": _COUNT,
                      "minCandidateWords": _COUNT, "minFactorsAnswered": _COUNT}),
    "language": LANGUAGE_SCHEMA,
    "aiFeedback": _obj({"strengths": {**_STRING, "description": "What the candidate did well."},
                        "probe": {**_STRING, "description": "What the next interviewer should probe."}}),
    "maskedSpans": {**_COUNT, "description": "Spans on sensitive attributes hidden from the grader."},
    "lowConfidenceReasons": {"type": "array", "items": _STRING},
    "notes": {"type": "array", "items": _STRING},
})
# Scorecards stored before per-answer evaluations existed have neither key.
SCORECARD_DATA_SCHEMA["required"] = [k for k in SCORECARD_DATA_SCHEMA["required"]
                                     if k not in ("answerEvaluations", "integrity")]
