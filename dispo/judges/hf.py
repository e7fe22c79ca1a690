"""`hf` judge: a local transformers model answers from its next-token distribution.

No text is generated. Each query is rendered with the model's chat template (generation
prompt added), run through one batched forward pass (left padding, explicit position ids so
a padded row computes exactly what it would alone), and the logits at the answer position
are read:

  word labels (YES/NO, ASSERT/HEDGE, CERTAIN/UNCERTAIN/AMBIGUOUS): the label with the
      highest logit among the labels' first tokens wins (each label counts its spellings
      'YES', 'Yes', 'yes'; spellings that share a first token with another label are
      dropped, and a label left without a distinguishing token is a configuration error).
  digit labels (rubric 1-5, MCAS 0-2): strict - the model's top token over the WHOLE
      vocabulary must be one of the digits, otherwise the query is unscored (a judge that
      does not want to answer with a digit is not forced to).

Score.detail carries the label probabilities renormalised over the labels.
"""

from __future__ import annotations

from typing import Any

from dispo.core.errors import ConfigError
from dispo.judges import JUDGES
from dispo.judges.prompts import Answer, PromptedJudge, Query


@JUDGES.register("hf")
class HFJudge(PromptedJudge):
    name = "hf"

    def __init__(
        self,
        model: str = "smollm2-135m",
        batch_size: int = 8,
        device: str | None = None,
        prompt_version: str = "v1",
        cache: bool = True,
        cache_dir: str | None = None,
    ):
        if int(batch_size) < 1:
            raise ConfigError("judge.batch_size must be >= 1")
        super().__init__(prompt_version=prompt_version, cache=cache, cache_dir=cache_dir)
        self.model_name = str(model)
        self.batch_size = int(batch_size)
        self.device = device
        self._loaded = None
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}

    # --- model ----------------------------------------------------------------------------
    @property
    def loaded(self):
        """The judge model, loaded on first use (a registry name, a directory or a .gguf)."""
        if self._loaded is None:
            from pathlib import Path

            from dispo.models.loading import load_model

            spec: Any = self.model_name
            if Path(self.model_name).expanduser().exists():
                spec = {"name": self.model_name, "path": self.model_name}
            self._loaded = load_model(spec, device=self.device)
        return self._loaded

    def model_id(self) -> str:
        return f"{self.model_name}@{self.loaded.fingerprint}"

    def describe(self) -> dict:
        d = super().describe()
        d.update(
            model=self.model_name,
            fingerprint=self.loaded.fingerprint,
            batch_size=self.batch_size,
            readout="next-token logits",
        )
        return d

    def label_token_ids(self, labels: tuple[str, ...]) -> list[list[int]]:
        """Per label, the first-token ids of its spellings that no other label shares."""
        if labels not in self._label_ids:
            tok = self.loaded.tokenizer
            cands = []
            for lab in labels:
                ids = set()
                for spelling in {lab, lab.capitalize(), lab.lower()}:
                    enc = tok.encode(spelling, add_special_tokens=False)
                    if enc:
                        ids.add(enc[0])
                cands.append(ids)
            out = []
            for i, ids in enumerate(cands):
                others = set().union(*(c for j, c in enumerate(cands) if j != i))
                own = sorted(ids - others)
                if not own:
                    raise ConfigError(
                        f"judge model {self.model_name}: label {labels[i]!r} has no first token that "
                        f"distinguishes it from {[l for l in labels if l != labels[i]]}; use judge=openai "
                        f"or another judge model"
                    )
                out.append(own)
            self._label_ids[labels] = out
        return self._label_ids[labels]

    # --- answering ------------------------------------------------------------------------
    def next_token_logits(self, texts: list[str]):
        """Logits (len(texts), vocab) at the position after each text, in batches."""
        import torch

        lm = self.loaded
        tok, model = lm.tokenizer, lm.model
        rows = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            mask = enc["attention_mask"]
            # left padding: positions count real tokens only, as an unpadded row would
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = model(
                    input_ids=enc["input_ids"].to(lm.device),
                    attention_mask=mask.to(lm.device),
                    position_ids=pos.to(lm.device),
                    use_cache=False,
                )
            rows.append(out.logits[:, -1, :].float().cpu())
        return torch.cat(rows, dim=0)

    def _answer_batch(self, queries: list[Query]) -> list[Answer]:
        import torch

        texts = [self.loaded.render(q.chat()) for q in queries]
        # similar lengths in one batch waste less padding; answers go back in query order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits_sorted = self.next_token_logits([texts[i] for i in order])
        logits = torch.empty_like(logits_sorted)
        logits[torch.tensor(order)] = logits_sorted
        answers = []
        for q, row in zip(queries, logits):
            ids = self.label_token_ids(q.labels)
            per_label = torch.stack([torch.logsumexp(row[i], dim=0) for i in ids])
            probs = torch.softmax(per_label, dim=0)
            best = int(per_label.argmax())
            detail = {"p": {lab: round(float(p), 4) for lab, p in zip(q.labels, probs)}}
            if all(lab.isdigit() for lab in q.labels):
                top = int(row.argmax())
                if not any(top in i for i in ids):
                    shown = self.loaded.tokenizer.decode([top])
                    answers.append(Answer(None, f"top next token {shown!r} is not one of {'/'.join(q.labels)}", detail))
                    continue
            answers.append(Answer(q.labels[best], None, detail))
        return answers
