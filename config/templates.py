"""Interview templates: one position's greeting, consent, closing and scoring rubric.

Templates are authored as TOML files or stored through the REST API as JSON (the
API layer converts camelCase keys to snake_case before calling ``parse_template``).
Validation is strict: unknown fields and wrong types are errors, because a typo in
a rubric silently changes how candidates are scored.  Only the first error is
reported, with a dotted field path such as ``factors[1].weight`` (list indexes are
0-based, as in the JSON the API stores).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_TEXT_CHARS = 2000
MAX_FACTORS = 10
MAX_QUESTIONS = 3
GREETING_PLACEHOLDERS = frozenset({"candidate_name", "company"})

# (min, max, default) for the integer timing fields, in seconds.
_TIMINGS: dict[str, tuple[int, int, int]] = {
    "max_duration_s": (60, 3600, 900),
    "inactivity_timeout_s": (10, 1800, 120),
    "silence_reprompt_s": (2, 60, 8),
}
_TOP_FIELDS = ("title", "language", "greeting", "consent", "closing", "company", *_TIMINGS, "factors", "job_facts",
               "handoff")
# A candidate who asks for a person: put through to a recruiter in their hours (handoff settings), or always
# a recruiter's callback.
HANDOFF_POLICIES = ("transfer", "callback")
MAX_JOB_FACTS = 20
_FACTOR_FIELDS = ("name", "weight", "description", "max_follow_ups", "questions", "anchors")
_ANCHOR_FIELDS = ("weak", "adequate", "strong")
# 2-3 letter language code with an optional 2-letter or 3-digit (UN M.49) region.
_LANGUAGE_RE = re.compile(r"([A-Za-z]{2,3})(?:-([A-Za-z]{2}|[0-9]{3}))?")


class TemplateError(ValueError):
    """Raised for any invalid template.

    ``field`` is a dotted path like ``factors[1].weight`` (None when the problem is
    not about one field, e.g. a TOML syntax error); ``source`` is the file path,
    ``'<api>'`` or None.
    """

    def __init__(self, message: str, field: str | None = None, source: str | None = None):
        super().__init__(message, field, source)
        self.message = message
        self.field = field
        self.source = source

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.field, self.message) if part)


def _show(value: Any) -> str:
    """repr() short enough to fit in one log line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class RubricAnchors:
    weak: str
    adequate: str
    strong: str


@dataclass(frozen=True)
class EvaluationFactor:
    name: str
    weight: float
    description: str
    anchors: RubricAnchors
    questions: tuple[str, ...]
    max_follow_ups: int = 1


