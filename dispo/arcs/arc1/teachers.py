"""Arc 1's four-stage teacher pipeline: Eager -> Deliberate -> Adversarial -> Synthesizer.

Each stage is a configured teacher (a backend + model + its own versioned system prompt from
`dispo/prompts/teachers/<stage>.<version>.txt`). Stage k sees the question plus the outputs of
stages 1..k-1; the Synthesizer's answer is the training target. In `correct` mode (failure
traces) every stage also sees the student's own failing answer.

Backends:
  hf      a local model (`dispo.models.loading.load_model`) generating through dispo's engine,
          with its response cache (a rerun regenerates nothing)
  openai  any OpenAI-compatible /v1/chat/completions endpoint, stdlib HTTP; the API key is
          read at request time from the env var NAMED by `api_key_env`, never stored or logged

Stage outputs are also written to the run (`teachers/<pass>/<stage>.jsonl`, one line per item
with a key over everything that decides the answer), so a resumed run skips finished stages
and items even with the response cache cleared.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

from dispo.core import atomic
from dispo.core.errors import ConfigError, DispoError
from dispo.core.paths import PROMPTS_DIR
from dispo.core.types import Item

STAGES = ("eager", "deliberate", "adversarial", "synthesizer")
STAGE_TITLES = {
    "eager": "Eager teacher",
    "deliberate": "Deliberate teacher",
    "adversarial": "Adversarial teacher",
    "synthesizer": "Synthesizer",
}


# --------------------------------------------------------------------------- prompts


def load_stage_prompt(name: str) -> tuple[str, str]:
    """(text, tag) of a teacher prompt file; name is `<stage>.<version>` or a path."""
    p = Path(name)
    if not p.suffix == ".txt":
        p = PROMPTS_DIR / "teachers" / f"{name}.txt"
    if not p.exists():
        avail = sorted(q.stem for q in (PROMPTS_DIR / "teachers").glob("*.txt"))
        raise ConfigError(f"teacher prompt {name!r} not found ({p}); available: {', '.join(avail)}")
    text = p.read_text(encoding="utf-8").strip()
    return text, f"{p.stem}@{hashlib.sha256(text.encode()).hexdigest()[:12]}"


# Which earlier stages each stage sees. chain: all earlier ones (dispo's default).
# paper: scripts/pipeline_type1_gold.py:349-407, stages 2 and 3 each see only stage 1 (they
# ran in parallel), the synthesizer sees all three.
TOPOLOGIES = {
    "chain": {s: STAGES[:i] for i, s in enumerate(STAGES)},
    "paper": {
        "eager": (),
        "deliberate": ("eager",),
        "adversarial": ("eager",),
        "synthesizer": ("eager", "deliberate", "adversarial"),
    },
}
# the paper's prompt placeholders for earlier stages' outputs (pipeline_type1_gold.py:351-400)
PAPER_FIELDS = {"eager": "stage1_response", "deliberate": "deliberate_review", "adversarial": "adversarial_critique"}


def paper_stage_messages(
    stage: str, template: str, question: str, previous: dict[str, str], sees: Sequence[str]
) -> list[dict[str, str]]:
    """protocol=paper: one user turn, the release's stage template filled in (no system turn)."""
    from dispo.core.paper_source import fill

    fields = {"prompt": question}
    for s in sees:
        fields[PAPER_FIELDS[s]] = previous.get(s, "")
    return [{"role": "user", "content": fill(template, **fields)}]


def strip_think_blocks(text: str) -> str:
    import re

    return re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL).strip()


