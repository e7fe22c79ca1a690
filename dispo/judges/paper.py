"""`paper` judge: the paper's own judges, asking exactly what its release asked.

The prompts are not in dispo: they are read at run time from a checkout of the release
(`judge.paper_repo`, default `paper.repo`) by `dispo.core.paper_source`, each file hashed.
Four judges, each as its script ran it (file:line in docs/fidelity.md):

  mcas      phase 0 (phase0_audit/evaluate.py judge_mcas_single): one user turn, the release's
            prompt with {prompt} and {response[:2000]} filled (the cut is read from the
            placeholder itself), 5 tokens, the first 0/1/2 in the reply
  coverage  arcs 2-3 chef (eval/scripts/v1_full_v2.py ask_claim): per checklist claim one
            YES/NO call, CLAIM_SYS + CLAIM_TEMPLATE.format(q, r[:2500], claim), 5 tokens;
            coverage = YES / answered claims (a failed call is left out, as the release did)
  rubric    v4 (eval/scripts/eval_judge_rubric_v4.py): pass 1 classifies the question alone
            (CERT_SYSTEM + CERT_TEMPLATE, 30 tokens), pass 2 scores the five axes in one JSON
            reply (SCORE_SYSTEM + SCORE_TEMPLATE with the pass-1 label and r[:3000], 300 tokens)
  verbal    arc 2 (eval/scripts/path_b2_qwen35_humble.py classify_verbal): VERB_SYS +
            VERB_TPL.format(text=response[:2500]) (the response alone, no question), 5 tokens;
            'assert' if ASSERT is in the upper-cased reply, else 'hedge' if HEDGE is, else
            'assert' as the release did (judge.verbal_parse=release; strict: unscored)

`svr` and `hedge` are the lexical markers (the paper's SVR is lexical); `mcas5` has no release
prompt and is unscored with that reason.

Every Score.version names the task and the sha256 prefix of the release file its prompts came
from (`mcas-paper-<sha12>`; the judge's version joins the four), and every cached reply is keyed
by it, so a changed release text never reuses an old answer. The judge model answers through a
chat backend (`dispo.judges.chat`): an OpenAI-compatible endpoint, or a local model (`backend=hf`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from dispo.core.errors import ConfigError
from dispo.core.types import Score
from dispo.judges import JUDGES
from dispo.judges.base import Judge, JudgeRequest
from dispo.judges.chat import CallableChat, ChatBackend, ChatCall, ChatReply, make_chat
from dispo.judges.paper_parse import parse_certainty, parse_mcas, parse_rubric_json, parse_verbal, parse_yes_no

# the release instruments each judge reads (keys of dispo.core.paper_source.INSTRUMENTS)
TASK_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "mcas": ("mcas.phase0_judge",),
    "coverage": ("judge.coverage_system", "judge.coverage"),
    "rubric": (
        "judge.rubric_v4.pass1_system",
        "judge.rubric_v4.pass1",
        "judge.rubric_v4.pass2_system",
        "judge.rubric_v4.pass2",
    ),
    "verbal": ("judge.verbal_system", "judge.verbal"),
}
# the release's judge models (also pinned in conf/judge/paper.yaml and protocol facts)
MODELS = {
    "mcas": "claude-sonnet-4-20250514",  # phase0_audit/evaluate.py:889
    "coverage": "deepseek/deepseek-v3.2-exp",  # eval/scripts/v1_full_v2.py:35
    "rubric": "deepseek/deepseek-v3.2-exp",  # eval/scripts/eval_judge_rubric_v4.py:38
    "verbal": "deepseek/deepseek-v3.2-exp",  # eval/scripts/path_b2_qwen35_humble.py:39
}
MAX_TOKENS = {"mcas": 5, "coverage": 5, "rubric_pass1": 30, "rubric_pass2": 300, "verbal": 5}
RESPONSE_CHARS = {"coverage": 2500, "rubric": 3000, "verbal": 2500}  # MCAS's cut is in its prompt text
CERTAINTY_RULES = ("release", "strict")  # also the verbal_parse rules
NO_ENDPOINT = (
    "judge=paper (the paper's own judges, chosen by protocol=paper) has no endpoint: set "
    "judge.base_url=URL of an OpenAI-compatible server (e.g. https://openrouter.ai/api/v1, key in "
    "$OPENROUTER_API_KEY), or run them on a local model with judge.backend=hf judge.model=smollm2-135m"
)
_MCAS_FIELD = re.compile(r"\{(prompt|response)(?:\[:(\d+)\])?\}")


def _sha12(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:12]


def _settings(key: str, defaults: dict[str, int], given: dict | None) -> dict[str, int]:
    """The release's numbers, with the user's overrides; a typo'd task or a non-number is one line."""
    out = dict(defaults)
    for k, v in (given or {}).items():
        if k not in defaults:
            raise ConfigError(f"judge.{key}.{k}: unknown task; valid: {', '.join(defaults)}")
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"judge.{key}.{k} must be a positive integer, got {v!r}")
        out[k] = v
    return out


