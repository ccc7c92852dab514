"""What the `phonescreen` commands share: opening the store, the error they exit with, and printing
records as a text table or as JSON (--json, the same camelCase shapes the REST API returns)."""
from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator, Sequence

from config.settings import Settings
from models.db import database_errors, redact
from models.store import SessionStore


class CliError(Exception):
    """Stops a command with a one-line message on stderr and this exit status."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def open_store(settings: Settings, *, auto_migrate: bool = True) -> Iterator[SessionStore]:
    try:
        store = SessionStore(settings.store.target, busy_timeout_ms=settings.store.busy_timeout_ms,
                             auto_migrate=auto_migrate)
    except (*database_errors(), RuntimeError) as exc:  # unreadable file or database, or a newer schema
        raise CliError(f"cannot open the store {redact(settings.store.target)}: {exc}") from None
    try:
        yield store
    finally:
        store.close()


def all_pages(fetch: Callable[..., tuple[list[Any], int]]) -> list[Any]:
    """Every item of a paged store listing (store.list_positions, store.list_candidates...)."""
    items: list[Any] = []
    page = 1
    while True:
        batch, total = fetch(page=page, page_size=100)
        items.extend(batch)
        if not batch or len(items) >= total:
            return items
        page += 1


def when(timestamp: str | None) -> str:
    """A stored UTC timestamp, to the minute, for tables."""
    return timestamp[:16].replace("T", " ") if timestamp else "-"


def print_table(rows: Sequence[dict[str, Any]], empty: str = "(none)") -> None:
    if not rows:
        print(empty)
        return
    columns = list(rows[0])
    cells = [[str(row[c]) if row[c] not in (None, "") else "-" for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


def print_records(records: Sequence[Any], as_json: bool, to_row: Callable[[Any], dict[str, Any]]) -> None:
    if as_json:
        from server.http import camelize  # loads aiohttp: only when JSON is asked for (see cli/admin.py)

        print(json.dumps(camelize(list(records)), indent=2, ensure_ascii=False))
    else:
        print_table([to_row(r) for r in records])