def stage_messages(
    stage: str, system: str, question: str, previous: dict[str, str], student_answer: str | None = None
) -> list[dict[str, str]]:
    """The chat a stage's teacher sees: its system prompt, the question, earlier stages."""
    parts = [f"Question:\n{question.strip()}"]
    if student_answer is not None:
        parts.append(f"A student's answer (it FAILED its check):\n{student_answer.strip()}")
    for s in STAGES:
        if s == stage:
            break
        if s in previous:
            parts.append(f"{STAGE_TITLES[s]}'s output:\n{previous[s].strip()}")
    parts.append(f"Now write the {STAGE_TITLES[stage]}'s output.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


# --------------------------------------------------------------------------- backends


class Teacher(ABC):
    """Generates one answer per chat (a list of message lists)."""

    @abstractmethod
    def generate(self, chats: list[list[dict]], ids: list[str]) -> list[dict]:
        """[{"output", "finish_reason"}] in order."""

    @abstractmethod
    def describe(self) -> dict: ...


class HFTeacher(Teacher):
    def __init__(
        self, model: str | dict, decoding: dict, seed: int = 0, loader: Callable | None = None, progress: bool = False
    ):
        self.model_spec = model
        self.decoding = dict(decoding)
        self.seed = seed
        self.progress = progress
        self._loader = loader
        self._lm = None

    @property
    def lm(self):
        if self._lm is None:
            from dispo.models.loading import load_model

            self._lm = (self._loader or load_model)(self.model_spec)
        return self._lm

    def generate(self, chats, ids):
        from dispo.generate.engine import generate

        gens = generate(
            self.lm, list(zip(ids, chats)), self.decoding, seed=self.seed, cache=True, progress=self.progress
        )
        return [{"output": g.output, "finish_reason": g.finish_reason} for g in gens]

    def describe(self):
        spec = {"name": self.model_spec} if isinstance(self.model_spec, str) else self.model_spec
        fp = self._lm.fingerprint if self._lm is not None else None
        dtype = {"dtype": spec["dtype"]} if spec.get("dtype") else {}
        return {
            "backend": "hf",
            "model": spec.get("name"),
            **dtype,
            "fingerprint": fp,
            "decoding": self.decoding,
            "seed": self.seed,
        }


def chat_completion(
    base_url: str,
    model: str,
    messages: list[dict],
    *,
    api_key_env: str | None,
    max_tokens: int,
    temperature: float,
    timeout: float = 120.0,
    max_retries: int = 4,
    backoff: float = 2.0,
    extra: dict | None = None,
) -> dict:
    """One /chat/completions call with retries on 429/5xx/connection errors; stdlib only."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps(
        {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, **(extra or {})}
    ).encode()
    last = "no attempt"
    for attempt in range(max_retries + 1):
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = json.loads(r.read().decode("utf-8"))
            choice = data["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
            return {"output": text, "finish_reason": "length" if choice.get("finish_reason") == "length" else "stop"}
        except urllib.error.HTTPError as e:
            if e.code != 429 and e.code < 500:
                raise DispoError(
                    f"teacher endpoint {url} refused the request (HTTP {e.code}); check "
                    f"model={model!r} and the key in ${api_key_env}"
                ) from None
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            last = type(e).__name__
        except (ValueError, KeyError, IndexError) as e:
            last = f"malformed response ({type(e).__name__})"
        if attempt < max_retries:
            time.sleep(backoff * 2**attempt)
    raise DispoError(f"teacher endpoint {url} failed after {max_retries + 1} attempts ({last})")


class OpenAITeacher(Teacher):
    def __init__(
        self,
        base_url: str | None,
        model: str | None,
        decoding: dict,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 4,
        extra: dict | None = None,
        **_: Any,
    ):
        if not base_url or not model:
            raise ConfigError(
                "an openai teacher needs base_url and model (fill them in the teacher set yaml, "
                "e.g. arc.teachers.stages.eager.base_url=http://HOST:8000/v1)"
            )
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self.decoding, self.concurrency, self.timeout, self.max_retries = (
            dict(decoding),
            concurrency,
            timeout,
            max_retries,
        )
        # request-body extras (provider routing, thinking switches) and top_p when set
        self.extra = {**(extra or {}), **({"top_p": float(decoding["top_p"])} if "top_p" in decoding else {})}

    def generate(self, chats, ids):
        from concurrent.futures import ThreadPoolExecutor

        def one(msgs):
            return chat_completion(
                self.base_url,
                self.model,
                msgs,
                api_key_env=self.api_key_env,
                max_tokens=int(self.decoding.get("max_new_tokens", 1024)),
                temperature=float(self.decoding.get("temperature", 0.0)),
                timeout=self.timeout,
                max_retries=self.max_retries,
                extra=self.extra or None,
            )

        with ThreadPoolExecutor(max(1, int(self.concurrency))) as ex:
            return list(ex.map(one, chats))

    def describe(self):
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "decoding": self.decoding,
            **({"extra": self.extra} if self.extra else {}),
        }


def shared_model_loader() -> Callable[[Any], Any]:
    """A model loader that loads each distinct spec once: teacher roles on the same local model
    (the four stages, the data-type roles, the pool's two teachers) share one copy in memory."""
    lms: dict[str, Any] = {}

    def load(spec):
        from dispo.models.loading import load_model

        k = json.dumps(spec, sort_keys=True, default=str)
        if k not in lms:
            lms[k] = load_model(spec)
        return lms[k]

    return load


def hf_teacher_spec(stage_cfg: dict) -> str | dict:
    """The model a local stage loads: its registry name, or that spec with the stage's `dtype`
    (bfloat16 teachers decode about 2x faster on CPUs with AMX/AVX512-BF16; the dtype is part
    of the model's fingerprint, so it keys the response cache and is recorded per stage)."""
    if not stage_cfg.get("dtype"):
        return stage_cfg["model"]
    from dispo.models.registry import get_spec

    return {**get_spec(stage_cfg["model"]), "dtype": stage_cfg["dtype"]}


def build_teacher(
    stage_cfg: dict,
    default_decoding: dict,
    seed: int = 0,
    loader: Callable | None = None,
    progress: bool = False,
    base_url: str | None = None,
) -> Teacher:
    decoding = {**(default_decoding or {}), **(stage_cfg.get("decoding") or {})}
    backend = stage_cfg.get("backend", "hf")
    if backend == "hf":
        if not stage_cfg.get("model"):
            raise ConfigError("an hf teacher needs model (a dispo/conf/model name, e.g. smollm2-135m)")
        return HFTeacher(hf_teacher_spec(stage_cfg), decoding, seed=seed, loader=loader, progress=progress)
    if backend == "openai":
        return OpenAITeacher(
            stage_cfg.get("base_url") or base_url,
            stage_cfg.get("model"),
            decoding,
            api_key_env=stage_cfg.get("api_key_env"),
            concurrency=stage_cfg.get("concurrency", 4),
            extra=stage_cfg.get("extra"),
        )
    raise ConfigError(f"teacher backend {backend!r}; valid: hf, openai")


# --------------------------------------------------------------------------- pipeline


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class TeacherPipeline:
    """Runs the four stages over items, caching each stage's outputs under `cache_dir`."""

    def __init__(
        self,
        teachers: dict[str, Teacher],
        prompts: dict[str, str],
        cache_dir: str | Path | None = None,
        topology: str = "chain",
        paper_repo: str | None = None,
        strip_think: Sequence[str] = (),
    ):
        from dispo.core.paper_source import is_paper_ref, read_instrument

        missing = [s for s in STAGES if s not in teachers]
        if missing:
            raise ConfigError(f"teacher set lacks stage(s) {missing}; it needs {', '.join(STAGES)}")
        if topology not in TOPOLOGIES:
            raise ConfigError(f"arc.teachers.topology={topology!r}; valid: {', '.join(TOPOLOGIES)}")
        self.teachers = teachers
        self.topology, self.strip_think = topology, set(strip_think)
        self.prompts, self.paper_stages, self.instruments = {}, set(), []
        for s in STAGES:
            name = prompts.get(s, f"{s}.v1")
            if is_paper_ref(name):  # the release's own stage prompt, read from paper.repo
                ins = read_instrument(paper_repo, name)
                self.prompts[s] = (ins.text, f"{name}@{ins.sha256[:12]}")
                self.paper_stages.add(s)
                self.instruments.append(ins)
            else:
                self.prompts[s] = load_stage_prompt(name)
        self.cache_dir = Path(cache_dir) if cache_dir else None

    @classmethod
    def from_config(
        cls,
        tcfg: dict,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        teacher_factory: Callable[[str, dict, dict], Teacher] | None = None,
        progress: bool = False,
    ) -> "TeacherPipeline":
        stages = tcfg.get("stages") or {}
        default_dec = dict(tcfg.get("decoding") or {})
        teachers: dict[str, Teacher] = {}
        shared: dict[str, Teacher] = {}  # stages with the same model and decoding share one teacher
        # stages on the same local model share one loaded copy, whatever their decoding
        shared_loader = shared_model_loader()

        for s in STAGES:
            scfg = dict(stages.get(s) or {})
            if teacher_factory is not None:
                teachers[s] = teacher_factory(s, scfg, default_dec)
                continue
            dec = {**default_dec, **(scfg.get("decoding") or {})}
            k = json.dumps(
                [scfg.get("backend", "hf"), scfg.get("model"), scfg.get("dtype"), scfg.get("base_url"), dec],
                sort_keys=True,
                default=str,
            )
            if k not in shared:
                shared[k] = build_teacher(
                    scfg, default_dec, seed=seed, loader=shared_loader, progress=progress, base_url=tcfg.get("base_url")
                )
            teachers[s] = shared[k]
        prompts = {s: (stages.get(s) or {}).get("prompt", f"{s}.v1") for s in STAGES}
        strip = [s for s in STAGES if (stages.get(s) or {}).get("strip_think")]
        return cls(
            teachers,
            prompts,
            cache_dir,
            topology=tcfg.get("topology") or "chain",
            paper_repo=tcfg.get("paper_repo"),
            strip_think=strip,
        )

    def describe(self) -> dict:
        return {s: {**self.teachers[s].describe(), "prompt": self.prompts[s][1]} for s in STAGES}

    def _load(self, path: Path) -> dict[str, dict]:
        if not path.exists():
            return {}
        out = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # atomic writes make this unreachable; a damaged line is just redone
                out[r["id"]] = r
        return out

    def run(
        self, items: Sequence[Item], pass_name: str = "fresh", student_answers: dict[str, str] | None = None
    ) -> list[dict]:
        """[{id, stages: {stage: output}, finish: {stage: reason}, target}] in item order.

        student_answers (id -> text) switches on correct mode for those items.
        """
        items = list(items)
        state: dict[str, dict] = {it.id: {"id": it.id, "stages": {}, "finish": {}} for it in items}
        info: dict[str, Any] = {"pass": pass_name, "n_items": len(items), "stages": {}}
        for stage in STAGES:
            teacher = self.teachers[stage]
            system, tag = self.prompts[stage]
            path = self.cache_dir / pass_name / f"{stage}.jsonl" if self.cache_dir else None
            cached = self._load(path) if path else {}
            chats, ids, keys = [], [], []
            rows: dict[str, dict] = {}
            for it in items:
                st = state[it.id]
                student = (student_answers or {}).get(it.id)
                sees = TOPOLOGIES[self.topology][stage]
                if stage in self.paper_stages:
                    msgs = paper_stage_messages(stage, system, it.prompt, st["stages"], sees)
                else:
                    msgs = stage_messages(
                        stage, system, it.prompt, {k: v for k, v in st["stages"].items() if k in sees}, student
                    )
                k = _key(
                    teacher.describe().get("model"),
                    teacher.describe().get("backend"),
                    teacher.describe().get("decoding"),
                    tag,
                    msgs,
                )
                if it.id in cached and cached[it.id].get("key") == k:
                    rows[it.id] = cached[it.id]
                else:
                    chats.append(msgs)
                    ids.append(f"{pass_name}:{stage}:{it.id}")
                    keys.append((it.id, k))
            if chats:
                from dispo.generate.progress import progress_label

                model = teacher.describe().get("model")
                with progress_label(f"teacher {stage}" + (f" ({model})" if model else "")):
                    outs = teacher.generate(chats, ids)
                for (iid, k), o in zip(keys, outs):
                    text = strip_think_blocks(o["output"]) if stage in self.strip_think else o["output"]
                    rows[iid] = {"id": iid, "key": k, "output": text, "finish_reason": o["finish_reason"]}
            for it in items:
                state[it.id]["stages"][stage] = rows[it.id]["output"]
                state[it.id]["finish"][stage] = rows[it.id]["finish_reason"]
            if path is not None:
                atomic.write_jsonl(path, [rows[it.id] for it in items])
            info["stages"][stage] = {"generated": len(chats), "cached": len(items) - len(chats), "prompt": tag}
        out = []
        for it in items:
            st = state[it.id]
            st["target"] = st["stages"]["synthesizer"]
            st["mode"] = "correct" if (student_answers or {}).get(it.id) is not None else "fresh"
            out.append(st)
        self.last_info = info
        return out
