"""Chat backends for the judges that read a model's *text* (the paper's judges).

The `hf` judge reads next-token logits and never generates; the paper's judges parse what
the judge model writes (a digit anywhere in 5 tokens, a JSON object in 300), so they need a
model that completes a chat. A backend answers a batch of calls, each (messages, max_tokens),
with one `ChatReply` per call: the text, or None and the reason it failed. Backends:

  openai  an OpenAI-compatible endpoint through the `openai` judge's HTTP client (same retry
          policy, key read from the env var named by api_key_env, never stored)
  hf      a local model (dispo.models), greedy generation through dispo's engine, batched
  any callable `fn(messages, max_tokens) -> str` (tests use a scripted fake); raising
          `ChatError` marks that one call failed
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from dispo.core.errors import ConfigError


class ChatError(Exception):
    """One call failed (transport, server refusal); the judge turns it into an unscored Score."""


@dataclass(frozen=True)
class ChatCall:
    messages: tuple[tuple[str, str], ...]  # (role, content): hashable, so identical calls are asked once
    max_tokens: int

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class ChatReply:
    text: str | None
    reason: str | None = None


class ChatBackend:
    name = "chat"

    def complete(self, calls: list[ChatCall]) -> list[ChatReply]:
        raise NotImplementedError

    def model_id(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id()}


class CallableChat(ChatBackend):
    """Wraps `fn(messages, max_tokens) -> str`, one call at a time."""

    name = "callable"

    def __init__(self, fn: Callable[[list[dict[str, str]], int], str], model: str = "callable"):
        self.fn, self.model = fn, model

    def complete(self, calls: list[ChatCall]) -> list[ChatReply]:
        out = []
        for c in calls:
            try:
                out.append(ChatReply(str(self.fn(c.chat(), c.max_tokens))))
            except ChatError as e:
                out.append(ChatReply(None, str(e) or "chat call failed"))
        return out

    def model_id(self) -> str:
        return self.model


class OpenAIChat(ChatBackend):
    """An OpenAI-compatible endpoint; transport and retries are the `openai` judge's."""

    name = "openai"

    def __init__(self, base_url: str, model: str, concurrency: int = 5, **http: Any):
        from dispo.judges.openai import OpenAIJudge

        self.http = OpenAIJudge(base_url=base_url, model=model, concurrency=concurrency, cache=False, **http)
        self.concurrency = int(concurrency)

    def _one(self, c: ChatCall) -> ChatReply:
        text, reason, _attempts = self.http.complete(c.chat(), c.max_tokens)
        return ChatReply(text, reason)

    def complete(self, calls: list[ChatCall]) -> list[ChatReply]:
        if len(calls) <= 1 or self.concurrency == 1:
            return [self._one(c) for c in calls]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls))) as pool:
            return list(pool.map(self._one, calls))

    def model_id(self) -> str:
        return self.http.model_id()

    def describe(self) -> dict[str, Any]:
        d = self.http.describe()
        return {"backend": self.name, **{k: d[k] for k in ("base_url", "model", "api_key_env", "timeout_s")}}


class HFChat(ChatBackend):
    """A local model that writes its answer: greedy, batched, no response cache (the judge
    caches replies itself, keyed by the instruments' hashes)."""

    name = "hf"

    def __init__(self, model: str, batch_size: int = 8, device: str | None = None):
        from dispo.judges.hf import HFJudge

        # HFJudge knows how to load a registry name, a directory or a .gguf; only its loader is used
        self._loader = HFJudge(model=model, batch_size=batch_size, device=device, cache=False)
        self.model, self.batch_size = str(model), int(batch_size)

    def complete(self, calls: list[ChatCall]) -> list[ChatReply]:
        from dispo.generate.engine import generate

        lm = self._loader.loaded
        out: list[ChatReply | None] = [None] * len(calls)
        for budget in sorted({c.max_tokens for c in calls}):
            idx = [i for i, c in enumerate(calls) if c.max_tokens == budget]
            decoding = {"max_new_tokens": int(budget), "temperature": 0.0, "batch_size": self.batch_size}
            gens = generate(lm, [(str(i), calls[i].chat()) for i in idx], decoding, cache=False, progress=False)
            for i, g in zip(idx, gens):
                out[i] = ChatReply(g.output)
        return out  # type: ignore[return-value]

    def model_id(self) -> str:
        return self._loader.model_id()


def make_chat(
    backend: str,
    model: str | None,
    *,
    base_url: str | None = None,
    concurrency: int = 5,
    batch_size: int = 8,
    device: str | None = None,
    http: dict[str, Any] | None = None,
) -> ChatBackend:
    if backend == "openai":
        return OpenAIChat(base_url=str(base_url), model=str(model), concurrency=concurrency, **(http or {}))
    if backend == "hf":
        return HFChat(str(model), batch_size=batch_size, device=device)
    raise ConfigError(f"judge.backend must be openai or hf, got {backend!r}")
