"""The LLM: one streaming chat interface. The interviewer only asks it to phrase; every decision comes
from transparent features (ivr/answers.py), so any backend, small or large, is safe to plug in."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import AsyncIterator, Literal, Sequence


class LlmUnavailable(RuntimeError):
    """The backend cannot answer (server down, model missing); the message says where and why."""


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


class ChatModel(ABC):
    name: str

    @abstractmethod
    def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 80, temperature: float = 0.0,
                    seed: int = 0, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        """Yield text pieces as they are generated. Must not block the event loop."""

    async def complete(self, messages: Sequence[ChatMessage], **options) -> str:
        return "".join([piece async for piece in self.stream_chat(messages, **options)])
