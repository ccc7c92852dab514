"""Candidates from a CSV file: a header row, then one candidate per row. The API's bulk upload and the CLI
both use it; every row is validated by models.validation.clean_candidate, like a single API request.

Problems with the whole file (no header, no name column, NUL bytes, bad quoting, too many rows...) raise
ValidationError(field="file"); problems with one row become a CsvRowError and the other rows still count."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Callable

from models.db import immediate
from models.store import SessionStore
from models.validation import MAX_METADATA_KEYS, ValidationError, clean_candidate

MAX_ROWS = 10_000
MAX_METADATA_KEY_CHARS = 64  # what check_metadata allows
TAG_SEPARATORS = re.compile(r"[;|]")
LINE_BREAKS = re.compile(r"\r\n?")
# Header names, lower-cased without spaces, '_' or '-', of the candidate fields. Other columns are metadata.
_FIELD_HEADERS = {"name": "name", "phone": "phone", "email": "email", "timezone": "timezone", "tz": "timezone",
                  "externalid": "external_id", "tags": "tags"}
_NO_KEY = ("needs a phone or an external_id, so that uploading the file again updates this candidate "
           "instead of adding a duplicate")


@dataclass(frozen=True)
class CsvRowError:
    line: int  # 1-based line of the file where the row starts
    field: str | None  # the column as the file's header names it
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[CsvRowError] = field(default_factory=list)
    candidate_ids: list[str] = field(default_factory=list)  # of the valid rows, in file order


@dataclass(frozen=True)
class _Column:
    header: str  # as written in the file
    field: str | None  # candidate field; None for a metadata column


def decode_csv(raw: bytes) -> str:
    """The uploaded bytes as text: UTF-8, with or without a BOM."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the file is not UTF-8 text (undecodable byte at offset {exc.start}); "
                              "save it as 'CSV UTF-8'", "file") from None


def _header_key(header: str) -> str:
    return re.sub(r"[\s_-]", "", header.lower())


def _read_header(cells: list[str], line: int) -> list[_Column]:
    columns: list[_Column] = []
    seen: dict[str, str] = {}  # candidate field, or normalized metadata name -> header as written
    for cell in cells:
        header = cell.strip()
        key = _header_key(header)
        column = _Column(header, _FIELD_HEADERS.get(key))
        columns.append(column)
        if not header:
            continue
        if (column.field or key) in seen:
            raise ValidationError(f"line {line}: the header names the column {header!r} twice "
                                  f"(also as {seen[column.field or key]!r})", "file")
        seen[column.field or key] = header
        if not column.field and len(header) > MAX_METADATA_KEY_CHARS:
            raise ValidationError(f"line {line}: the column name {header[:20]!r}... is longer than "
                                  f"{MAX_METADATA_KEY_CHARS} characters", "file")
    if not any(column.field == "name" for column in columns):
        raise ValidationError(f"line {line}: the header row has no 'name' column; the first row must name the "
                              "columns, e.g. name,phone,email,timezone,external_id,tags", "file")
    metadata_columns = [c for c in columns if c.header and c.field is None]
    if len(metadata_columns) > MAX_METADATA_KEYS:
        raise ValidationError(f"line {line}: {len(metadata_columns)} extra (metadata) columns; at most "
                              f"{MAX_METADATA_KEYS} are allowed", "file")
    return columns


def _row_fields(cells: list[str], columns: list[_Column]) -> dict:
    if any(cell.strip() for cell in cells[len(columns):]):  # empty ones are just trailing commas
        raise ValidationError(f"has {len(cells)} cells but the header has {len(columns)} columns; "
                              "quote values that contain commas")
    fields: dict = {}
    metadata: dict[str, str] = {}
    for column, raw in zip(columns, cells):
        value = LINE_BREAKS.sub("\n", raw.strip())  # the same file saved on Windows gives the same values
        if not value:
            continue
        if not column.header:
            raise ValidationError(f"has a value in a column without a header name: {value[:40]!r}")
        if column.field == "tags":
            fields["tags"] = [tag.strip() for tag in TAG_SEPARATORS.split(value) if tag.strip()]
        elif column.field:
            fields[column.field] = value
        else:
            metadata[column.header] = value
    return {**fields, "metadata": metadata}


def parse_candidate_csv(text: str, default_timezone: str = "UTC") -> tuple[list[tuple[int, dict]], list[CsvRowError]]:
    """The valid rows as (line, clean_candidate fields) and the errors of the others, both in file order."""
    if "\x00" in text:
        raise ValidationError("the file contains NUL bytes; it is not a CSV text file", "file")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    columns: list[_Column] | None = None
    header_of: dict[str, str] = {}
    rows: list[tuple[int, dict]] = []
    errors: list[CsvRowError] = []
    end_of_last_row = 0
    try:
        for cells in reader:
            line, end_of_last_row = end_of_last_row + 1, reader.line_num  # a quoted value may span lines
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = _read_header(cells, line)
                header_of = {c.field: c.header for c in columns if c.field}
                continue
            if len(rows) + len(errors) == MAX_ROWS:
                raise ValidationError(f"the file has more than {MAX_ROWS:,} rows; split it into smaller files",
                                      "file")
            try:
                fields = clean_candidate(_row_fields(cells, columns), default_timezone=default_timezone)
                if not fields["phone"] and not fields["external_id"]:
                    raise ValidationError(_NO_KEY)
                rows.append((line, fields))
            except ValidationError as exc:
                errors.append(CsvRowError(line, header_of.get(exc.field, exc.field), exc.message))
    except csv.Error as exc:
        line = end_of_last_row + 1  # where the unreadable row starts
        problem = "a quoted value is never closed" if "end of data" in str(exc) else f"malformed CSV ({exc})"
        raise ValidationError(f"line {line}: {problem}; quote values that contain commas, quotes or line breaks, "
                              "and double the quotes inside them", "file") from None
    if columns is None:
        raise ValidationError("the file is empty; the first row must be a header such as name,phone,email", "file")
    return rows, errors


def import_candidates(store: SessionStore, text: str, default_timezone: str = "UTC",
                      progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Parse the CSV and create or update (store.upsert_candidate) the candidate of each valid row, so
    uploading the same file again creates nothing new. progress(done, total) is called after each row."""
    rows, errors = parse_candidate_csv(text, default_timezone)
    result = ImportResult(failed=len(errors), errors=errors)
    # One transaction: one disk sync for the file instead of one per row, and readers never see half of it.
    with immediate(store.db):
        for done, (_, fields) in enumerate(rows, 1):
            candidate, created = store.upsert_candidate(fields)
            if created:
                result.created += 1
            else:
                result.updated += 1
            result.candidate_ids.append(candidate.id)
            if progress:
                progress(done, len(rows))
    return result
