"""ResponseCache: keys, atomic entries, corrupt entries, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp

from dispo.generate.cache import ResponseCache, response_key

BASE = dict(fingerprint="fp1", intervention=None, prompt="<|im_start|>user\nhi", decoding={"max_new_tokens": 8})


def test_key_changes_with_every_output_deciding_field():
    k = response_key(**BASE)
    variants = [
        {**BASE, "fingerprint": "fp2"},
        {**BASE, "intervention": {"heads": [[3, 1]], "lambda": 0.5}},
        {**BASE, "prompt": BASE["prompt"] + " "},
        {**BASE, "decoding": {"max_new_tokens": 9}},
    ]
    keys = {response_key(**v) for v in variants}
    assert k not in keys and len(keys) == len(variants)
    assert len(k) == 64 and int(k, 16) >= 0


def test_key_is_canonical_and_seed_only_counts_when_given():
    a = response_key("fp", {"b": 1, "a": 2}, "p", {"x": 1, "y": 2})
    b = response_key("fp", {"a": 2, "b": 1}, "p", {"y": 2, "x": 1})
    assert a == b
    s1 = response_key("fp", None, "p", {}, seed=1, item_id="i")
    s2 = response_key("fp", None, "p", {}, seed=2, item_id="i")
    s3 = response_key("fp", None, "p", {}, seed=1, item_id="j")
    assert len({response_key("fp", None, "p", {}), s1, s2, s3}) == 4


def test_call_key_names_prompts_in_order_batch_size_and_engine():
    from dispo.generate.cache import call_key

    k = call_key(["a", "b"], 4, "auto")
    assert len({k, call_key(["b", "a"], 4, "auto"), call_key(["a", "b"], 2, "auto"), call_key(["a"], 4, "auto")}) == 4
    assert call_key(["a", "b"], 4, "padded") != k and call_key(["a", "b"], 4, "auto") == k
    assert response_key(**BASE, call=k) != response_key(**BASE)


def test_put_get_roundtrip_counts_and_leaves_no_temp_files(tmp_path):
    cache = ResponseCache(tmp_path)
    key = response_key(**BASE)
    assert cache.get(key) is None
    cache.put(key, "hello", "stop", 3, engine="continuous")
    entry = cache.get(key)
    assert entry["output"] == "hello" and entry["finish_reason"] == "stop" and entry["n_tokens"] == 3
    assert (cache.hits, cache.misses, cache.generated_tokens) == (1, 1, 3)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / key[:2] / f"{key}.json"]
    assert len(cache) == 1


def test_corrupt_or_foreign_entry_is_a_miss_and_is_overwritten(tmp_path):
    cache = ResponseCache(tmp_path)
    key = response_key(**BASE)
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    for bad in [
        '{"key": "' + key + '", "output": "tru',
        "",
        "[]",
        json.dumps({"key": "other", "output": "x", "finish_reason": "stop", "n_tokens": 1}),
        json.dumps({"key": key, "output": "x", "finish_reason": "eos", "n_tokens": 1}),
    ]:
        path.write_text(bad)
        assert cache.get(key) is None
    cache.put(key, "fixed", "length", 8)
    assert cache.get(key)["output"] == "fixed"
    assert cache.misses == 5 and cache.hits == 1


def _writer(root: str, key: str, text: str, n: int) -> None:
    cache = ResponseCache(root)
    for _ in range(n):
        cache.put(key, text, "stop", len(text))


def test_concurrent_writers_and_readers_never_see_a_partial_entry(tmp_path):
    key = response_key(**BASE)
    text = "x" * 20000  # large enough that a non-atomic write would be observable
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), key, text, 40)) for _ in range(2)]
    for p in procs:
        p.start()
    reader = ResponseCache(tmp_path)
    seen = []
    while any(p.is_alive() for p in procs):
        entry = reader.get(key)
        if entry is not None:
            seen.append(entry["output"] == text)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert all(seen)
    assert reader.get(key)["output"] == text
    assert not [p for p in tmp_path.rglob("*.tmp")]
