"""The four-stage teacher pipeline: stage context, prompts as data, caching, backends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dispo.arcs.arc1.teachers import STAGES, Teacher, TeacherPipeline, load_stage_prompt, stage_messages
from dispo.core.errors import ConfigError
from dispo.core.types import Item


class Recording(Teacher):
    def __init__(self, tag):
        self.tag, self.calls = tag, []

    def generate(self, chats, ids):
        self.calls.append(chats)
        return [{"output": f"{self.tag}-answer-{i}", "finish_reason": "stop"} for i in range(len(chats))]

    def describe(self):
        return {"backend": "fake", "model": self.tag, "decoding": {}}


ITEMS = [
    Item(id="q1", prompt="How do I fix a split hollandaise?", domain="chef"),
    Item(id="q2", prompt="Why is my roux lumpy?", domain="chef"),
]


def test_prompts_are_versioned_files_with_distinct_roles():
    texts = {s: load_stage_prompt(f"{s}.v1") for s in STAGES}
    assert len({t for t, _ in texts.values()}) == 4
    assert texts["adversarial"][1].startswith("adversarial.v1@")
    with pytest.raises(ConfigError, match="available"):
        load_stage_prompt("eager.v99")


def test_each_stage_sees_question_and_only_earlier_stages():
    prev = {"eager": "E-out", "deliberate": "D-out", "adversarial": "A-out"}
    user = stage_messages("adversarial", "SYS", "the question", prev)[1]["content"]
    assert "the question" in user and "E-out" in user and "D-out" in user and "A-out" not in user
    synth = stage_messages("synthesizer", "SYS", "q", prev)
    assert synth[0] == {"role": "system", "content": "SYS"}
    assert all(x in synth[1]["content"] for x in ("E-out", "D-out", "A-out"))
    assert "E-out" not in stage_messages("eager", "SYS", "q", prev)[1]["content"]
    assert "FAILED" in stage_messages("eager", "SYS", "q", {}, student_answer="bad")[1]["content"]


def test_pipeline_target_is_synthesizer_and_rerun_is_cached(tmp_path):
    teachers = {s: Recording(s) for s in STAGES}
    pipe = TeacherPipeline(teachers, {}, cache_dir=tmp_path)
    out = pipe.run(ITEMS, "fresh")
    assert [o["target"] for o in out] == ["synthesizer-answer-0", "synthesizer-answer-1"]
    # the synthesizer's chat contains the three earlier outputs of the same item
    synth_user = teachers["synthesizer"].calls[0][1][1]["content"]
    assert "eager-answer-1" in synth_user and "adversarial-answer-1" in synth_user
    assert (tmp_path / "fresh" / "synthesizer.jsonl").exists()
    # a second pipeline over the same stage files generates nothing
    again = {s: Recording(s) for s in STAGES}
    out2 = TeacherPipeline(again, {}, cache_dir=tmp_path).run(ITEMS, "fresh")
    assert [o["target"] for o in out2] == [o["target"] for o in out]
    assert all(not t.calls for t in again.values())
    # correct mode changes the chats, so it is not served from the fresh cache
    third = {s: Recording(s) for s in STAGES}
    TeacherPipeline(third, {}, cache_dir=tmp_path).run(ITEMS[:1], "fresh", student_answers={"q1": "whisk harder"})
    assert len(third["eager"].calls) == 1 and "whisk harder" in third["eager"].calls[0][0][1]["content"]


def test_paper_set_needs_endpoints_filled_in():
    from dispo.core.config import compose_config

    cfg = compose_config(["arc/teachers=paper"], base={"arc": "arc1"})
    stages = cfg["arc"]["teachers"]["stages"]
    assert {s: stages[s]["backend"] for s in STAGES} == {s: "openai" for s in STAGES}
    with pytest.raises(ConfigError, match="base_url"):
        TeacherPipeline.from_config(cfg["arc"]["teachers"])


def test_openai_teacher_sends_key_from_env_and_never_describes_it(monkeypatch):
    from dispo.arcs.arc1.teachers import OpenAITeacher

    seen = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.headers.get("Authorization"), body))
            data = json.dumps({"choices": [{"message": {"content": "teacher says hi"}, "finish_reason": "stop"}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DISPO_TEST_TEACHER_KEY", "sk-secret-123")
        t = OpenAITeacher(
            f"http://127.0.0.1:{srv.server_port}/v1",
            "big-teacher",
            {"max_new_tokens": 7},
            api_key_env="DISPO_TEST_TEACHER_KEY",
        )
        out = t.generate([[{"role": "user", "content": "hello"}]], ["x"])
    finally:
        srv.shutdown()
    assert out == [{"output": "teacher says hi", "finish_reason": "stop"}]
    assert seen[0][0] == "Bearer sk-secret-123"
    assert seen[0][1]["model"] == "big-teacher" and seen[0][1]["max_tokens"] == 7
    assert "sk-secret" not in json.dumps(t.describe())


def test_hf_teacher_generates_with_local_model():
    from dispo.arcs.arc1.teachers import HFTeacher

    t = HFTeacher("tiny-llama", {"max_new_tokens": 4, "temperature": 0.0}, progress=False)
    out = t.generate([[{"role": "user", "content": "hi"}], [{"role": "user", "content": "bye"}]], ["a", "b"])
    assert len(out) == 2 and all(o["finish_reason"] in ("stop", "length") for o in out)
    assert t.describe()["fingerprint"] == t.lm.fingerprint


def test_stages_on_one_local_model_share_one_loaded_copy(monkeypatch):
    """Stages on one local model with different budgets (short drafts, a longer Synthesizer) are
    separate teachers but one model in memory."""
    import dispo.models.loading as loading

    loads = []
    monkeypatch.setattr(loading, "load_model", lambda spec, *a, **k: loads.append(spec) or object())
    tcfg = {
        "decoding": {"max_new_tokens": 32},
        "stages": {s: {"backend": "hf", "model": "qwen2.5-coder-0.5b"} for s in STAGES},
    }
    tcfg["stages"]["synthesizer"]["decoding"] = {"max_new_tokens": 256}
    pipe = TeacherPipeline.from_config(tcfg)
    assert pipe.teachers["synthesizer"] is not pipe.teachers["eager"]
    lms = {id(pipe.teachers[s].lm) for s in STAGES}
    assert len(lms) == 1 and loads == ["qwen2.5-coder-0.5b"]
    assert pipe.teachers["synthesizer"].decoding["max_new_tokens"] == 256
    assert pipe.teachers["eager"].decoding["max_new_tokens"] == 32


def test_each_stage_generates_under_its_own_progress_label():
    from dispo.generate.progress import current_label

    seen = []

    class Labelled(Recording):
        def generate(self, chats, ids):
            seen.append(current_label("none"))
            return super().generate(chats, ids)

    t = Labelled("m")
    TeacherPipeline(dict.fromkeys(STAGES, t), {}).run(ITEMS)
    assert seen == [f"teacher {s} (m)" for s in STAGES]
    assert current_label("none") == "none"  # the label ends with its stage


def test_stage_dtype_loads_that_dtype_and_keys_the_cache():
    """A stage's `dtype` reaches the loaded model (so its fingerprint, hence the response cache,
    differs from the model's own dtype) and is recorded in the stage's description."""
    from dispo.arcs.arc1.teachers import HFTeacher, hf_teacher_spec

    assert hf_teacher_spec({"model": "tiny-llama", "dtype": None}) == "tiny-llama"
    spec = hf_teacher_spec({"model": "tiny-llama", "dtype": "bfloat16"})
    assert spec["dtype"] == "bfloat16" and spec["name"] == "tiny-llama"
    dec = {"max_new_tokens": 2, "temperature": 0.0}
    own, bf16 = HFTeacher("tiny-llama", dec, progress=False), HFTeacher(spec, dec, progress=False)
    chats = [[{"role": "user", "content": "hi"}]]
    own.generate(chats, ["a"]), bf16.generate(chats, ["a"])
    assert str(next(bf16.lm.model.parameters()).dtype) == "torch.bfloat16"
    assert own.lm.fingerprint != bf16.lm.fingerprint
    assert bf16.describe()["dtype"] == "bfloat16" and "dtype" not in own.describe()


def test_stages_with_different_dtypes_are_different_teachers(monkeypatch):
    import dispo.models.loading as loading

    loads = []
    monkeypatch.setattr(loading, "load_model", lambda spec, *a, **k: loads.append(spec) or object())
    stages = {s: {"backend": "hf", "model": "qwen2.5-coder-0.5b"} for s in STAGES}
    stages["synthesizer"]["dtype"] = "bfloat16"
    pipe = TeacherPipeline.from_config({"decoding": {"max_new_tokens": 8}, "stages": stages})
    for s in STAGES:
        pipe.teachers[s].lm  # noqa: B018 (loads)
    assert pipe.teachers["synthesizer"] is not pipe.teachers["eager"]
    assert [s if isinstance(s, str) else s["dtype"] for s in loads] == ["qwen2.5-coder-0.5b", "bfloat16"]
