"""Rendered prompts, memoised, so a re-run whose responses are all cached needs no tokenizer.

The response cache keys on the rendered prompt (the chat template applied). Rendering needs
the tokenizer, and loading one imports transformers and torch: seconds, on a re-run that
otherwise only reads cache files. So every prompt a tokenizer renders is kept here, addressed
by the sha256 of everything that decides the text: the tokenizer's files (`tok_id`, their
content fingerprint), the messages, add_generation_prompt, the chat-template kwargs and the
transformers and jinja2 versions that rendered it. A template that reads the clock
(`strftime_now`) is never memoised. Beside the prompts, a few facts about the tokenizer that
a run records (vocabulary size, chat template digest) are kept per tok_id.

Layout: `<cache>/prompts/<key[:2]>/<key>.json`, one small JSON file per entry, written
atomically like the response cache; an unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dispo.core import atomic

VERSION = 1


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("transformers", "jinja2"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _key(material: dict[str, Any]) -> str:
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokenizer_facts(tok) -> dict[str, Any]:
    template = getattr(tok, "chat_template", None) or ""
    if not isinstance(template, str):  # a dict of named templates
        template = json.dumps(template, sort_keys=True)
    return {
        "len": len(tok),
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest()[:16],
        # a template that reads the clock renders differently tomorrow: never memoise it
        "memoise": "strftime_now" not in template,
    }


class PromptMemo:
    def __init__(self, tok_id: str, root: str | Path | None = None):
        if root is None:
            from dispo.models.embedded import cache_root

            root = cache_root() / "prompts"
        self.root = Path(root)
        self.tok_id = tok_id
        self._base = {"v": VERSION, "tok": tok_id, **_versions()}
        self._facts: dict[str, Any] | None = None

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        try:
            atomic.write_text(self._path(key), json.dumps({**entry, "key": key}, ensure_ascii=False))
        except OSError:
            pass  # a read-only cache only costs loading the tokenizer next time

    # -- tokenizer facts --------------------------------------------------------------
    def facts(self) -> dict[str, Any] | None:
        if self._facts is None:
            entry = self._read(_key({**self._base, "facts": True}))
            ok = entry is not None and isinstance(entry.get("len"), int) and isinstance(entry.get("memoise"), bool)
            self._facts = entry if ok else None
        return self._facts

    def put_facts(self, tok) -> dict[str, Any]:
        facts = tokenizer_facts(tok)
        if facts != {k: v for k, v in (self.facts() or {}).items() if k in facts}:
            self._write(_key({**self._base, "facts": True}), facts)
        self._facts = facts
        return facts

    def get_value(self, name: str) -> Any:
        entry = self._read(_key({**self._base, "value": name}))
        return None if entry is None else entry.get("value")

    def put_value(self, name: str, value: Any) -> None:
        if self.get_value(name) != value:
            self._write(_key({**self._base, "value": name}), {"value": value})

    # -- rendered prompts -------------------------------------------------------------
    def _prompt_key(self, messages, add_generation_prompt: bool, kwargs: dict) -> str:
        return _key({**self._base, "messages": messages, "agp": bool(add_generation_prompt), "kwargs": kwargs})

    def get(self, messages, add_generation_prompt: bool, kwargs: dict) -> str | None:
        facts = self.facts()
        if not facts or not facts["memoise"]:
            return None
        entry = self._read(self._prompt_key(messages, add_generation_prompt, kwargs))
        return entry["text"] if entry is not None and isinstance(entry.get("text"), str) else None

    def put(self, messages, add_generation_prompt: bool, kwargs: dict, text: str) -> None:
        facts = self.facts()
        if facts and facts["memoise"]:
            self._write(self._prompt_key(messages, add_generation_prompt, kwargs), {"text": text})
