"""Opening the store's database the way every process must. SQLite (the embedded default): WAL, foreign
keys, a busy timeout, explicit IMMEDIATE transactions (so concurrent writers queue on the lock instead of
failing on upgrade). PostgreSQL (`store.url = "postgresql://..."`, models/pg.py): the same interface,
writers queue on one advisory lock."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

import sqlite_utils

if TYPE_CHECKING:  # psycopg is imported only by a process that opens a PostgreSQL store (~0.1 s saved)
    from models.pg import PgDatabase

Clock = Callable[[], datetime]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text comparison in SQL is time order


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def fmt_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Accepts our own format and any ISO 8601 with an offset (API input); naive times are UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def token_hash(token: str) -> str:
    """How a secret token (join link, API key, stream token) is kept: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_owner() -> str:
    """A process's lease owner id (campaign attempts, work leases): unique per process start, readable in
    the store, and naming the machine when several share one."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


Database = Union[sqlite_utils.Database, "PgDatabase"]
SQLITE_PREFIX = "sqlite:///"
SCHEMA_TABLE = "phonescreen_schema"  # PostgreSQL's schema version (SQLite keeps it in PRAGMA user_version)


def database_errors() -> tuple[type[Exception], ...]:
    """What a failed statement raises, on either database (`except database_errors():`). No psycopg
    loaded means no PostgreSQL store in this process, so nothing of its to catch."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg else (sqlite3.Error,)


def integrity_errors() -> tuple[type[Exception], ...]:
    """A unique or foreign key refused the write, on either database."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.IntegrityError, psycopg.IntegrityError) if psycopg else (sqlite3.IntegrityError,)


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """A store URL without its password, for messages and logs."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def is_postgres(db: Database) -> bool:
    return getattr(db, "dialect", None) == "postgresql"


def sqlite_path(target: str | Path) -> str | None:
    """The SQLite file a store target names (a path or sqlite:///path), or None for a PostgreSQL URL."""
    target = str(target)
    if is_url(target):
        return None
    return target[len(SQLITE_PREFIX):] if target.startswith(SQLITE_PREFIX) else target


def open_database(target: str | Path, busy_timeout_ms: int = 10_000) -> Database:
    """`target`: a SQLite file path, `sqlite:///path` or `postgresql://user:pass@host:port/db`."""
    path = sqlite_path(target)
    if path is None:
        from models.pg import PgDatabase
        return PgDatabase(str(target), busy_timeout_ms=busy_timeout_ms, schema_table=SCHEMA_TABLE)
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; we say BEGIN IMMEDIATE ourselves.
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # a committed turn survives a power cut, not just a crash
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front. Nested use joins the outer one."""
    if is_postgres(db):
        with db.write_transaction():
            yield db
        return
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextlib.contextmanager
def savepoint(db: Database, name: str = "attempt") -> Iterator[None]:
    """Inside a write transaction, a statement that may fail (a unique key) without ending the transaction:
    PostgreSQL aborts the whole transaction on an error unless it is rolled back to a savepoint."""
    db.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        db.execute(f"ROLLBACK TO SAVEPOINT {name}")
        db.execute(f"RELEASE SAVEPOINT {name}")
        raise
    db.execute(f"RELEASE SAVEPOINT {name}")
