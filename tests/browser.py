"""Driving Debian's Chromium (installed by ./run, no browser download) with Playwright for the page tests.

`chromium(tmp_path, fake_audio=...)` starts a headless Chromium with a fresh profile whose microphone is
the given WAV file (Chromium loops it) and whose permission prompts are answered yes. Screenshots go to
test-artifacts/ at the repo root.
"""
from __future__ import annotations

import contextlib
import wave
from pathlib import Path
from typing import AsyncIterator

import numpy as np

from requirements import require

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BASE_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def require_chromium() -> None:
    require(CHROMIUM.exists(), f"Debian's chromium at {CHROMIUM}", "./run installs the apt package chromium")


@contextlib.asynccontextmanager
async def chromium(profile_dir: Path, *, fake_audio: Path | None = None) -> AsyncIterator:
    """A browser context (Playwright BrowserContext) on a fresh user-data dir."""
    require_chromium()
    from playwright.async_api import async_playwright
    args = list(BASE_ARGS)
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    profile_dir.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=args,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            await context.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    """Mono PCM16 WAV, the format Chromium's fake microphone reads."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return path


def short_template():
    """A one-factor interview, so page tests that run a whole call stay short. Re-prompts come late
    (silence_reprompt_s): a scripted microphone answering a little late must not be asked twice."""
    from config.templates import parse_template
    return parse_template({
        "title": "Support agent screen", "language": "en-US", "company": "Acme Support",
        "greeting": "Hi {candidate_name}, thanks for joining this short interview.",
        "consent": "It is recorded and run by an AI interviewer. Do you agree to continue?",
        "closing": "That's all my questions. Thank you for your time.",
        "max_duration_s": 300, "inactivity_timeout_s": 90, "silence_reprompt_s": 40,
        "factors": [{
            "name": "Customer empathy", "weight": 1, "max_follow_ups": 0,
            "description": "Recognizes how the caller feels and stays calm.",
            "questions": ["Tell me about a time you calmed down an upset customer."],
            "anchors": {"weak": "No example.", "adequate": "A real example, little on feelings.",
                        "strong": "A specific example that acknowledges the feeling and fixes the problem."}}]})


CONSENT = "Yes, that's fine, go ahead."
ANSWER = ("Last March a customer called about a double charge. I apologized, refunded forty dollars on the "
          "call and emailed him the next day.")
