"""models/candidate_csv.py: parsing candidate CSV files and importing them idempotently into a real store."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.candidate_csv import (MAX_ROWS, CsvRowError, decode_csv, import_candidates, parse_candidate_csv)
from models.store import SessionStore
from models.validation import ValidationError

DATA = Path(__file__).parent / "data"
GOOD = (DATA / "candidates_good.csv").read_text(encoding="utf-8")


def test_the_good_sample_parses_every_row() -> None:
    rows, errors = parse_candidate_csv(GOOD, default_timezone="America/Chicago")
    assert errors == []
    assert [line for line, _ in rows] == [2, 3, 4, 5]
    ana = rows[0][1]
    assert ana == {"name": "Ana Ruiz", "phone": "+14155550100", "email": "ana.ruiz@example.org",
                   "timezone": "America/Los_Angeles", "external_id": "ats-1001", "metadata": {"Source": "job board"},
                   "tags": ["night-shift", "bilingual"]}
    tom, marcus, lee = (fields for _, fields in rows[1:])
    assert tom["name"] == "Okafor, Tom" and tom["tags"] == ["weekend", "night-shift"]
    assert tom["phone"] == "+442079460958"
    assert marcus["timezone"] == "America/Chicago" and marcus["metadata"] == {} and marcus["email"] is None
    assert lee["name"] == 'Lee "Kim" Park' and lee["phone"] == "+4930901820"
    assert lee["metadata"] == {"Source": "walk-in,\nsecond floor"} and lee["external_id"] is None


def test_bom_and_crlf_line_endings_change_nothing() -> None:
    windows = "\ufeff" + GOOD.replace("\n", "\r\n")
    assert parse_candidate_csv(windows) == parse_candidate_csv(GOOD)
    assert decode_csv(windows.encode("utf-8")) == windows.removeprefix("\ufeff")


@pytest.mark.parametrize("header", ["name,phone,tz,externalId,TAGS", "NAME, Phone ,time_zone,external id,tags",
                                    "Name,PHONE,TimeZone,external-id,Tags"])
def test_header_spellings(header: str) -> None:
    rows, errors = parse_candidate_csv(f"{header}\nAna,+14155550100,Asia/Tokyo,A-1,x|y\n")
    assert errors == []
    assert rows == [(2, {"name": "Ana", "phone": "+14155550100", "email": None, "timezone": "Asia/Tokyo",
                         "external_id": "A-1", "metadata": {}, "tags": ["x", "y"]})]


def test_bad_rows_are_reported_with_their_line_and_column_and_good_rows_kept() -> None:
    text = ("Name,Phone,Time Zone,External ID,Notes\n"
            "Ana Ruiz,+14155550100,,,\n"
            ",+14155550101,,,no name\n"
            "Tom,12345,,,\n"
            "\n"
            "\"Multi\nline\",+14155550102,Mars/Olympus,,\n"
            "Web Only,,,,\n"
            "Too Many,+14155550103,,,note,extra\n"
            "Marcus,,UTC,ats-9,,,\n")  # empty cells past the header are only trailing commas
    rows, errors = parse_candidate_csv(text)
    assert [(line, fields["name"]) for line, fields in rows] == [(2, "Ana Ruiz"), (10, "Marcus")]
    assert [(e.line, e.field) for e in errors] == [(3, "Name"), (4, "Phone"), (6, "Time Zone"), (8, None),
                                                  (9, None)]
    assert errors[0].message == "is required"
    assert "E.164" in errors[1].message and "IANA" in errors[2].message
    assert "phone or an external_id" in errors[3].message
    assert "6 cells but the header has 5 columns" in errors[4].message


def test_metadata_columns_and_their_limits() -> None:
    rows, errors = parse_candidate_csv("name,phone,Shift,Source,\nAna,+14155550100,night,,\n"
                                       "Tom,+14155550101,,,stray\n")
    assert rows == [(2, {"name": "Ana", "phone": "+14155550100", "email": None, "timezone": "UTC",
                         "external_id": None, "metadata": {"Shift": "night"}, "tags": []})]
    assert errors == [CsvRowError(3, None, "has a value in a column without a header name: 'stray'")]
    too_long = parse_candidate_csv(f"name,phone,notes\nAna,+14155550100,{'x' * 501}\n")[1]
    assert too_long[0].field == "metadata" and "500" in too_long[0].message
    tags = ";".join(f"t{n}" for n in range(21))
    assert parse_candidate_csv(f"name,phone,tags\nAna,+14155550100,{tags}\n")[1][0].field == "tags"


@pytest.mark.parametrize("text, words", [
    ("", "the file is empty"),
    ("\n \n", "the file is empty"),
    ("Ana Ruiz,+14155550100\n", "line 1: the header row has no 'name' column"),
    ("phone,email\n+14155550100,a@example.org\n", "no 'name' column"),
    ("name,phone,Phone\nAna,+1,+1\n", "names the column 'Phone' twice (also as 'phone')"),
    ("name,tz,timezone\n", "names the column 'timezone' twice"),
    ("name,phone\nAna,+14155550100\x00\n", "NUL bytes"),
    ('name,phone\nAna,+14155550100\n"Tom,+14155550101\nLee,+14155550102\n', "line 3: a quoted value is never closed"),
    ('name,phone\n"Ana" Ruiz,+14155550100\n', "line 2: malformed CSV"),
    ("name," + ",".join(f"m{n}" for n in range(51)) + "\n", "51 extra (metadata) columns"),
    ("name," + "x" * 65 + "\n", "longer than 64 characters"),
])
def test_files_that_cannot_be_read_as_a_whole(text: str, words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_candidate_csv(text)
    assert raised.value.field == "file" and words in raised.value.message


def test_the_broken_sample_names_the_line_of_the_unclosed_quote() -> None:
    with pytest.raises(ValidationError, match="line 3: a quoted value is never closed"):
        parse_candidate_csv((DATA / "candidates_broken.csv").read_text(encoding="utf-8"))


def test_at_most_max_rows() -> None:
    body = "".join(f"Person {n},+1415{n:07d}\n" for n in range(MAX_ROWS))
    rows, errors = parse_candidate_csv("name,phone\n" + body)
    assert len(rows) == MAX_ROWS and errors == []
    with pytest.raises(ValidationError, match="more than 10,000 rows"):
        parse_candidate_csv("name,phone\n" + body + "One Too Many,+14155550100\n")


def test_undecodable_bytes_are_a_file_error() -> None:
    with pytest.raises(ValidationError) as raised:
        decode_csv("name\nJosé\n".encode("latin-1"))
    assert raised.value.field == "file" and "not UTF-8" in raised.value.message
    assert decode_csv(b"\xef\xbb\xbfname\n") == "name\n"


def test_import_upserts_reports_progress_and_is_idempotent(store: SessionStore) -> None:
    calls: list[tuple[int, int]] = []
    first = import_candidates(store, GOOD, "America/Chicago", progress=lambda done, total: calls.append((done, total)))
    assert (first.created, first.updated, first.failed, first.errors) == (4, 0, 0, [])
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    stored = [store.get_candidate(cid) for cid in first.candidate_ids]
    assert [c.name for c in stored] == ["Ana Ruiz", "Okafor, Tom", "Marcus Webb", 'Lee "Kim" Park']
    assert stored[2].timezone == "America/Chicago" and stored[0].metadata == {"Source": "job board"}
    again = import_candidates(store, GOOD)
    assert (again.created, again.updated) == (0, 4) and again.candidate_ids == first.candidate_ids
    assert store.list_candidates()[1] == 4


def test_import_keeps_good_rows_when_others_fail(store: SessionStore) -> None:
    result = import_candidates(store, "name,phone\nAna,+14155550100\nTom,not-a-number\n")
    assert (result.created, result.updated, result.failed) == (1, 0, 1)
    assert result.errors == [CsvRowError(3, "phone", "must be an E.164 number: '+', country code, up to 15 digits")]
    assert [c.name for c in store.list_candidates()[0]] == ["Ana"]
    with pytest.raises(ValidationError):
        import_candidates(store, "no,header,here\n")
    assert store.list_candidates()[1] == 1
