"""Content fingerprints of model weights: what the response cache and run records key on.

A fingerprint must change whenever any weight changes, so it is the sha256 of every weight
file's full content (hashing only a prefix made two checkpoints that differ in a late layer
collide, and one was served the other's cached responses). Hashing a multi-GB checkpoint on
every load would be slow, so each file's digest is memoised in a small JSON index under the
dispo cache (`<cache>/fingerprints.json`), keyed by the resolved path and valid only while the
file's (size, mtime_ns, inode) are unchanged. The index is written atomically; two processes
updating it at once can lose one entry, which only costs a re-hash, never a wrong digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from dispo.core import atomic

INDEX_NAME = "fingerprints.json"
INDEX_VERSION = 1
# Files that decide a model's outputs (weights, config, tokenizer, chat template).
MODEL_SUFFIXES = {".json", ".safetensors", ".bin", ".gguf", ".model", ".jinja", ".pt", ".pth", ".txt"}
_CHUNK = 8 << 20


def _index_path() -> Path:
    from dispo.models.embedded import cache_root

    return cache_root() / INDEX_NAME


def _load_index(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path, *, index: Path | None = None) -> str:
    """Full-content sha256 of `path`, memoised by (resolved path, size, mtime_ns, inode)."""
    p = Path(path).resolve()
    index = index or _index_path()
    files = _load_index(index)
    st = p.stat()
    hit = files.get(str(p))
    if isinstance(hit, dict) and hit.get("stat") == _stat_key(st) and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    digest = _sha256_file(p)
    # A file rewritten while we hashed it gets a new mtime: don't memoise a digest of a mix.
    if _stat_key(p.stat()) != _stat_key(st):
        return digest
    files = _load_index(index)  # re-read: another process may have added entries meanwhile
    files = {k: v for k, v in files.items() if os.path.exists(k)}  # forget deleted checkpoints
    files[str(p)] = {"stat": _stat_key(st), "sha256": digest}
    try:
        atomic.write_json(index, {"version": INDEX_VERSION, "files": files})
    except OSError:
        pass  # a read-only cache dir only costs re-hashing next time
    return digest


def dir_fingerprint(path: str | Path, *, index: Path | None = None) -> str:
    """16-hex fingerprint of a model directory: names + full-content sha256 of its model files."""
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and f.suffix in MODEL_SUFFIXES:
            h.update(f.name.encode() + b"\0" + file_sha256(f, index=index).encode() + b"\n")
    return h.hexdigest()[:16]


def gguf_fingerprint(path: str | Path, *, index: Path | None = None) -> str:
    p = Path(path)
    return hashlib.sha256(p.name.encode() + b"\0" + file_sha256(p, index=index).encode()).hexdigest()[:16]


WEIGHT_SUFFIXES = {".safetensors", ".bin", ".gguf", ".pt", ".pth"}


def tokenizer_fingerprint(path: str | Path) -> str:
    """16-hex fingerprint of what decides a model dir's tokenizer and chat template: names +
    sha256 of its small files (config, tokenizer, template), weights left out. Cheap enough
    to compute on every load (the files are a few MB), so it is not memoised."""
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and f.suffix in MODEL_SUFFIXES and f.suffix not in WEIGHT_SUFFIXES:
            h.update(f.name.encode() + b"\0" + _sha256_file(f).encode() + b"\n")
    return h.hexdigest()[:16]
