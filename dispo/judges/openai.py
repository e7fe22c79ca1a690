"""`openai` judge: any OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp
server, OpenRouter, OpenAI, ...), stdlib HTTP only.

Each query is one chat request at temperature 0 with a small `max_tokens`; the answer must
be exactly one label (see `prompts.parse_label`), anything else is unscored - not retried,
since at temperature 0 the same prompt gives the same answer.

Transient failures are retried up to `max_retries` times with exponential backoff
(`backoff * 2**attempt` seconds): HTTP 429 (waiting `Retry-After` when the server sends
it), 5xx, connection reset/refused, timeouts, malformed or truncated JSON, and an empty
answer. Other 4xx (bad key, unknown model) fail at once. A query whose budget runs out is
`Score.unscored` with the last reason.

The API key is read from the environment variable NAMED by `api_key_env` at request time;
it is never stored on the judge, logged, cached or put in `describe()`.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from dispo.core.errors import ConfigError
from dispo.judges import JUDGES
from dispo.judges.prompts import Answer, PromptedJudge, Query, parse_label

RETRY_AFTER_CAP_S = 120.0  # a misbehaving server must not park a run for hours


class _Retry(Exception):
    """A transient failure: try again after `wait` seconds (None = use the backoff)."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Fatal(Exception):
    """A failure that retrying cannot fix (4xx other than 429)."""


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


@JUDGES.register("openai")
class OpenAIJudge(PromptedJudge):
    name = "openai"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str = "",
        api_key_env: str | None = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int = 16,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        prompt_version: str = "v1",
        cache: bool = True,
        cache_dir: str | None = None,
    ):
        if not model:
            raise ConfigError("judge=openai needs judge.model=NAME (the model id the endpoint serves)")
        if int(concurrency) < 1 or int(max_retries) < 0 or float(timeout_s) <= 0:
            raise ConfigError("judge.concurrency must be >= 1, judge.max_retries >= 0, judge.timeout_s > 0")
        super().__init__(prompt_version=prompt_version, cache=cache, cache_dir=cache_dir)
        self.base_url = str(base_url).rstrip("/")
        self.model = str(model)
        self.api_key_env = api_key_env or None
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.concurrency = int(concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)

    def model_id(self) -> str:
        return f"{self.base_url}|{self.model}"

    def describe(self) -> dict:
        d = super().describe()
        d.update(
            base_url=self.base_url,
            model=self.model,
            api_key_env=self.api_key_env,
            max_tokens=self.max_tokens,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff=self.backoff,
        )
        return d

    def _answer_batch(self, queries: list[Query]) -> list[Answer]:
        if len(queries) == 1 or self.concurrency == 1:
            return [self._answer_one(q) for q in queries]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(queries))) as pool:
            return list(pool.map(self._answer_one, queries))

    def _answer_one(self, q: Query) -> Answer:
        content, reason, attempts = self.complete(q.chat())
        if content is None:
            return Answer(None, reason, {"attempts": attempts})
        label = parse_label(content, q.labels)
        if label is None:
            return Answer(
                None,
                f"unparseable answer {content[:80]!r} (expected one of {'/'.join(q.labels)})",
                {"attempts": attempts},
            )
        return Answer(label, None, {"raw": content[:80]})

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> tuple[str | None, str | None, int]:
        """One chat completion under the retry policy: (text, None, attempts) or (None, reason, attempts).
        The paper's judges (dispo.judges.paper) use it as their HTTP transport."""
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(messages, max_tokens), None, attempt + 1
            except _Fatal as e:
                return None, str(e), attempt + 1
            except _Retry as e:
                last = e.reason
                if attempt < self.max_retries:
                    wait = e.wait if e.wait is not None else self.backoff * (2**attempt)
                    time.sleep(min(wait, RETRY_AFTER_CAP_S))
        return None, f"gave up after {self.max_retries + 1} attempts: {last}", self.max_retries + 1

    def _post(self, messages: list[dict], max_tokens: int | None = None) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens if max_tokens is None else int(max_tokens),
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            snippet = e.read()[:120].decode("utf-8", "replace") if e.fp else ""
            if e.code == 429:
                raise _Retry("HTTP 429 rate limited", _retry_after_seconds(e.headers.get("Retry-After"))) from None
            if e.code >= 500:
                raise _Retry(f"HTTP {e.code} {snippet}".strip()) from None
            raise _Fatal(f"HTTP {e.code} {snippet}".strip()) from None
        except (TimeoutError, socket.timeout):
            raise _Retry(f"timeout after {self.timeout_s}s") from None
        except http.client.IncompleteRead:
            raise _Retry("truncated response body") from None
        except (ConnectionError, http.client.HTTPException) as e:
            raise _Retry(f"connection error: {type(e).__name__}") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise _Retry(f"timeout after {self.timeout_s}s") from None
            raise _Retry(f"connection error: {e.reason}") from None
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Retry(f"malformed JSON response {raw[:60]!r}") from None
        if not content or not str(content).strip():
            raise _Retry("empty answer")
        return str(content)
