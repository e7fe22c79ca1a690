"""Crash-safe trainer checkpoints, so a run killed inside LoRA SFT or DPO resumes mid-stage.

transformers writes `checkpoint-N/` file by file into its output_dir, so a kill during a save
leaves a half checkpoint that `resume_from_checkpoint` would choke on (or silently misread).
Here the trainer's output_dir is a staging dir (`.<name>.tmp` beside the final one); after
each save (`on_save`, called once the checkpoint is fully written) its files are fsynced and
the directory is renamed into `<checkpoint_dir>/checkpoint-N` in one step. Older checkpoints
are renamed away before they are deleted. A `checkpoint-N` dir in `checkpoint_dir` is
therefore always complete, and `last_checkpoint` is simply the highest N.

What resumes exactly: transformers restores the adapter weights, optimizer, scheduler, RNG
states (dropout, data order) and log history, and skips the batches already seen, so on CPU
the final adapter and loss history equal an uninterrupted run's (tested in
tests/reliability/test_train_resume.py).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def staging_dir(checkpoint_dir: Path) -> Path:
    return checkpoint_dir.parent / f".{checkpoint_dir.name}.tmp"


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in d.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))]
    return max(found)[1] if found else None


def checkpoint_step(path: Path) -> int:
    m = _CKPT.match(path.name)
    return int(m.group(1)) if m else 0


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(p: Path) -> None:
    """Rename away first, so a kill during rmtree never leaves a partial `checkpoint-N`."""
    if not p.exists():
        return
    grave = p.parent / f".{p.name}.{os.getpid()}.del.tmp"
    os.rename(p, grave)
    shutil.rmtree(grave, ignore_errors=True)


def prepare(checkpoint_dir: Path) -> Path:
    """Clear what a killed process left half-done (staging dir, deletions); return the staging dir."""
    staging = staging_dir(checkpoint_dir)
    shutil.rmtree(staging, ignore_errors=True)
    if checkpoint_dir.is_dir():
        for p in checkpoint_dir.iterdir():
            if p.name.endswith(".del.tmp"):
                shutil.rmtree(p, ignore_errors=True)
    return staging


def discard(checkpoint_dir: Path) -> None:
    """After the stage's adapter is saved: the checkpoints (adapter + optimizer) are no longer needed."""
    shutil.rmtree(staging_dir(checkpoint_dir), ignore_errors=True)
    if checkpoint_dir.exists():
        _remove(checkpoint_dir)


def atomic_callback(checkpoint_dir: Path):
    """TrainerCallback that publishes each finished checkpoint into `checkpoint_dir` atomically
    and keeps only the newest one."""
    from transformers import TrainerCallback

    staging = staging_dir(checkpoint_dir)

    class _Publish(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            src = staging / f"checkpoint-{state.global_step}"
            if not src.is_dir():
                return
            _fsync_tree(src)
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            dst = checkpoint_dir / src.name
            _remove(dst)
            os.rename(src, dst)
            _fsync_dir(checkpoint_dir)
            for p in list(checkpoint_dir.iterdir()):
                if p != dst and _CKPT.match(p.name):
                    _remove(p)

    return _Publish()


def save_adapter_atomically(model, out_dir: Path, **kw) -> None:
    """model.save_pretrained into a temp dir, then swap it in: `out_dir` is never half-written."""
    tmp = out_dir.parent / f".{out_dir.name}.{os.getpid()}.save.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), **kw)
    _fsync_tree(tmp)
    if out_dir.exists():
        _remove(out_dir)
    os.rename(tmp, out_dir)
    _fsync_dir(out_dir.parent)
