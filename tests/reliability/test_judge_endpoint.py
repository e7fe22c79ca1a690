"""A misbehaving OpenAI-compatible judge endpoint, and the judge's API key.

A loopback http.server answers the verbal (ASSERT/HEDGE) queries of `dispo eval
judge=openai`: the first distinct query always gets HTTP 500, the second always gets
malformed JSON, the third gets one 500 and then a good answer, the rest good answers. The
retry budget is small (max_retries=2, backoff=0), so the first two are exhausted.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SECRET = "sk-secret-123"


class _Judge:
    def __init__(self):
        self.lock = threading.Lock()
        self.fate: dict[str, str] = {}  # query content -> always500 | malformed | flaky | ok
        self.calls: dict[str, int] = {}
        self.auth: set[str] = set()

    def decide(self, content: str) -> str:
        with self.lock:
            if content not in self.fate:
                order = ("always500", "malformed", "flaky")
                self.fate[content] = order[len(self.fate)] if len(self.fate) < len(order) else "ok"
            self.calls[content] = self.calls.get(content, 0) + 1
            fate, n = self.fate[content], self.calls[content]
        if fate == "flaky":
            return "500" if n == 1 else "ok"
        return {"always500": "500", "malformed": "malformed"}.get(fate, "ok")


@pytest.fixture
def judge_server():
    state = _Judge()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.auth.add(self.headers.get("Authorization", ""))
            content = json.dumps(body["messages"], sort_keys=True)
            action = state.decide(content)
            if action == "500":
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"internal error")
                return
            if action == "malformed":
                payload = b'{"choices": [{"message": {"content": "ASS'
            else:
                label = "HEDGE" if len(content) % 2 else "ASSERT"
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": label}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    state.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield state
    srv.shutdown()
    srv.server_close()


def cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run dispo's real entry point in-process; returns (exit code, stdout, stderr)."""
    from tests.helpers.cli import cli as run

    return run(*args)


def _all_text(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for r in roots if r.exists() for p in r.rglob("*") if p.is_file()}


def test_failing_judge_items_are_unscored_counted_and_falsify_runs_and_key_never_written(
    judge_server, dispo_cache, tmp_path, monkeypatch, capsys
):
    """Protects: the openai judge's bounded retries (5xx and malformed JSON retried, then
    `unscored` with the reason), summary's n_unscored accounting (an unscored item is never a
    0), falsify completing on a run with unscored items, and api_key_env handling: the key
    reaches the server as a Bearer header but appears in no file of the run dir (config,
    manifest, samples, results, report, falsify output), the judgement/response caches, or
    the command output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPO_TEST_KEY", SECRET)
    overrides = [
        "model=tiny-llama",
        "domain=code",
        "limit=4",
        "decoding.max_new_tokens=8",
        "judge=openai",
        f"judge.base_url={judge_server.url}",
        "judge.model=test-judge",
        "judge.api_key_env=DISPO_TEST_KEY",
        "judge.max_retries=2",
        "judge.backoff=0",
        "judge.concurrency=2",
        "arms={dd:{system_prompt:'Answer carefully.'}}",
    ]
    code, out, err = cli(["eval", *overrides, "-q"], monkeypatch, capsys)
    assert code == 0, err
    run = next((tmp_path / "runs").iterdir())

    # the server's view: which queries failed for good
    assert judge_server.auth == {f"Bearer {SECRET}"}
    dead = {c for c, f in judge_server.fate.items() if f in ("always500", "malformed")}
    assert len(dead) == 2 and "flaky" in judge_server.fate.values()
    assert all(judge_server.calls[c] == 3 for c in dead)  # 1 try + max_retries=2, then gave up

    samples = {
        a: [json.loads(x) for x in (run / "samples" / f"{a}.jsonl").read_text().splitlines()] for a in ("base", "dd")
    }
    verbal = [s["scores"]["verbal:openai"] for arm in samples.values() for s in arm]
    unscored = [v for v in verbal if v["status"] == "unscored"]
    assert len(unscored) == 2
    assert all("gave up after 3 attempts" in v["reason"] for v in unscored)
    reasons = " ".join(v["reason"] for v in unscored)
    assert "HTTP 500" in reasons and "malformed JSON" in reasons
    assert all(v["value"] is None for v in unscored)

    results = json.loads((run / "results.json").read_text())
    for arm, rows in samples.items():
        n_bad = sum(1 for s in rows if s["scores"]["verbal:openai"]["status"] == "unscored")
        m = results["metrics"][arm]["hallucination_rate"]
        assert m["source"] == "correct=tests,verbal=openai"
        assert m["n_unscored"] == n_bad and m["n"] == len(rows) - n_bad

    code, fout, ferr = cli(["falsify", str(run), "falsify.seeds=[1]", "-q"], monkeypatch, capsys)
    assert code == 0, ferr
    fz = json.loads((run / "falsify" / "falsify.json").read_text())
    assert fz["claims"] and all(c["verdict"] in ("SURVIVES", "FALSIFIED", "INCONCLUSIVE") for c in fz["claims"])

    files = _all_text(run, dispo_cache / "judgements", dispo_cache / "responses")
    assert any("falsify" in p for p in files)
    leaks = [p for p, data in files.items() if SECRET.encode() in data]
    assert leaks == []
    assert SECRET not in out + err + fout + ferr
    # the variable's NAME is recorded (provenance), its value never is
    assert "DISPO_TEST_KEY" in (run / "manifest.json").read_text()
