"""The HTTP judge against a real local server: retries, budget, concurrency, cache, key hygiene."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dispo.core.errors import ConfigError
from dispo.judges import get_judge
from dispo.judges.base import AXES, JudgeRequest

REQ = JudgeRequest(question="How do I rescue a split hollandaise?", response="Whisk it into a fresh yolk.")


def judge(server, cache_dir, **kw):
    args = dict(
        base_url=server.url,
        model="test-model",
        timeout_s=2.0,
        max_retries=2,
        backoff=0.01,
        concurrency=4,
        cache_dir=cache_dir,
        api_key_env="DISPO_TEST_JUDGE_KEY",
    )
    args.update(kw)
    return get_judge("openai", **args)


def test_plain_answer_is_parsed_and_tagged_with_prompt_version(server, cache_dir):
    server.script = [("ok", "HEDGE")]
    [s] = judge(server, cache_dir).verbal([REQ])
    assert (s.status, s.value, s.version, s.scorer) == ("ok", "hedge", "verbal-v1", "openai.verbal")
    sent = server.requests[0]["body"]
    assert sent["temperature"] == 0 and sent["model"] == "test-model"
    assert REQ.response in sent["messages"][-1]["content"]


def test_429_retry_after_is_honored(server, cache_dir):
    server.script = [("429", "0.2"), ("ok", "ASSERT")]
    [s] = judge(server, cache_dir).verbal([REQ])
    assert s.value == "assert"
    t0, t1 = (r["t"] for r in server.requests)
    assert t1 - t0 >= 0.2  # backoff alone would be 0.01 s


def test_500_then_success(server, cache_dir):
    server.script = [("500",), ("ok", "YES")]
    [s] = judge(server, cache_dir).coverage([JudgeRequest("q", "r", claims=["c"])])
    assert s.value == 1.0 and server.actions() == ["500", "ok"]


@pytest.mark.parametrize("failure", [("reset",), ("malformed",), ("truncated",), ("empty",)])
def test_transient_failures_are_retried(server, cache_dir, failure):
    server.script = [failure, ("ok", "NO")]
    [s] = judge(server, cache_dir).coverage([JudgeRequest("q", "r", claims=["c"])])
    assert s.status == "ok" and s.value == 0.0
    assert server.actions() == [failure[0], "ok"]


def test_timeout_is_retried(server, cache_dir):
    server.script = [("sleep", 1.0), ("ok", "ASSERT")]
    t0 = time.monotonic()
    [s] = judge(server, cache_dir, timeout_s=0.3).verbal([REQ])
    assert s.value == "assert"
    assert time.monotonic() - t0 < 0.9  # did not wait for the slow reply


def test_budget_exhausted_gives_unscored_with_reason(server, cache_dir):
    server.script = [("500",)] * 3
    [s] = judge(server, cache_dir, max_retries=2).verbal([REQ])
    assert s.status == "unscored" and s.value is None
    assert "3 attempts" in s.reason and "HTTP 500" in s.reason
    assert len(server.requests) == 3


def test_unparseable_answer_is_unscored_without_retry_and_not_cached(server, cache_dir):
    server.script = [("ok", "Probably assert, I think")]
    j = judge(server, cache_dir)
    [s] = j.verbal([REQ])
    assert s.status == "unscored" and "unparseable" in s.reason
    assert len(server.requests) == 1
    [again] = j.verbal([REQ])  # not cached: asked again, and this time answered
    assert again.value == "assert" and len(server.requests) == 2


def test_client_error_fails_fast(server, cache_dir):
    server.script = [("401",), ("ok", "ASSERT")]
    [s] = judge(server, cache_dir).verbal([REQ])
    assert s.status == "unscored" and "HTTP 401" in s.reason
    assert len(server.requests) == 1  # a bad key is not retried


def test_requests_run_concurrently(server, cache_dir):
    server.hold_s = 0.15
    reqs = [JudgeRequest(f"q{i}", f"r{i}") for i in range(8)]
    t0 = time.monotonic()
    scores = judge(server, cache_dir, concurrency=4).verbal(reqs)
    elapsed = time.monotonic() - t0
    assert all(s.status == "ok" for s in scores)
    assert server.max_in_flight >= 3
    assert elapsed < 8 * 0.15  # serial would take at least 1.2 s


def test_repeated_request_is_served_from_cache(server, cache_dir):
    j = judge(server, cache_dir)
    first = j.verbal([REQ])
    n = len(server.requests)
    fresh = judge(server, cache_dir)  # a new judge (new process, same cache dir)
    second = fresh.verbal([REQ])
    assert len(server.requests) == n == 1
    assert second[0].value == first[0].value


def test_api_key_sent_but_never_stored(server, cache_dir, monkeypatch):
    secret = "sk-test-SECRET-1234567890"
    monkeypatch.setenv("DISPO_TEST_JUDGE_KEY", secret)
    j = judge(server, cache_dir)
    j.verbal([REQ])
    j.rubric([REQ])
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert secret not in json.dumps(j.describe())
    assert j.describe()["api_key_env"] == "DISPO_TEST_JUDGE_KEY"
    assert secret not in repr(vars(j))
    files = list(Path(cache_dir).rglob("*.json"))
    assert files and all(secret not in f.read_text() for f in files)


def test_rubric_is_two_pass_and_response_blind(server, cache_dir):
    answers = {"CERTAIN": "UNCERTAIN"}

    def reply(body):
        content = body["messages"][-1]["content"]
        if "Reply: CERTAIN, UNCERTAIN or AMBIGUOUS" in content:
            assert REQ.response not in content  # pass 1 never sees the response
            return answers["CERTAIN"]
        assert "classified, without seeing any response, as: UNCERTAIN" in content
        assert "hedging is expected" in content and "verbosity" in content
        return "4"

    server.reply = reply
    [s] = judge(server, cache_dir).rubric([REQ])
    assert s.status == "ok", s.reason
    assert s.value == {a: 4 for a in AXES} and s.detail["certainty"] == "UNCERTAIN"
    assert s.version == "rubric-v1"
    assert len(server.requests) == 1 + len(AXES)


def test_rubric_with_unparseable_axis_is_unscored(server, cache_dir):
    server.reply = lambda body: "CERTAIN" if "AMBIGUOUS" in body["messages"][-1]["content"].splitlines()[-1] else "four"
    [s] = judge(server, cache_dir).rubric([REQ])
    assert s.status == "unscored" and "axis" in s.reason


def test_model_name_is_required():
    with pytest.raises(ConfigError):
        get_judge("openai", base_url="http://127.0.0.1:9/v1", model="")
