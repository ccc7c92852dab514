"""`phonescreen positions ...` and `candidates ...`: loading templates and candidate lists from files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from config.settings import Settings
from config.templates import load_template_file
from models.candidate_csv import decode_csv, import_candidates
from models.records import Candidate, Position
from models.validation import ValidationError
from server.cli.output import CliError, all_pages, open_store, print_records, when


def positions_import(args: argparse.Namespace, settings: Settings) -> int:
    template = load_template_file(args.file)  # a TemplateError names file and field
    with open_store(settings) as store:
        position = store.create_position(template)
    print(f"created position {position.id}: {position.title} ({len(position.factors)} factors)")
    return 0


def _position_row(position: Position) -> dict[str, object]:
    return {"id": position.id, "title": position.title, "language": position.template.language,
            "version": position.version, "factors": len(position.factors), "created": when(position.created_at)}


def positions_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        print_records(all_pages(store.list_positions), args.json, _position_row)
    return 0


def candidates_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = decode_csv(Path(args.file).read_bytes())
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise CliError(f"{args.file}: {exc.message}") from None
    # disable=None: the bar is drawn only when stderr is a terminal, so logs and pipes stay clean.
    with open_store(settings) as store, tqdm(unit="row", file=sys.stderr, leave=False,
                                             disable=True if args.quiet else None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = import_candidates(store, text, settings.interviews.default_timezone, progress=progress)
        except ValidationError as exc:  # the file as a whole is unusable (no header, no name column...)
            raise CliError(f"{args.file}: {exc.message}") from None
    print(f"created {result.created}, updated {result.updated}, failed {result.failed}")
    for error in result.errors:
        print(": ".join(part for part in (f"line {error.line}", error.field, error.message) if part))
    return 1 if result.failed and not (result.created or result.updated) else 0


def _candidate_row(candidate: Candidate) -> dict[str, object]:
    return {"id": candidate.id, "name": candidate.name, "phone": candidate.phone, "email": candidate.email,
            "timezone": candidate.timezone, "external id": candidate.external_id, "tags": ",".join(candidate.tags)}


def candidates_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        print_records(all_pages(store.list_candidates), args.json, _candidate_row)
    return 0
