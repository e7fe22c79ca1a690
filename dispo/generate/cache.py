"""Content-addressed cache of model responses.

An entry is addressed by the sha256 of the canonical JSON of everything that decides the
output: model fingerprint (weights + adapter), intervention (e.g. damped heads), the rendered
prompt, the output-deciding decoding parameters and, when sampling, the seed and item id
(the per-item sampling stream is seeded from both). Re-running an identical request list
therefore generates nothing, and a changed chat template, adapter or decoding budget can
never be served a stale answer.

Where the numerics are not batch-invariant (bfloat16/float16 weights, a GPU), a greedy
answer also depends on which prompts shared its batch (measured: bench/batch_invariance.py).
There the key also holds the generating call (`call_key`: every prompt of the call in order,
and the batch size), so a cached answer is served only to the same call that made it, and a
warm cache gives the same outputs as a cold one.

Layout: `<root>/<key[:2]>/<key>.json`, one small JSON file per entry, so concurrent runs
never contend on a shared index. Writes go to a temp file in the same directory and are
`os.replace`d into place: readers see either no entry or a whole one; two writers of the
same key both write the same content and the last rename wins. A file that is unreadable,
truncated or for another key is a miss, and the next `put` overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dispo.core import atomic

ENTRY_VERSION = 1
_FINISH_REASONS = ("stop", "length")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content always hashes equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def response_key(
    fingerprint: str,
    intervention: dict | None,
    prompt: str,
    decoding: dict,
    seed: int | None = None,
    item_id: str | None = None,
    call: str | None = None,
) -> str:
    """sha256 hex key of one request. Pass seed and item_id only when sampling: greedy
    output does not depend on them, so greedy entries are shared across seeds and ids.
    Pass `call` (a `call_key`) only where outputs depend on batch composition."""
    material: dict[str, Any] = {
        "fingerprint": fingerprint,
        "intervention": intervention or None,
        "prompt": prompt,
        "decoding": decoding,
    }
    if seed is not None:
        material["seed"] = seed
        material["item_id"] = item_id
    if call is not None:
        material["call"] = call
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def call_key(prompts: list[str], batch_size: int, engine: str) -> str:
    """sha256 hex of what decides batch composition within one generation call: the
    prompts in request order (admission follows it), the batch size and the engine asked for."""
    material = {"prompts": list(prompts), "batch_size": int(batch_size), "engine": engine}
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


class ResponseCache:
    """One-JSON-file-per-entry response cache under `root` (default
    `cache_root()/"responses"`, i.e. `$DISPO_CACHE/responses`).

    Counters (per instance): `hits`, `misses`, and `generated_tokens`, the tokens of the
    responses stored through `put` (i.e. generated because they were misses).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            from dispo.models.embedded import cache_root

            root = cache_root() / "responses"
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self.generated_tokens = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for `key`, or None (counted as a miss) if absent or unusable."""
        entry = self._read(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = (
            isinstance(entry, dict)
            and entry.get("key") == key
            and isinstance(entry.get("output"), str)
            and entry.get("finish_reason") in _FINISH_REASONS
            and isinstance(entry.get("n_tokens"), int)
        )
        return entry if ok else None

    def put(self, key: str, output: str, finish_reason: str, n_tokens: int, **extra: Any) -> None:
        """Store one response atomically; `extra` (e.g. engine, request material) is kept
        in the entry for inspection but never needed to serve it."""
        entry = {
            **extra,
            "version": ENTRY_VERSION,
            "key": key,
            "output": output,
            "finish_reason": finish_reason,
            "n_tokens": int(n_tokens),
        }
        atomic.write_text(self.path(key), canonical_json(entry))
        self.generated_tokens += int(n_tokens)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.exists() else 0
