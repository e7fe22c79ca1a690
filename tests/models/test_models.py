import pytest

from dispo.models.loading import load_model
from dispo.models.registry import get_spec, model_names

STUDENTS = {
    "qwen3-0.6b": "Qwen/Qwen3-0.6B",
    "qwen3-1.7b": "Qwen/Qwen3-1.7B",
    "qwen3.5-0.8b": "Qwen/Qwen3.5-0.8B",
    "gemma4-e2b": "google/gemma-4-E2B-it",
    "smollm2-1.7b": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
}


def test_registry_holds_the_five_students_with_real_hub_ids():
    for name, hub in STUDENTS.items():
        spec = get_spec(name)
        assert spec["hf_id"] == hub and spec["source"] == "hub"
        assert "o_proj" in spec["lora_targets"]["attention"]
    assert get_spec("qwen3-0.6b")["chat_template_kwargs"] == {"enable_thinking": False}
    assert {"smollm2-135m", "tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"} <= set(model_names())


@pytest.mark.parametrize(
    "name, full_layers, skipped",
    [
        ("tiny-qwen3", [0, 1], []),
        ("tiny-llama", [0, 1], []),
        ("tiny-qwen3_5", [3], [0, 1, 2]),
        ("tiny-gemma4", [0, 1], []),
    ],
)
def test_tiny_models_load_generate_and_report_attention_layout(name, full_layers, skipped):
    from dispo.generate.engine import generate

    lm = load_model(name)
    layout = lm.attention_layout()
    assert [a["layer"] for a in layout["attention"]] == full_layers
    assert [s["layer"] for s in layout["skipped"]] == skipped
    for a in layout["attention"]:  # o_proj input width is heads * per-layer head_dim
        layer = lm.model.model.layers[a["layer"]]
        assert layer.self_attn.o_proj.in_features == a["heads"] * a["head_dim"]
    gens = generate(
        lm, [("a", [{"role": "user", "content": "hi"}])], {"max_new_tokens": 5}, cache=False, progress=False
    )
    assert gens[0].n_tokens > 0 and gens[0].finish_reason in ("stop", "length")


def test_gemma4_full_layer_head_dim_differs_from_hidden_over_heads():
    lm = load_model("tiny-gemma4")
    dims = {a["kind"]: a["head_dim"] for a in lm.attention_layout()["attention"]}
    assert dims["full_attention"] != dims["sliding_attention"]
