"""`phonescreen serve`, `db ...` and `keys ...`: running the server and administering its store.
aiohttp and the API modules are imported inside the commands that use them: they are half the start-up
time of every other command."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from config.settings import Settings
from models.db import database_errors, redact, sqlite_path
from models.records import ApiKey
from models.schema import LATEST, migrate, schema_version
from models.validation import check_text
from server.cli.output import CliError, open_store, print_records, print_table, when


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from dialer.twilio.settings_check import check_twilio_settings
    from server.app import make_app
    from server.voice import EnginesUnavailable, loads_at_start

    server = dataclasses.replace(settings.server, host=args.host or settings.server.host,
                                 port=args.port or settings.server.port)
    settings = dataclasses.replace(settings, server=server)
    check_twilio_settings(settings)  # a misconfigured Twilio account stops start-up, not the first call
    url = f"http://{server.host}:{server.port}"
    with open_store(settings) as store:  # opening the store applies pending migrations
        try:
            # run_app stops cleanly on SIGINT and SIGTERM; its `print` hook runs once the socket listens.
            # With Twilio enabled the voice engines are loaded and warmed before the socket listens.
            app = make_app(settings, store, role=args.role, load_voice=loads_at_start(settings))
            web.run_app(app, host=server.host, port=server.port,
                        print=lambda _banner: print(f"phonescreen listening on {url} (role {args.role})",
                                                    flush=True))
        except EnginesUnavailable as exc:
            raise CliError(str(exc), 1) from None
        except OSError as exc:
            raise CliError(f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}", 1) from None
    return 0


def db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, auto_migrate=False) as store:
        before = schema_version(store.db)
        try:
            applied = migrate(store.db)
        except RuntimeError as exc:  # the file was made by a newer phonescreen
            raise CliError(str(exc)) from None
        after = schema_version(store.db)
    change = f"{before} -> {after} ({applied} applied)" if applied else f"{after}, up to date"
    print(f"{redact(settings.store.target)}: schema version {change}")
    return 0


def db_status(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, auto_migrate=False) as store:
        version = schema_version(store.db)
        counts = [{"table": name, "rows": store.db[name].count} for name in sorted(store.db.table_names())]
    print(f"store: {redact(settings.store.target)}")
    print(f"schema version: {version} (this program: {LATEST})")
    print_table(counts, empty="(no tables: run `phonescreen db migrate`)")
    return 0


def db_backup(args: argparse.Namespace, settings: Settings) -> int:
    """SQLite's online backup: a consistent copy while the server keeps writing. Restore: stop the
    server, copy the file over store.path (removing its -wal and -shm files), `phonescreen db migrate`."""
    target = Path(args.path)
    if target.exists():
        raise CliError(f"{target} exists; name a new file")
    if not target.parent.is_dir():
        raise CliError(f"{target.parent} is not a folder")
    source = sqlite_path(settings.store.target)
    if source is None:
        raise CliError("the store is on PostgreSQL: back it up with pg_dump")
    if not Path(source).is_file():
        raise CliError(f"there is no store at {source}")
    with open_store(settings, auto_migrate=False) as store:
        verdict = store.backup(target)
        version = schema_version(store.db)
    if verdict != "ok":
        raise CliError(f"the copy in {target} failed its integrity check: {verdict}")
    print(f"backed up {source} to {target} ({target.stat().st_size} bytes, schema version {version}, "
          f"integrity ok)")
    return 0


def db_migrate_to(args: argparse.Namespace, settings: Settings) -> int:
    """Copy this store (the SQLite file) into a new, empty one, e.g. PostgreSQL; then set store.url to it."""
    from models.store import Conflict, SessionStore
    from models.store_copy import copy_store

    if args.url == settings.store.target:
        raise CliError("the target is this store itself; name another")
    with open_store(settings) as source:  # brought to the latest schema first, as `db migrate` would
        try:
            target = SessionStore(args.url, busy_timeout_ms=settings.store.busy_timeout_ms)
        except (*database_errors(), RuntimeError) as exc:
            raise CliError(f"cannot open the target store {redact(args.url)}: {exc}") from None
        try:
            copied = copy_store(source, target)
        except Conflict as exc:
            raise CliError(str(exc)) from None
        except database_errors() as exc:  # a row the target refused: nothing was copied
            raise CliError(f"the copy failed and was rolled back: {exc}") from None
        finally:
            target.close()
    print_table([{"table": t, "rows": n} for t, n in copied.items()])
    print(f"copied {sum(copied.values())} rows into {redact(args.url)}; set store.url to it and restart")
    return 0


def parse_scopes(text: str) -> list[str]:
    """`a:read,b:write`, or `all` for every scope."""
    from server.api.auth import SCOPES, check_scopes

    scopes = list(SCOPES) if text.strip() == "all" else [s.strip() for s in text.split(",") if s.strip()]
    try:
        return check_scopes(scopes)
    except ValueError as exc:
        raise CliError(f"--scopes: {exc}") from None


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    name = check_text(args.name, "--name", max_len=100)
    scopes = parse_scopes(args.scopes)
    with open_store(settings) as store:
        key, secret = store.create_api_key(name, scopes)
    print(f"API key: {secret}")
    print("Store it now: it is not shown again (only its hash is kept).")
    print(f"id:      {key.id}\nname:    {key.name}\nscopes:  {', '.join(key.scopes)}")
    return 0


def _key_row(key: ApiKey) -> dict[str, object]:
    return {"id": key.id, "name": key.name, "scopes": ",".join(key.scopes), "created": when(key.created_at),
            "last used": when(key.last_used_at), "revoked": when(key.revoked_at)}


def keys_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        print_records(store.list_api_keys(), args.json, _key_row)
    return 0


def keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        key = store.revoke_api_key(args.id)
    print(f"revoked {key.id} ({key.name}) at {when(key.revoked_at)}")
    return 0
