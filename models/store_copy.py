"""`phonescreen db migrate-to URL`: copy an existing store (a SQLite file) into another, empty one (a
PostgreSQL database) with every row and id as they were, in one transaction: a failure leaves the target
as empty as it was, and the source is only read."""
from __future__ import annotations

from models.db import immediate, is_postgres
from models.schema import schema_version
from models.store import Conflict, SessionStore

BATCH = 1000


def copy_store(source: SessionStore, target: SessionStore) -> dict[str, int]:
    """Copy every table of `source` into `target` (both migrated to the same schema); returns the rows
    copied per table. Refused (Conflict) if the schemas differ or the target holds any row."""
    if schema_version(source.db) != schema_version(target.db):
        raise Conflict(f"the schemas differ: source {schema_version(source.db)}, target {schema_version(target.db)}")
    tables = sorted(source.db.table_names())
    copied: dict[str, int] = {}
    with immediate(target.db):
        full = [t for t in target.db.table_names() if target.db[t].count]
        if full:
            raise Conflict(f"the target store is not empty ({', '.join(full)}); copy into a new database")
        target.db.execute("PRAGMA defer_foreign_keys = ON")  # tables in any order; keys checked at commit
        source.db.execute("BEGIN")  # one read snapshot of the source for the whole copy
        try:
            for table in tables:
                copied[table] = _copy_table(source, target, table)
        finally:
            source.db.execute("ROLLBACK")
        if is_postgres(target.db):
            _restart_identities(target)
    return copied


def _copy_table(source: SessionStore, target: SessionStore, table: str) -> int:
    columns = [c for c in source.db[table].columns_dict if c in target.db[table].columns_dict]
    names = ", ".join(f'"{c}"' for c in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    order = "" if is_postgres(source.db) else " ORDER BY rowid"  # SQLite's insertion order is kept
    rows = source.db.execute(f'SELECT {names} FROM "{table}"{order}')
    count = 0
    while batch := rows.fetchmany(BATCH):
        if is_postgres(target.db):
            with target.db.conn.cursor() as cursor:
                cursor.executemany(insert.replace("?", "%s"), batch)
        else:
            target.db.conn.executemany(insert, batch)
        count += len(batch)
    return count


def _restart_identities(target: SessionStore) -> None:
    """Numbered tables (events, turns) go on after the highest id copied."""
    for row in list(target.db.query(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND column_name = 'id' AND is_identity = 'YES'")):
        table = row["table_name"]
        target.db.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                          f"COALESCE((SELECT MAX(id) FROM \"{table}\"), 0) + 1, false)")
