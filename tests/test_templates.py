"""Tests for config.templates: loading, validation errors, fingerprints."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest

from config.templates import (
    EvaluationFactor,
    InterviewTemplate,
    RubricAnchors,
    TemplateError,
    load_template_file,
    load_template_text,
    parse_template,
    sample_template_path,
)

SOURCE = "call_center.toml"


@pytest.fixture(scope="module")
def sample() -> InterviewTemplate:
    return load_template_file(sample_template_path())


@pytest.fixture
def data(sample: InterviewTemplate) -> dict:
    """A fresh, valid snake_case dict to break in each test."""
    return copy.deepcopy(sample.to_dict())


def expect_error(data: dict, field: str | None, source: str = SOURCE) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        parse_template(data, source=source)
    err = info.value
    assert err.field == field
    assert err.source == source
    text = str(err)
    assert text.startswith(f"{source}: ")
    if field is not None:
        assert f"{source}: {field}: " in text
    return err


# --- the shipped sample ---


def test_sample_loads(sample: InterviewTemplate) -> None:
    assert sample_template_path().is_file()
    assert sample.title.startswith("Customer Support Agent")
    assert sample.language == "en-US"
    assert sample.company
    assert [f.name for f in sample.factors] == [
        "Communication clarity",
        "Customer empathy",
        "Problem solving",
        "Reliability and availability",
    ]
    for factor in sample.factors:
        assert isinstance(factor, EvaluationFactor)
        assert isinstance(factor.anchors, RubricAnchors)
        assert 2 <= len(factor.questions) <= 3
        assert factor.max_follow_ups in (1, 2)
        assert factor.description and factor.anchors.weak and factor.anchors.strong


def test_sample_consent_and_greeting_content(sample: InterviewTemplate) -> None:
    consent = sample.consent.lower()
    assert "recorded" in consent and "ai" in consent.split() and "press 1" in consent
    assert "{candidate_name}" in sample.greeting and "{company}" in sample.greeting
    assert "business days" in sample.closing
    # Multi-line TOML strings are stripped, so no stray newlines reach TTS.
    assert sample.greeting == sample.greeting.strip() and "\n" not in sample.greeting


def test_sample_avoids_protected_topics(sample: InterviewTemplate) -> None:
    questions = " ".join(q for f in sample.factors for q in f.questions)
    protected = r"\b(age|old|born|children|kids|married|health|religio\w*|nationality|citizen\w*|disabilit\w*|pregnan\w*)\b"
    assert re.search(protected, questions, re.IGNORECASE) is None


def test_round_trip(sample: InterviewTemplate) -> None:
    as_dict = sample.to_dict()
    assert parse_template(as_dict) == sample
    # to_dict must survive JSON (what the API stores) unchanged.
    assert parse_template(json.loads(json.dumps(as_dict))) == sample
    assert parse_template(json.loads(json.dumps(as_dict))).fingerprint() == sample.fingerprint()


def test_render_greeting(sample: InterviewTemplate) -> None:
    text = sample.render_greeting("Dana {evil}")
    assert text.startswith("Hi Dana {evil}, ")
    assert sample.company in text
    assert "{" not in text.replace("{evil}", "")


def test_literal_braces_in_greeting_are_allowed(data: dict) -> None:
    data["greeting"] = "Hi {candidate_name}, press {{1}} to hear this again."
    assert parse_template(data).render_greeting("Ana") == "Hi Ana, press {1} to hear this again."


def test_fingerprint_stable_and_sensitive(sample: InterviewTemplate, data: dict) -> None:
    fp = sample.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert load_template_file(sample_template_path()).fingerprint() == fp
    # Key order of the input must not matter.
    reordered = dict(reversed(list(data.items())))
    assert parse_template(reordered).fingerprint() == fp
    # An int weight and the equal float weight are the same rubric.
    data["factors"][0]["weight"] = 3
    assert parse_template(data).fingerprint() == fp
    data["factors"][0]["weight"] = 4
    assert parse_template(data).fingerprint() != fp


def test_normalized_weights(sample: InterviewTemplate) -> None:
    weights = sample.normalized_weights()
    assert set(weights) == {f.name for f in sample.factors}
    assert math.isclose(sum(weights.values()), 1.0)
    assert weights["Communication clarity"] == pytest.approx(0.3)
    assert weights["Problem solving"] == pytest.approx(0.2)


def test_normalized_weights_huge_weights_do_not_overflow(data: dict) -> None:
    for factor in data["factors"]:
        factor["weight"] = 1e308
    weights = parse_template(data).normalized_weights()
    assert all(w == pytest.approx(0.25) for w in weights.values())


def test_defaults_applied() -> None:
    minimal = {
        "title": "T",
        "language": "KO",
        "greeting": "Hello {candidate_name}",
        "consent": "Recorded, AI. Say yes or press 1.",
        "closing": "Bye",
        "factors": [
            {
                "name": "Clarity",
                "weight": 1,
                "description": "d",
                "questions": ["q?"],
                "anchors": {"weak": "w", "adequate": "a", "strong": "s"},
            }
        ],
    }
    t = parse_template(minimal)
    assert (t.company, t.max_duration_s, t.inactivity_timeout_s, t.silence_reprompt_s) == ("", 900, 120, 8)
    assert t.language == "ko"
    assert t.factors[0].max_follow_ups == 1
    assert t.factors[0].weight == 1.0 and isinstance(t.factors[0].weight, float)
    assert t.normalized_weights() == {"Clarity": 1.0}


# --- validation errors: field path and source must be in str(err) ---


def test_unknown_top_level_field(data: dict) -> None:
    data["titel"] = "typo"
    err = expect_error(data, "titel")
    assert "unknown field" in str(err) and "'title'" in str(err)  # suggestion


def test_unknown_factor_field(data: dict) -> None:
    data["factors"][1]["maxFollowUps"] = 2
    expect_error(data, "factors[1].maxFollowUps")


def test_unknown_anchor_field(data: dict) -> None:
    data["factors"][2]["anchors"]["excellent"] = "wow"
    expect_error(data, "factors[2].anchors.excellent")


@pytest.mark.parametrize("weight", [-2, 0, 0.0, float("nan"), float("inf"), 10**400])
def test_non_positive_or_non_finite_weight(data: dict, weight: float) -> None:
    data["factors"][1]["weight"] = weight
    err = expect_error(data, "factors[1].weight")
    assert "positive number" in str(err)


def test_negative_weight_message_matches_documented_format(data: dict) -> None:
    data["factors"][1]["weight"] = -2
    err = expect_error(data, "factors[1].weight")
    assert str(err) == "call_center.toml: factors[1].weight: must be a positive number, got -2"


@pytest.mark.parametrize("weight", [True, False, "3", None])
def test_wrong_type_weight(data: dict, weight: object) -> None:
    data["factors"][0]["weight"] = weight
    err = expect_error(data, "factors[0].weight")
    assert repr(weight) in str(err)


def test_missing_anchors(data: dict) -> None:
    del data["factors"][3]["anchors"]
    expect_error(data, "factors[3].anchors")


def test_missing_one_anchor(data: dict) -> None:
    del data["factors"][0]["anchors"]["adequate"]
    expect_error(data, "factors[0].anchors.adequate")


def test_empty_anchor(data: dict) -> None:
    data["factors"][0]["anchors"]["strong"] = "   "
    expect_error(data, "factors[0].anchors.strong")


@pytest.mark.parametrize("count", [0, 4])
def test_question_count(data: dict, count: int) -> None:
    data["factors"][0]["questions"] = [f"Question {i}?" for i in range(count)]
    err = expect_error(data, "factors[0].questions")
    assert f"got {count}" in str(err)


def test_empty_question(data: dict) -> None:
    data["factors"][1]["questions"] = ["Fine?", ""]
    expect_error(data, "factors[1].questions[1]")


def test_duplicate_factor_names_case_insensitive(data: dict) -> None:
    data["factors"][2]["name"] = "customer EMPATHY"
    err = expect_error(data, "factors[2].name")
    assert "duplicate" in str(err) and "factors[1].name" in str(err)


def test_unknown_placeholder_in_greeting(data: dict) -> None:
    data["greeting"] = "Hi {candidate_name}, calling about the {position} role."
    err = expect_error(data, "greeting")
    assert "{position}" in str(err)


@pytest.mark.parametrize("greeting", ["Hi {}", "Hi {0}", "Hi {company!r}", "Hi {company:>9}", "Hi {candidate_name"])
def test_bad_placeholder_syntax_in_greeting(data: dict, greeting: str) -> None:
    data["greeting"] = greeting
    expect_error(data, "greeting")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_duration_s", 59),
        ("max_duration_s", 3601),
        ("max_duration_s", 900.0),
        ("inactivity_timeout_s", True),
        ("silence_reprompt_s", 1),
        ("language", "english"),
        ("language", "en_US"),
        ("title", ""),
        ("consent", 42),
        ("closing", "x" * 2001),
        ("factors", []),
        ("factors", "Communication clarity"),
    ],
)
def test_top_level_value_errors(data: dict, field: str, value: object) -> None:
    data[field] = value
    expect_error(data, field)


def test_too_many_factors(data: dict) -> None:
    base = data["factors"][0]
    data["factors"] = [dict(base, name=f"Factor {i}") for i in range(11)]
    expect_error(data, "factors")


@pytest.mark.parametrize(("value", "ok"), [(0, True), (3, True), (4, False), (-1, False), (True, False)])
def test_max_follow_ups_range(data: dict, value: object, ok: bool) -> None:
    data["factors"][0]["max_follow_ups"] = value
    if ok:
        assert parse_template(data).factors[0].max_follow_ups == value
    else:
        expect_error(data, "factors[0].max_follow_ups")


def test_missing_required_field(data: dict) -> None:
    del data["consent"]
    err = expect_error(data, "consent")
    assert "required" in str(err)


def test_factor_not_a_table(data: dict) -> None:
    data["factors"][1] = "Customer empathy"
    expect_error(data, "factors[1]")


def test_long_values_are_truncated_in_message(data: dict) -> None:
    data["factors"][0]["weight"] = "x" * 500
    err = expect_error(data, "factors[0].weight")
    assert len(str(err)) < 150 and "..." in str(err)


def test_api_source_and_no_source(data: dict) -> None:
    data["factors"][0]["weight"] = -1
    expect_error(data, "factors[0].weight", source="<api>")
    with pytest.raises(TemplateError) as info:
        parse_template(data)
    assert str(info.value) == "factors[0].weight: must be a positive number, got -1"
    assert isinstance(info.value, ValueError)


def test_not_a_mapping() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(["not", "a", "dict"], source=SOURCE)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{SOURCE}: must be a table/object")


# --- files and TOML text ---


def test_load_file_error_names_path_and_field(tmp_path: Path) -> None:
    text = sample_template_path().read_text(encoding="utf-8").replace("weight = 3\n", "weight = -2\n", 1)
    path = tmp_path / "call_center.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    assert info.value.source == str(path)
    assert str(info.value) == f"{path}: factors[0].weight: must be a positive number, got -2"


def test_load_file_round_trip_via_tmp_copy(tmp_path: Path, sample: InterviewTemplate) -> None:
    path = tmp_path / "copy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + sample_template_path().read_bytes())  # with a BOM
    assert load_template_file(str(path)) == sample


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('title = "ok"\nlanguage = en\n', encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    err = info.value
    assert err.source == str(path) and err.field is None
    assert str(err).startswith(f"{path}: invalid TOML: ")
    assert "line 2" in str(err) and "column" in str(err)


def test_toml_syntax_error_from_text() -> None:
    with pytest.raises(TemplateError) as info:
        load_template_text("[[factors]\n", source="inline.toml")
    assert str(info.value).startswith("inline.toml: invalid TOML:") and "line 1" in str(info.value)


def test_unknown_field_in_toml_text(sample: InterviewTemplate) -> None:
    text = sample_template_path().read_text(encoding="utf-8") + '\n[factors.anchors.extra]\nx = "y"\n'
    # The extra table lands in the last factor's anchors.
    with pytest.raises(TemplateError) as info:
        load_template_text(text, source="x.toml")
    assert str(info.value).startswith("x.toml: factors[3].anchors.extra: unknown field")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value) and "cannot read" in str(info.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)


def test_company_placeholder_needs_a_company() -> None:
    data = load_template_file(sample_template_path()).to_dict()
    data["company"] = ""
    with pytest.raises(TemplateError) as caught:
        parse_template(data, source="<api>")
    assert caught.value.field == "greeting" and "{company}" in str(caught.value)