@JUDGES.register("paper")
class PaperJudge(Judge):
    name = "paper"

    def __init__(
        self,
        paper_repo: str | None = None,
        backend: str = "openai",
        base_url: str | None = None,
        model: str | None = None,
        models: dict[str, str] | None = None,
        api_key_env: str | None = "OPENROUTER_API_KEY",
        max_tokens: dict[str, int] | None = None,
        response_chars: dict[str, int] | None = None,
        certainty_parse: str = "release",
        verbal_parse: str = "release",
        temperature: float = 0.0,
        concurrency: int = 5,
        timeout_s: float = 180.0,
        max_retries: int = 2,
        backoff: float = 1.0,
        batch_size: int = 8,
        device: str | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        chat: ChatBackend | Callable[[list[dict], int], str] | None = None,
    ):
        from dispo.core.paper_source import read_instrument
        from dispo.judges.cache import JudgementCache

        for key, rule in (("certainty_parse", certainty_parse), ("verbal_parse", verbal_parse)):
            if rule not in CERTAINTY_RULES:
                raise ConfigError(f"judge.{key} must be one of {', '.join(CERTAINTY_RULES)}, got {rule!r}")
        self.ins = {k: read_instrument(paper_repo, k) for keys in TASK_INSTRUMENTS.values() for k in keys}
        self.instruments = list(self.ins.values())  # evaluate_arm records them in manifest.json
        # each task's prompts come from one release file: its sha256 prefix names the version, so
        # a Score can be traced to manifest.json's paper_instruments by eye
        files = {task: sorted({self.ins[k].sha256 for k in keys}) for task, keys in TASK_INSTRUMENTS.items()}
        self.tags = {
            task: f"{task}-paper-{shas[0][:12] if len(shas) == 1 else _sha12(*shas)}" for task, shas in files.items()
        }
        self.version = "paper-" + "-".join(t.rsplit("-", 1)[1] for t in self.tags.values())
        self.max_tokens = _settings("max_tokens", MAX_TOKENS, max_tokens)
        self.response_chars = _settings("response_chars", RESPONSE_CHARS, response_chars)
        self.certainty_parse = certainty_parse
        self.verbal_parse = verbal_parse
        self._check_templates()
        self.models = {**MODELS, **(models or {})}
        http = dict(api_key_env=api_key_env, temperature=temperature, timeout_s=timeout_s, max_retries=max_retries)
        conn = dict(base_url=base_url, concurrency=concurrency, batch_size=batch_size, device=device)
        self.chats = self._backends(chat, backend, model, conn, {**http, "backoff": backoff})
        self.temperature = float(temperature)
        self.cache = JudgementCache(cache_dir) if cache else None

    # --- setup ------------------------------------------------------------------------------
    def _backends(self, chat, backend: str, model: str | None, conn: dict, http: dict) -> dict[str, ChatBackend]:
        """One chat backend per task (the release used different judge models); one per distinct model."""
        tasks = tuple(TASK_INSTRUMENTS)
        if chat is not None:
            one = chat if isinstance(chat, ChatBackend) else CallableChat(chat)
            return dict.fromkeys(tasks, one)
        if backend == "openai" and not conn["base_url"]:
            raise ConfigError(NO_ENDPOINT)
        if backend == "hf" and not model:
            raise ConfigError("judge.backend=hf needs judge.model=NAME (a dispo model name, directory or .gguf)")
        made: dict[str, ChatBackend] = {}
        out = {}
        for task in tasks:
            name = str(model or self.models.get(task) or "")
            if not name:
                raise ConfigError(
                    f"judge=paper has no model for {task}: set judge.models.{task}=NAME or judge.model=NAME"
                )
            if name not in made:
                made[name] = make_chat(backend, name, **conn, http=http)
            out[task] = made[name]
        return out

    def _check_templates(self) -> None:
        """Fail at construction, in one line, if this release's texts have fields dispo does not fill."""
        mcas = self.ins["mcas.phase0_judge"].text
        fields = {m.group(1) for m in _MCAS_FIELD.finditer(mcas)}
        if fields != {"prompt", "response"}:
            raise ConfigError(
                f"the release's MCAS judge prompt has fields {sorted(fields)}, not prompt and response "
                "(is paper.repo the right version?)"
            )
        for key, kw in (
            ("judge.coverage", dict(q="", r="", claim="")),
            ("judge.rubric_v4.pass1", dict(q="")),
            ("judge.rubric_v4.pass2", dict(cert="", q="", r="")),
            ("judge.verbal", dict(text="")),
        ):
            try:
                self.ins[key].text.format(**kw)
            except (KeyError, IndexError, ValueError) as e:
                raise ConfigError(
                    f"the release's {key} template cannot be filled with {sorted(kw)} ({type(e).__name__}: {e}); "
                    "is paper.repo the right version?"
                ) from None

    # --- the exact messages the release sent --------------------------------------------------
    def mcas_messages(self, question: str, response: str) -> list[dict[str, str]]:
        def sub(m: re.Match) -> str:
            value = question if m.group(1) == "prompt" else response
            return value[: int(m.group(2))] if m.group(2) else value

        # one pass over the template, so a '{prompt}' inside the response is never re-filled
        return [{"role": "user", "content": _MCAS_FIELD.sub(sub, self.ins["mcas.phase0_judge"].text)}]

    def coverage_messages(self, question: str, response: str, claim: str) -> list[dict[str, str]]:
        r = response[: self.response_chars["coverage"]]
        return [
            {"role": "system", "content": self.ins["judge.coverage_system"].text},
            {"role": "user", "content": self.ins["judge.coverage"].text.format(q=question, r=r, claim=claim)},
        ]

    def certainty_messages(self, question: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.ins["judge.rubric_v4.pass1_system"].text},
            {"role": "user", "content": self.ins["judge.rubric_v4.pass1"].text.format(q=question)},
        ]

    def rubric_messages(self, question: str, response: str, certainty: str) -> list[dict[str, str]]:
        r = response[: self.response_chars["rubric"]]
        return [
            {"role": "system", "content": self.ins["judge.rubric_v4.pass2_system"].text},
            {"role": "user", "content": self.ins["judge.rubric_v4.pass2"].text.format(cert=certainty, q=question, r=r)},
        ]

    def verbal_messages(self, response: str) -> list[dict[str, str]]:
        # classify_verbal(text) saw the response alone: VERB_TPL.format(text=text[:2500])
        r = response[: self.response_chars["verbal"]]
        return [
            {"role": "system", "content": self.ins["judge.verbal_system"].text},
            {"role": "user", "content": self.ins["judge.verbal"].text.format(text=r)},
        ]

    # --- asking, with the reply cache ---------------------------------------------------------
    def _prompt_tag(self, task: str) -> str:
        return self.tags[task.split("_pass")[0]]

    def _ask(self, task: str, messages: list[list[dict[str, str]]]) -> list[ChatReply]:
        """Replies in order: cache hits first, each distinct miss asked once, answers stored."""
        from dispo.judges.cache import judgement_key

        chat = self.chats[task.split("_pass")[0]]
        budget = self.max_tokens[task]
        calls = [ChatCall(tuple((m["role"], m["content"]) for m in msgs), budget) for msgs in messages]
        model_id = chat.model_id() if calls else ""
        keys = [
            judgement_key(
                self.name,
                model_id,
                self._prompt_tag(task),
                {"messages": [list(m) for m in c.messages], "max_tokens": budget},
            )
            for c in calls
        ]
        got: dict[str, ChatReply] = {}
        misses: dict[str, ChatCall] = {}
        for k, c in zip(keys, calls):
            if k in got or k in misses:
                continue
            hit = self.cache.get(k) if self.cache else None
            if hit is not None and isinstance(hit.get("text"), str):
                got[k] = ChatReply(hit["text"])
            else:
                misses[k] = c
        if misses:
            replies = chat.complete(list(misses.values()))
            if len(replies) != len(misses):
                raise RuntimeError(f"chat backend returned {len(replies)} replies for {len(misses)} calls")
            for k, rep in zip(misses, replies):
                got[k] = rep
                if self.cache and rep.text is not None:
                    self.cache.put(k, {"text": rep.text})
        return [got[k] for k in keys]

    def _unscored(self, task: str, reason: str | None) -> Score:
        return Score.unscored(f"{self.name}.{task}", self.tags.get(task, task), reason or "judge gave no answer")

    # --- the judges ---------------------------------------------------------------------------
    def mcas(self, reqs: list[JudgeRequest]) -> list[Score]:
        replies = self._ask("mcas", [self.mcas_messages(r.question, r.response) for r in reqs])
        out = []
        for rep in replies:
            if rep.text is None:
                out.append(self._unscored("mcas", f"MCAS judge call failed: {rep.reason}"))
                continue
            value, why = parse_mcas(rep.text)
            if value is None:
                out.append(self._unscored("mcas", why))
            else:
                out.append(Score(f"{self.name}.mcas", self.tags["mcas"], value, detail={"reply": rep.text[:80]}))
        return out

    def coverage(self, reqs: list[JudgeRequest]) -> list[Score]:
        msgs, spans = [], []
        for r in reqs:
            start = len(msgs)
            msgs += [self.coverage_messages(r.question, r.response, c) for c in r.claims]
            spans.append((start, len(msgs)))
        replies = self._ask("coverage", msgs)
        out = []
        for a, b in spans:
            if a == b:
                out.append(self._unscored("coverage", "no checklist claims for this item"))
                continue
            flags: list[bool | None] = []
            answers: list[str | None] = []
            problems: list[str] = []
            for rep in replies[a:b]:
                answers.append(None if rep.text is None else rep.text[:40])
                if rep.text is None:
                    flags.append(None)
                    problems.append(f"call failed: {rep.reason}")
                    continue
                flag, why = parse_yes_no(rep.text)
                flags.append(flag)
                if why:
                    problems.append(why)
            answered = [f for f in flags if f is not None]
            if not answered:
                out.append(self._unscored("coverage", f"no claim judged ({problems[0]})"))
                continue
            detail = {"claims": flags, "answers": answers, "n_answered": len(answered)}
            if problems:
                detail["unanswered"] = problems
            out.append(
                Score(f"{self.name}.coverage", self.tags["coverage"], sum(answered) / len(answered), detail=detail)
            )
        return out

    def rubric(self, reqs: list[JudgeRequest]) -> list[Score]:
        # pass 1 sees the question only (response-blind); identical questions are asked once
        pass1 = self._ask("rubric_pass1", [self.certainty_messages(r.question) for r in reqs])
        certs: list[tuple[str | None, str | None]] = []
        for rep in pass1:
            if rep.text is None:
                certs.append((None, f"pass 1 (certainty) call failed: {rep.reason}"))
            else:
                certs.append(parse_certainty(rep.text, self.certainty_parse))
        todo = [i for i, (c, _) in enumerate(certs) if c is not None]
        pass2 = self._ask(
            "rubric_pass2", [self.rubric_messages(reqs[i].question, reqs[i].response, certs[i][0]) for i in todo]
        )
        by_req = dict(zip(todo, pass2))
        out = []
        for i, r in enumerate(reqs):
            cert, why = certs[i]
            if cert is None:
                out.append(self._unscored("rubric", why))
                continue
            rep = by_req[i]
            if rep.text is None:
                out.append(self._unscored("rubric", f"pass 2 call failed: {rep.reason}"))
                continue
            value, why = parse_rubric_json(rep.text)
            if value is None:
                out.append(self._unscored("rubric", why))
                continue
            detail: dict[str, Any] = {
                "certainty": cert,
                "certainty_source": "pass1",
                "certainty_rule": self.certainty_parse,
                "certainty_reply": (pass1[i].text or "")[:40],
            }
            if r.certainty:
                detail["gold_certainty"] = r.certainty  # recorded, not used: v4 classifies the question itself
            out.append(Score(f"{self.name}.rubric", self.tags["rubric"], value, detail=detail))
        return out

    def verbal(self, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for rep in self._ask("verbal", [self.verbal_messages(r.response) for r in reqs]):
            if rep.text is None:  # the release's or_call gave '' and so 'assert'; dispo: unscored
                out.append(self._unscored("verbal", f"verbal judge call failed: {rep.reason}"))
                continue
            value, why = parse_verbal(rep.text, self.verbal_parse)
            if value is None:
                out.append(self._unscored("verbal", why))
                continue
            detail: dict[str, Any] = {"reply": rep.text[:40], "rule": self.verbal_parse}
            if why:  # release rule: neither word, defaulted to 'assert' as the script did
                detail["defaulted"] = why
            out.append(Score(f"{self.name}.verbal", self.tags["verbal"], value, detail=detail))
        return out

    def mcas5(self, reqs: list[JudgeRequest]) -> list[Score]:
        why = "the paper's release has no /25 MCAS judge prompt; score mcas5 with judge=openai or judge=hf"
        return [Score.unscored(f"{self.name}.mcas5", "mcas5-paper", why) for _ in reqs]

    def svr(self, reqs: list[JudgeRequest]) -> list[Score]:
        from dispo.judges.lexical import LexicalJudge

        return LexicalJudge().svr(reqs)  # the paper's SVR is lexical (phase0_audit/evaluate.py eval_svr)

    def hedge(self, reqs: list[JudgeRequest]) -> list[Score]:
        from dispo.judges.lexical import LexicalJudge

        return LexicalJudge().hedge(reqs)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "tasks": dict(self.tags),
            "backends": {task: chat.describe() for task, chat in self.chats.items()},
            "max_tokens": self.max_tokens,
            "response_chars": self.response_chars,
            "certainty_parse": self.certainty_parse,
            "verbal_parse": self.verbal_parse,
            "temperature": self.temperature,
            "paper_instruments": {i.name: i.record() for i in self.instruments},
        }
