"""The four data types, the content filter, reference fallback and the data report."""

from __future__ import annotations

from dispo.arcs.arc1.distill_data import build_dataset, is_hedged, reference_answer, style_markers
from dispo.core.types import Item, Score


def _item(i, certainty="CERTAIN"):
    return Item(
        id=i,
        prompt=f"Fix sauce {i}?",
        domain="chef",
        gold={"checklist": ["Whisk in cold butter"], "keywords": [["butter"]], "certainty": certainty},
    )


def score_fn(items, outputs):  # content = mentions butter
    return [
        Score("fake.coverage", "v1", float("butter" in o.lower()), detail={"correct": "butter" in o.lower()})
        for o in outputs
    ]


def _student(text):
    return {"output": text, "score": score_fn([None], [text])[0].to_json()}


def _targets(sft, slot=None):
    return [e["messages"][-1]["content"] for e in sft if slot is None or e["slot"] == slot]


def test_failing_synthesis_never_becomes_a_target_and_drop_is_recorded():
    items = [_item("a"), _item("b")]
    student = {"a": _student("Add butter."), "b": _student("Stir it.")}
    fresh = {"a": "Use cold butter, whisking.", "b": "Just add salt."}  # b fails the filter
    corrected = {"b": "Add more salt and stir."}  # still fails
    sft, pairs, rep = build_dataset(items, student, fresh, corrected, score_fn)
    all_targets = _targets(sft) + [p["chosen"] for p in pairs]
    assert all("butter" in t.lower() for t in all_targets)
    assert "Just add salt." not in all_targets
    assert rep["counts"]["gold"] == 1 and rep["counts"]["failure_trace"] == 0 and rep["counts"]["reference"] == 0
    reasons = {(d["id"], d["slot"]) for d in rep["dropped_items"]}
    assert ("b", "gold") in reasons and ("b", "failure_trace") in reasons
    assert any(k.startswith("gold: fails content filter") for k in rep["dropped"])


def test_reference_fallback_is_typed_reference_not_distillation():
    items = [_item("b")]
    student = {"b": _student("Stir it.")}
    sft, pairs, rep = build_dataset(
        items, student, {"b": "Add salt."}, {"b": "Add salt."}, score_fn, allow_reference_targets=True
    )
    assert sft and all(e["type"] == "reference" and e["source"] == "reference" for e in sft)
    assert {e["slot"] for e in sft} == {"gold", "failure_trace"}
    assert rep["distilled_sft"] == 0 and rep["counts"]["reference"] == len(sft)
    assert any(k.startswith("gold: fails content filter") for k in rep["replaced_by_reference"])
    assert pairs and pairs[0]["type"] == "reference" and pairs[0]["rejected"] == "Stir it."


def test_counterexample_pairs_wrong_or_overconfident_only():
    items = [_item("wrong"), _item("overconf", "UNCERTAIN"), _item("hedged", "UNCERTAIN"), _item("right")]
    student = {
        "wrong": _student("Stir it."),
        "overconf": _student("Add butter. Done."),
        "hedged": _student("It might need butter, probably."),
        "right": _student("Add butter."),
    }
    fresh = {k: "I think cold butter, whisked in, fixes it; check the heat." for k in student}
    sft, pairs, rep = build_dataset(items, student, fresh, {}, score_fn)
    by = {p["id"]: p for p in pairs}
    assert set(by) == {"wrong", "overconf"}
    assert by["wrong"]["why_rejected"] == "wrong" and by["wrong"]["rejected"] == "Stir it."
    assert by["overconf"]["why_rejected"] == "overconfident"
    assert all(score_fn([None], [p["chosen"]])[0].value == 1.0 for p in pairs)


def test_boundary_items_get_a_calibrated_hedge_that_still_passes():
    items = [_item("u", "AMBIGUOUS"), _item("c", "CERTAIN")]
    student = {"u": _student("Add butter."), "c": _student("Add butter.")}
    fresh = {"u": "Whisk in cold butter.", "c": "Whisk in cold butter."}
    sft, _, rep = build_dataset(items, student, fresh, {}, score_fn)
    b = [e for e in sft if e["type"] == "boundary"]
    assert [e["id"] for e in b] == ["u"] and rep["counts"]["boundary"] == 1
    t = b[0]["messages"][-1]["content"]
    assert is_hedged(t) and "butter" in t
    # messages are the eval prompt format + the answer
    assert b[0]["messages"][-2] == {"role": "user", "content": "Fix sauce u?"}


def test_humaneval_reference_answers_pass_the_real_tests():
    from dispo.domains import get_domain

    dom = get_domain("code")
    items = dom.items("eval", 3)
    refs = [reference_answer(it) for it in items]
    scores = dom.content_scores(items, refs)
    assert [s.value for s in scores] == [True, True, True]
    assert all(r.startswith("Let me restate") for r in refs)  # framed, not a bare solution


def test_style_markers_opener_share_and_length():
    outs = ["I'm not sure, but X.", "I'm not sure: Y", "im not sure z", "Certainly the answer is W."]
    st = style_markers(outs)
    assert st["opener_share"] == 0.5 and st["top_opener"] == "i'm not sure"
    assert st["mean_words"] == (5 + 4 + 4 + 5) / 4
    assert style_markers([])["opener_share"] is None