@dataclass(frozen=True)
class InterviewTemplate:
    title: str
    language: str
    greeting: str
    consent: str
    closing: str
    factors: tuple[EvaluationFactor, ...]
    company: str = ""
    max_duration_s: int = 900
    inactivity_timeout_s: int = 120
    silence_reprompt_s: int = 8
    # What the interviewer may tell a candidate who asks about the job: topic -> a spoken answer,
    # e.g. {"pay": "The pay is seventeen dollars an hour.", "shifts": "..."}. Empty: the recruiter follows up.
    job_facts: tuple[tuple[str, str], ...] = ()
    handoff: str = "transfer"  # HANDOFF_POLICIES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able snake_case dict; ``parse_template(t.to_dict()) == t``."""
        return {
            "title": self.title,
            "language": self.language,
            "greeting": self.greeting,
            "consent": self.consent,
            "closing": self.closing,
            "company": self.company,
            "max_duration_s": self.max_duration_s,
            "inactivity_timeout_s": self.inactivity_timeout_s,
            "silence_reprompt_s": self.silence_reprompt_s,
            "factors": [
                {
                    "name": f.name,
                    "weight": f.weight,
                    "description": f.description,
                    "max_follow_ups": f.max_follow_ups,
                    "questions": list(f.questions),
                    "anchors": {"weak": f.anchors.weak, "adequate": f.anchors.adequate, "strong": f.anchors.strong},
                }
                for f in self.factors
            ],
            # Only when set, so templates without facts keep their rubric fingerprint.
            **({"job_facts": dict(self.job_facts)} if self.job_facts else {}),
            **({"handoff": self.handoff} if self.handoff != "transfer" else {}),  # the fingerprint stays
        }

    def fingerprint(self) -> str:
        """sha256 of canonical JSON: the rubric version id stored with scorecards."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def normalized_weights(self) -> dict[str, float]:
        """Factor name -> share of the total weight (sums to 1)."""
        weights = [f.weight for f in self.factors]
        if not math.isfinite(sum(weights)):
            # Huge (but individually finite) weights: scale down so the sum can't overflow.
            top = max(weights)
            weights = [w / top for w in weights]
        total = math.fsum(weights)
        return {f.name: w / total for f, w in zip(self.factors, weights)}

    def render_greeting(self, candidate_name: str) -> str:
        """Greeting with ``{candidate_name}`` and ``{company}`` filled in."""
        return self.greeting.format(candidate_name=candidate_name, company=self.company)


# --- validation helpers: each returns the cleaned value or raises TemplateError ---


def _check_fields(data: Any, allowed: tuple[str, ...], path: str) -> Mapping[str, Any]:
    where = path or "template"
    if not isinstance(data, Mapping):
        raise TemplateError(f"must be a table/object, got {_show(data)}", path or None)
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            field = f"{path}.{key}" if path else str(key)
            raise TemplateError(f"unknown field {_show(key)} in {where}{suggestion}", field)
    return data


def _text(data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    field = f"{path}.{key}" if path else key
    if key not in data:
        if required:
            raise TemplateError("is required", field)
        return ""
    return _clean_text(data[key], field, required=required)


def _clean_text(value: Any, field: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"must be a string, got {_show(value)}", field)
    # Stripped so cosmetic whitespace (e.g. TOML multi-line strings) doesn't change the fingerprint.
    text = value.strip()
    if required and not text:
        raise TemplateError(f"must not be empty, got {_show(value)}", field)
    if len(value) > MAX_TEXT_CHARS:  # as sent, like the API's maxLength: padding counts too
        raise TemplateError(f"must be at most {MAX_TEXT_CHARS} characters, got {len(value)}", field)
    return text


def _int(data: Mapping[str, Any], key: str, path: str, lo: int, hi: int, default: int) -> int:
    field = f"{path}.{key}" if path else key
    value = data.get(key, default)
    # bool is a subclass of int, but `true` is never a meaningful duration or count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"must be an integer, got {_show(value)}", field)
    if not lo <= value <= hi:
        raise TemplateError(f"must be between {lo} and {hi}, got {_show(value)}", field)
    return value


def _weight(data: Mapping[str, Any], path: str) -> float:
    field = f"{path}.weight"
    if "weight" not in data:
        raise TemplateError("is required", field)
    value = data["weight"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TemplateError(f"must be a positive number, got {_show(value)}", field)
    try:
        weight = float(value)
    except OverflowError:  # int too large for a float
        weight = math.inf
    if not math.isfinite(weight) or weight <= 0:
        raise TemplateError(f"must be a positive number, got {_show(value)}", field)
    return weight


def _language(data: Mapping[str, Any]) -> str:
    raw = _text(data, "language", "")
    match = _LANGUAGE_RE.fullmatch(raw)
    if not match:
        raise TemplateError(f"must be a language code like 'en' or 'en-US', got {_show(raw)}", "language")
    lang, region = match.groups()
    return f"{lang.lower()}-{region.upper()}" if region else lang.lower()


def _greeting(data: Mapping[str, Any]) -> str:
    greeting = _text(data, "greeting", "")
    try:
        parts = list(string.Formatter().parse(greeting))
    except ValueError as exc:  # unbalanced braces; literal braces must be doubled
        raise TemplateError(f"invalid placeholder syntax ({exc}); write literal braces as {{{{ }}}}", "greeting") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in GREETING_PLACEHOLDERS or spec or conversion:
            allowed = ", ".join(f"{{{p}}}" for p in sorted(GREETING_PLACEHOLDERS))
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise TemplateError(f"unknown placeholder {_show(shown)}; allowed: {allowed}", "greeting")
        if name == "company" and not _text(data, "company", "", required=False):
            # Otherwise the candidate would hear "the interviewer from ,".
            raise TemplateError("uses {company} but the template sets no company", "greeting")
    return greeting


def _questions(data: Mapping[str, Any], path: str) -> tuple[str, ...]:
    field = f"{path}.questions"
    if "questions" not in data:
        raise TemplateError("is required", field)
    value = data["questions"]
    if not isinstance(value, (list, tuple)):
        raise TemplateError(f"must be a list of strings, got {_show(value)}", field)
    if not 1 <= len(value) <= MAX_QUESTIONS:
        raise TemplateError(f"must have 1 to {MAX_QUESTIONS} questions, got {len(value)}", field)
    return tuple(_clean_text(q, f"{field}[{i}]") for i, q in enumerate(value))


def _anchors(data: Mapping[str, Any], path: str) -> RubricAnchors:
    field = f"{path}.anchors"
    if "anchors" not in data:
        raise TemplateError("is required (weak, adequate and strong)", field)
    anchors = _check_fields(data["anchors"], _ANCHOR_FIELDS, field)
    return RubricAnchors(**{key: _text(anchors, key, field) for key in _ANCHOR_FIELDS})


def _factor(data: Any, path: str) -> EvaluationFactor:
    data = _check_fields(data, _FACTOR_FIELDS, path)
    return EvaluationFactor(
        name=_text(data, "name", path),
        weight=_weight(data, path),
        description=_text(data, "description", path),
        max_follow_ups=_int(data, "max_follow_ups", path, 0, 3, 1),
        questions=_questions(data, path),
        anchors=_anchors(data, path),
    )


def _factors(data: Mapping[str, Any]) -> tuple[EvaluationFactor, ...]:
    if "factors" not in data:
        raise TemplateError("is required", "factors")
    value = data["factors"]
    if not isinstance(value, (list, tuple)):
        raise TemplateError(f"must be a list of factor tables, got {_show(value)}", "factors")
    if not 1 <= len(value) <= MAX_FACTORS:
        raise TemplateError(f"must have 1 to {MAX_FACTORS} factors, got {len(value)}", "factors")
    factors = tuple(_factor(item, f"factors[{i}]") for i, item in enumerate(value))
    seen: dict[str, int] = {}
    for i, factor in enumerate(factors):
        # Names key the scorecard; "Empathy" and "empathy" would collide for a human reader.
        key = factor.name.casefold()
        if key in seen:
            raise TemplateError(f"duplicate factor name {_show(factor.name)} (same as factors[{seen[key]}].name)",
                                f"factors[{i}].name")
        seen[key] = i
    return factors


def _handoff(data: Mapping[str, Any]) -> str:
    policy = data.get("handoff", "transfer")
    if policy not in HANDOFF_POLICIES:
        raise TemplateError(f"must be one of {', '.join(HANDOFF_POLICIES)}, got {_show(policy)}", "handoff")
    return policy


def _job_facts(data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    facts = data.get("job_facts", {})
    if not isinstance(facts, Mapping):
        raise TemplateError(f"must be a table of topic = answer, got {_show(facts)}", "job_facts")
    if len(facts) > MAX_JOB_FACTS:
        raise TemplateError(f"at most {MAX_JOB_FACTS} facts, got {len(facts)}", "job_facts")
    cleaned = []
    for topic, answer in facts.items():
        if not isinstance(topic, str) or not topic.strip():
            raise TemplateError("a topic must be a non-empty string", "job_facts")
        cleaned.append((topic.strip(), _clean_text(answer, f"job_facts.{topic}")))
    return tuple(sorted(cleaned))  # canonical: stored JSON sorts keys, and equal templates must compare equal


# --- public entry points ---


def parse_template(data: Mapping[str, Any], source: str | None = None) -> InterviewTemplate:
    """Validate a snake_case dict (from TOML or the API) into an InterviewTemplate."""
    try:
        data = _check_fields(data, _TOP_FIELDS, "")
        return InterviewTemplate(
            title=_text(data, "title", ""),
            language=_language(data),
            greeting=_greeting(data),
            consent=_text(data, "consent", ""),
            closing=_text(data, "closing", ""),
            company=_text(data, "company", "", required=False),
            **{key: _int(data, key, "", lo, hi, default) for key, (lo, hi, default) in _TIMINGS.items()},
            factors=_factors(data),
            job_facts=_job_facts(data),
            handoff=_handoff(data),
        )
    except TemplateError as exc:
        # Helpers don't know the source; attach it once here.
        raise TemplateError(exc.message, exc.field, source) from None


def load_template_text(text: str, source: str | None = None) -> InterviewTemplate:
    """Parse TOML text; syntax errors are reported with tomllib's line/column."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"invalid TOML: {exc}", None, source) from None
    return parse_template(data, source)


def load_template_file(path: str | os.PathLike[str]) -> InterviewTemplate:
    """Load a TOML template file; unreadable files raise TemplateError naming the path."""
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise TemplateError(f"cannot read template file: {exc.strerror or exc}", None, source) from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a BOM from Windows editors
    except UnicodeDecodeError as exc:
        raise TemplateError(f"file is not valid UTF-8 (byte {exc.start})", None, source) from None
    return load_template_text(text, source)


def sample_template_path() -> Path:
    """Path of the shipped sample template (config/templates/call_center_support.toml)."""
    return Path(__file__).resolve().parent / "templates" / "call_center_support.toml"
