"""Size report and pruning of the response cache (`dispo cache info`, `dispo cache prune`).

Age is the entry file's mtime, i.e. when the response was generated and stored (a hit does not
touch the file, so cached runs stay byte-for-byte unchanged); a pruned entry is simply
generated again the next time it is needed.

Pruning is safe next to a running job:
  - entries are written to `.<name>.*.tmp` and renamed into place, so a `<key>.json` is never a
    file being written; temp files are removed only when older than the cutoff *and* than
    TMP_GRACE_S (a write takes milliseconds: an old temp file was left by a killed writer);
  - an entry judged old is first renamed to a private name (atomic), then re-checked: if a writer
    replaced it with a fresh response between the check and the rename, it is linked back
    (os.link never overwrites an even newer entry) instead of deleted;
  - shard directories are never removed: a writer may be about to create its temp file there.
So a prune racing writers leaves only whole entries, and loses at most entries it meant to drop.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError

TMP_GRACE_S = 600
_KEY_FILE = re.compile(r"^[0-9a-f]{64}\.json$")
_TMP_FILE = re.compile(r"^\..+\.tmp$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """'30d' -> seconds. Units: s, m, h, d, w (one number, one unit)."""
    m = _DURATION.match(str(text).lower())
    if not m:
        raise ConfigError(
            f"--older-than {text!r} is not a duration; give a number and a unit (s, m, h, d or w), e.g. 30d or 12h"
        )
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def _shards(root: Path):
    if not root.is_dir():
        return
    for d in sorted(root.iterdir()):
        if d.is_dir() and len(d.name) == 2:
            yield d


@dataclass
class CacheInfo:
    root: str
    entries: int = 0
    bytes: int = 0
    invalid: int = 0  # unreadable/truncated entries (served as misses)
    temp_files: int = 0  # in-flight writes or leftovers of killed writers
    oldest: float | None = None
    newest: float | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        iso = lambda t: None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        return {
            "root": self.root,
            "entries": self.entries,
            "bytes": self.bytes,
            "invalid": self.invalid,
            "temp_files": self.temp_files,
            "oldest": iso(self.oldest),
            "newest": iso(self.newest),
            "models": {
                k: {**v, "oldest": iso(v["oldest"]), "newest": iso(v["newest"])}
                for k, v in sorted(self.models.items(), key=lambda kv: -kv[1]["entries"])
            },
        }


def cache_info(root: str | Path) -> CacheInfo:
    """Entries, bytes, oldest/newest write time, and the same per model fingerprint."""
    root = Path(root)
    info = CacheInfo(root=str(root))
    for shard in _shards(root):
        for p in shard.iterdir():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if _TMP_FILE.match(p.name):
                info.temp_files += 1
                continue
            if not _KEY_FILE.match(p.name):
                continue
            try:
                entry = json.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:  # pruned or replaced meanwhile
                continue
            except (OSError, ValueError):
                entry = None
            if not isinstance(entry, dict) or entry.get("key") != p.stem:
                info.invalid += 1
                continue
            fp = entry.get("fingerprint")
            info.entries += 1
            info.bytes += st.st_size
            t = st.st_mtime
            info.oldest = t if info.oldest is None else min(info.oldest, t)
            info.newest = t if info.newest is None else max(info.newest, t)
            name = entry.get("model")
            label = f"{name} ({fp})" if name else str(fp or "unknown")
            m = info.models.setdefault(label, {"entries": 0, "bytes": 0, "oldest": None, "newest": None})
            m["entries"] += 1
            m["bytes"] += st.st_size
            m["oldest"] = t if m["oldest"] is None else min(m["oldest"], t)
            m["newest"] = t if m["newest"] is None else max(m["newest"], t)
    return info


@dataclass
class PruneResult:
    removed: int = 0
    removed_bytes: int = 0
    kept: int = 0
    temp_removed: int = 0
    raced: int = 0  # entries rewritten by a writer while pruning: kept

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def prune(root: str | Path, older_than_s: float, *, now: float | None = None, dry_run: bool = False) -> PruneResult:
    """Delete entries written more than `older_than_s` seconds ago (see the module doc for why
    this is safe with running writers)."""
    root = Path(root)
    now = time.time() if now is None else now
    cutoff = now - older_than_s
    res = PruneResult()
    for shard in _shards(root):
        for p in list(shard.iterdir()):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if _TMP_FILE.match(p.name):
                if st.st_mtime < cutoff and now - st.st_mtime > TMP_GRACE_S:
                    if not dry_run:
                        _unlink(p)
                    res.temp_removed += 1
                continue
            if not _KEY_FILE.match(p.name):
                continue
            if st.st_mtime >= cutoff:
                res.kept += 1
                continue
            if dry_run:
                res.removed += 1
                res.removed_bytes += st.st_size
                continue
            grave = shard / f".{p.name}.prune-{os.getpid()}.tmp"
            try:
                os.rename(p, grave)
            except FileNotFoundError:
                continue
            gst = grave.stat()
            if gst.st_mtime >= cutoff:  # a writer replaced it between our stat and the rename
                try:
                    os.link(grave, p)  # put it back unless an even newer one is already there
                except FileExistsError:
                    pass
                res.raced += 1
                res.kept += 1
            else:
                res.removed += 1
                res.removed_bytes += gst.st_size
            _unlink(grave)
    return res


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
