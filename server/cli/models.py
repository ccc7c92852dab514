"""`phonescreen models check` and `models fetch`: which models this machine can use, and getting the ones no
package bundles."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from config.settings import LlmSettings, Settings
from ivr.llm.base import LlmUnavailable
from ivr.models_catalog import KNOWN_MODELS, ModelFetchError, ModelStatus, check_models, fetch_model, \
    looks_like_vosk_model
from server.cli.output import CliError, print_table

OLLAMA_TIMEOUT_S = 2.0  # per network wait: a check must not hang on an unroutable host


async def _ask_ollama(llm: LlmSettings) -> str:
    from ivr.llm.ollama_llm import OllamaChat  # the Ollama client loads only for this check

    chat = OllamaChat(dataclasses.replace(llm, timeout_s=OLLAMA_TIMEOUT_S))
    try:
        return await chat.check()
    finally:
        await chat.close()


def _ollama_status(status: ModelStatus, llm: LlmSettings) -> ModelStatus:
    """The catalog lists Ollama by its configured host; here the host is asked whether it serves the model."""
    try:
        return dataclasses.replace(status, available=True, detail=asyncio.run(_ask_ollama(llm)))
    except LlmUnavailable as exc:
        return dataclasses.replace(status, detail=str(exc))


def models_check(args: argparse.Namespace, settings: Settings) -> int:
    statuses = [_ollama_status(s, settings.llm) if s.engine == "ollama" else s for s in check_models(settings)]
    print_table([{"component": s.component, "engine": s.engine, "model": s.name,
                  "available": "yes" if s.available else "no", "path": s.path, "detail": s.detail}
                 for s in statuses])
    return 0


def models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    model = KNOWN_MODELS[args.name]
    dest = Path(args.dest or settings.models.dir)
    already = looks_like_vosk_model(dest / model.folder)
    # disable=None: the bar is drawn only when stderr is a terminal, so logs and pipes stay clean.
    with tqdm(desc=args.name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
              disable=None) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            folder = fetch_model(args.name, dest, base_url=args.base_url, progress=progress)
        except ModelFetchError as exc:
            raise CliError(str(exc), 1) from None
    folder = folder.resolve()
    print(f"{args.name}: {'already in' if already else 'fetched to'} {folder}")
    print("To use it, put these lines in the settings file:")
    print("[stt]")
    print(f"vosk_model_path = {json.dumps(str(folder))}")  # a JSON string is a valid TOML basic string
    print(f'vosk_language = "{model.language}"')
    return 0
