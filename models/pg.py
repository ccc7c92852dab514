"""The store on PostgreSQL: a connection that answers the small part of sqlite-utils' interface the store
uses (`query`, `execute`, `db[table].insert/update/upsert/create/add_column/create_index`, `table_names`),
so the store's code and its migrations are the same on both databases.

The store's SQL is written for SQLite; `translate` turns it into PostgreSQL's: `?` placeholders,
`[name]` quoting, `IS NOT ?`, `json_each`, case-insensitive `LIKE` and the few PRAGMAs the store says.
Every table without an integer `id` gets a `rowid` identity column, as SQLite's rowid (insertion order,
the store's tie-break of equal timestamps), left out of `SELECT *` results and column lists as SQLite
does.

Write transactions (`models.db.immediate`) take one transaction-scoped advisory lock, so writers queue
exactly as they do on SQLite's write lock: every read-then-write in the store stays correct across
processes and machines. Claims of shared work also say `FOR UPDATE SKIP LOCKED`; under the one lock it
never has to skip, but it keeps them right if a claim is ever moved out from under it.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterable, Iterator

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row


# The store's write lock (pg_advisory_xact_lock key): "phonescreen" in ASCII, truncated to 63 bits.
WRITE_LOCK_KEY = 0x70686F6E65736372
ROWID = "rowid"  # SQLite's implicit insertion-order column, made explicit
_TYPES = {str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION", bool: "BIGINT", bytes: "BYTEA"}
# PRAGMAs the store says, and what they mean here (None: nothing to do on PostgreSQL).
_PRAGMAS = {
    "PRAGMA defer_foreign_keys = ON": "SET CONSTRAINTS ALL DEFERRED",  # foreign keys are DEFERRABLE
    "PRAGMA secure_delete = ON": None,  # deleted rows are vacuumed away; nothing to zero in a file
    "PRAGMA secure_delete = OFF": None,
    "PRAGMA wal_checkpoint(TRUNCATE)": None,
}
_WORD_REWRITES = [
    (re.compile(r"\bIS NOT %s", re.I), "IS DISTINCT FROM %s"),
    (re.compile(r"\bjson_each\(([^()]+)\)", re.I), r"jsonb_array_elements_text((\1)::jsonb) AS json_each(value)"),
    (re.compile(r"\bLIKE\b"), "ILIKE"),  # SQLite's LIKE ignores ASCII case
]


def translate(statement: str) -> str:
    """SQLite SQL as the store writes it -> PostgreSQL SQL with psycopg placeholders."""
    out, i, n = [], 0, len(statement)
    while i < n:
        char = statement[i]
        if char in "'\"":  # a string literal or quoted name: copied as is ('%' escaped for psycopg)
            end = statement.index(char, i + 1)
            while end + 1 < n and statement[end + 1] == char:  # '' inside a literal
                end = statement.index(char, end + 2)
            out.append(statement[i:end + 1].replace("%", "%%"))
            i = end + 1
            continue
        if char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        elif char == "[":
            end = statement.index("]", i)
            out.append('"' + statement[i + 1:end] + '"')
            i = end
        else:
            out.append(char)
        i += 1
    text = "".join(out)
    for pattern, replacement in _WORD_REWRITES:
        text = pattern.sub(replacement, text)
    return text


class PgDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, busy_timeout_ms: int = 10_000, schema_table: str):
        self.url = url
        self.schema_table = schema_table  # the schema version's own table: not one of the store's tables
        # autocommit: no implicit transactions; models.db.immediate says BEGIN, as on SQLite.
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        # A writer waits for the write lock at most as long as a SQLite writer waits for its lock.
        self.conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
        self._columns: dict[str, dict[str, str]] = {}
        self._keys: dict[str, list[str]] = {}

    def close(self) -> None:
        self.conn.close()

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[PgDatabase]:
        if self.in_transaction:
            yield self
            return
        self.conn.execute("BEGIN")
        try:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK_KEY])
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def execute(self, statement: str, params: Iterable[Any] = ()) -> psycopg.Cursor:
        statement = statement.strip()
        if statement.upper().startswith("PRAGMA"):
            if statement not in _PRAGMAS:
                raise ValueError(f"no PostgreSQL meaning for {statement!r}")
            statement = _PRAGMAS[statement] or "SELECT 1"
        return self.conn.execute(translate(statement), list(params))

    def query(self, statement: str, params: Iterable[Any] = ()) -> Iterator[dict]:
        cursor = self.conn.cursor(row_factory=dict_row)
        cursor.execute(translate(statement), list(params))
        for row in cursor.fetchall():
            row.pop(ROWID, None)
            yield row

    def table_names(self) -> list[str]:
        return [r["table_name"] for r in self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' AND table_name != ? ORDER BY table_name", [self.schema_table])]

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def columns(self, table: str) -> dict[str, str]:
        if table not in self._columns:
            self._columns[table] = {r["column_name"]: r["data_type"] for r in self.query(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? AND column_name != ? ORDER BY ordinal_position", [table, ROWID])}
        return self._columns[table]

    def primary_key(self, table: str) -> list[str]:
        if table not in self._keys:
            self._keys[table] = [r["attname"] for r in self.query(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = ?::regclass AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)", [table])]
        return self._keys[table]


class _Inserted:
    def __init__(self, last_pk: Any):
        self.last_pk = last_pk


class PgTable:
    """db[table]: the sqlite-utils table methods the store and its migrations call."""

    def __init__(self, db: PgDatabase, name: str):
        self.db, self.name = db, name

    @property
    def columns_dict(self) -> dict[str, str]:
        return self.db.columns(self.name)

    @property
    def count(self) -> int:
        return self.db.conn.execute(pgsql.SQL("SELECT COUNT(*) FROM {}").format(pgsql.Identifier(self.name))
                                    ).fetchone()[0]

    def insert(self, record: dict[str, Any]) -> _Inserted:
        keys = self.db.primary_key(self.name)
        statement = pgsql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            pgsql.Identifier(self.name), pgsql.SQL(", ").join(map(pgsql.Identifier, record)),
            pgsql.SQL(", ").join(pgsql.Placeholder() * len(record)), pgsql.SQL(", ").join(map(pgsql.Identifier, keys)))
        row = self.db.conn.execute(statement, list(record.values())).fetchone()
        return _Inserted(row[0] if len(keys) == 1 else tuple(row))

    def update(self, pk: Any, changes: dict[str, Any]) -> PgTable:
        keys = self.db.primary_key(self.name)
        values = list(pk) if isinstance(pk, (tuple, list)) else [pk]
        statement = pgsql.SQL("UPDATE {} SET {} WHERE {}").format(
            pgsql.Identifier(self.name),
            pgsql.SQL(", ").join(pgsql.SQL("{} = %s").format(pgsql.Identifier(c)) for c in changes),
            pgsql.SQL(" AND ").join(pgsql.SQL("{} = %s").format(pgsql.Identifier(k)) for k in keys))
        self.db.conn.execute(statement, [*changes.values(), *values])
        return self

    def upsert(self, record: dict[str, Any], pk: str | tuple[str, ...]) -> PgTable:
        keys = [pk] if isinstance(pk, str) else list(pk)
        rest = [c for c in record if c not in keys]
        statement = pgsql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
            pgsql.Identifier(self.name), pgsql.SQL(", ").join(map(pgsql.Identifier, record)),
            pgsql.SQL(", ").join(pgsql.Placeholder() * len(record)), pgsql.SQL(", ").join(map(pgsql.Identifier, keys)),
            pgsql.SQL(", ").join(pgsql.SQL("{0} = EXCLUDED.{0}").format(pgsql.Identifier(c)) for c in rest))
        self.db.conn.execute(statement, list(record.values()))
        return self

    # -- schema (migrations) ---------------------------------------------------------------------
    def create(self, columns: dict[str, type], pk: str | tuple[str, ...] | None = None,
               foreign_keys: Iterable[tuple[str, str, str]] = (), not_null: Iterable[str] = ()) -> PgTable:
        """As sqlite-utils creates it: an integer `id` primary key numbers itself; foreign keys are
        DEFERRABLE (checked per statement, or at commit after PRAGMA defer_foreign_keys)."""
        keys = [pk] if isinstance(pk, str) else list(pk or [])
        required = set(not_null)
        parts = []
        for column, kind in columns.items():
            if keys == [column] and kind is int:
                parts.append(pgsql.SQL("{} BIGINT GENERATED BY DEFAULT AS IDENTITY").format(pgsql.Identifier(column)))
                continue
            parts.append(pgsql.SQL("{} {}{}").format(pgsql.Identifier(column), pgsql.SQL(_TYPES[kind]),
                                                     pgsql.SQL(" NOT NULL" if column in required else "")))
        if keys != ["id"] or columns.get("id") is not int:
            parts.append(pgsql.SQL("{} BIGINT GENERATED BY DEFAULT AS IDENTITY").format(pgsql.Identifier(ROWID)))
        if keys:
            parts.append(pgsql.SQL("PRIMARY KEY ({})").format(pgsql.SQL(", ").join(map(pgsql.Identifier, keys))))
        for column, other, other_column in foreign_keys:
            parts.append(pgsql.SQL("FOREIGN KEY ({}) REFERENCES {} ({}) DEFERRABLE INITIALLY IMMEDIATE").format(
                pgsql.Identifier(column), pgsql.Identifier(other), pgsql.Identifier(other_column)))
        self.db.conn.execute(pgsql.SQL("CREATE TABLE {} ({})").format(pgsql.Identifier(self.name),
                                                                      pgsql.SQL(", ").join(parts)))
        self.db._columns.pop(self.name, None)
        return self

    def add_column(self, name: str, kind: type, not_null_default: Any = None) -> PgTable:
        clause = pgsql.SQL("")
        if not_null_default is not None:
            clause = pgsql.SQL(" NOT NULL DEFAULT {}").format(pgsql.Literal(not_null_default))
        self.db.conn.execute(pgsql.SQL("ALTER TABLE {} ADD COLUMN {} {}{}").format(
            pgsql.Identifier(self.name), pgsql.Identifier(name), pgsql.SQL(_TYPES[kind]), clause))
        self.db._columns.pop(self.name, None)
        return self

    def create_index(self, columns: list[str], unique: bool = False, index_name: str | None = None) -> PgTable:
        name = index_name or f"idx_{self.name}_{'_'.join(columns)}"  # sqlite-utils' naming
        self.db.conn.execute(pgsql.SQL("CREATE {}INDEX {} ON {} ({})").format(
            pgsql.SQL("UNIQUE " if unique else ""), pgsql.Identifier(name), pgsql.Identifier(self.name),
            pgsql.SQL(", ").join(map(pgsql.Identifier, columns))))
        return self
