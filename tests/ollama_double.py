"""A stand-in Ollama server on 127.0.0.1 speaking the documented wire format of the endpoints we use
(/api/chat streaming NDJSON or one JSON object, /api/tags, /api/version). It answers every chat with
fixed text pieces, records each request, and can be told to pause before each piece."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import Any, Sequence

from aiohttp import web

VERSION = "0.6.5"


class OllamaDouble:
    def __init__(self, models: Sequence[str] = ("llama3.2:3b",),
                 pieces: Sequence[str] = ("What ", "did ", "you ", "do ", "next?")):
        self.models = list(models)
        self.pieces = list(pieces)
        self.piece_delay_s = 0.0  # pause before each streamed piece (or before a whole answer)
        self.requests: list[dict[str, Any]] = []  # JSON bodies of the chat requests, in order
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> "OllamaDouble":
        app = web.Application()
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic_ns()
        body = await request.json()
        self.requests.append(body)
        model = body.get("model", "")
        if _with_tag(model) not in {_with_tag(name) for name in self.models}:
            return web.json_response({"error": f'model "{model}" not found, try pulling it first'}, status=404)
        if not body.get("stream", True):  # Ollama streams unless told not to
            await asyncio.sleep(self.piece_delay_s * len(self.pieces))
            return web.json_response(self._part(model, "".join(self.pieces)) | self._final_stats(started))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for piece in self.pieces:
            await asyncio.sleep(self.piece_delay_s)
            await response.write(json.dumps(self._part(model, piece)).encode() + b"\n")
        final = self._part(model, "") | self._final_stats(started)
        await response.write(json.dumps(final).encode() + b"\n")
        await response.write_eof()
        return response

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [_tag_entry(name) for name in self.models]})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    @staticmethod
    def _part(model: str, content: str) -> dict[str, Any]:
        return {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": content},
                "done": False}

    def _final_stats(self, started_ns: int) -> dict[str, Any]:
        total = time.monotonic_ns() - started_ns
        return {"done": True, "done_reason": "stop", "total_duration": total, "load_duration": 0,
                "prompt_eval_count": 12, "prompt_eval_duration": total // 4,
                "eval_count": len(self.pieces), "eval_duration": total // 2}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _with_tag(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


def _tag_entry(name: str) -> dict[str, Any]:
    family = name.split(":")[0]
    return {"name": name, "model": name, "modified_at": _now(), "size": 2_019_393_189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                        "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
