"""HumanEval domain: items, extraction from chat answers, sandboxed test scoring."""

from __future__ import annotations

import pytest

from dispo.core.errors import DispoError
from dispo.core.types import Item
from dispo.domains import DOMAINS, get_domain
from dispo.domains.code import CodeDomain
from dispo.domains.code_extract import extract, extract_code

PROMPT = 'import math\n\n\ndef add(a: int, b: int) -> int:\n    """Return a + b."""\n'
ITEM = Item(
    id="toy/0",
    prompt="...",
    domain="code",
    gold={
        "entry_point": "add",
        "prompt_code": PROMPT,
        "test": "",
        "task_id": "toy/0",
        "canonical_solution": "    return a + b\n",
    },
)
FENCE = "```"


def _add(code: str):
    """Run the (hand-written, trusted) extracted code and return its `add`."""
    ns: dict = {}
    exec(compile(code, "<extracted>", "exec"), ns)
    return ns["add"]


# (name, model output, expected add(2, 3) -- None means "no code extracted")
EXTRACTION_CASES = [
    ("fence python", f"Sure:\n{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}\nDone.", 5),
    ("fence no tag", f"{FENCE}\ndef add(a, b):\n    return a + b\n{FENCE}", 5),
    ("fence odd tag", f"{FENCE}Python3\ndef add(a, b):\n    return a + b\n{FENCE}", 5),
    ("tilde fence", "~~~py\ndef add(a, b):\n    return a + b\n~~~", 5),
    (
        "last definition wins",
        f"{FENCE}python\ndef add(a, b):\n    return a - b\n{FENCE}\nOops, corrected:\n"
        f"{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}",
        5,
    ),
    (
        "defining block beats a longer test block",
        f"{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}\nTests:\n{FENCE}python\n"
        + "assert add(1, 2) == 3\n" * 10
        + FENCE,
        5,
    ),
    ("shell block ignored", f"{FENCE}bash\npip install nothing\n{FENCE}\n{FENCE}\nreturn a * b\n{FENCE}", 6),
    (
        "bare def in prose",
        "Sure! Here it is.\n\ndef add(a, b):\n    return a + b\n\nThis function adds two numbers.",
        5,
    ),
    ("indented body only (base-model style)", "    return a + b + 1\n", 6),
    ("unindented body in a fence", f"{FENCE}python\nreturn a + b\n{FENCE}", 5),
    (
        "think block removed",
        f"<think>maybe\n{FENCE}python\ndef add(a, b):\n    return 0\n{FENCE}\n</think>\n"
        f"{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}",
        5,
    ),
    (
        "unterminated think means no code",
        f"<think>let me try\n{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}",
        None,
    ),
    ("lone closing think tag", f"a+b it is</think>\n\n{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}", 5),
    ("truncated fence keeps the complete part", f"{FENCE}python\ndef add(a, b):\n    return a + b\n\nprint(add(1,", 5),
    ("prompt imports preserved", f"{FENCE}python\ndef add(a, b):\n    return math.floor(a) + b\n{FENCE}", 5),
    (
        "demo code dropped",
        f"{FENCE}python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
        f"if __name__ == '__main__':\n    add(int(input()), 1)\n{FENCE}",
        5,
    ),
    (
        "helper function kept",
        f"{FENCE}python\ndef _plus(x, y):\n    return x + y\n\ndef add(a, b):\n    return _plus(a, b)\n{FENCE}",
        5,
    ),
    ("no code at all", "I am not sure how to do this.", None),
    ("empty output", "", None),
]


@pytest.mark.parametrize("name, output, expected", EXTRACTION_CASES, ids=[c[0] for c in EXTRACTION_CASES])
def test_extraction_table(name, output, expected):
    code = extract_code(output, ITEM)
    if expected is None:
        assert code == ""
    else:
        assert _add(code)(2, 3) == expected, code


def test_extraction_details():
    assert extract(f"{FENCE}python\ndef add(a, b):\n    return a + b\n", ITEM).truncated is True
    assert extract(f"{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}", ITEM).truncated is False
    body = extract("    return a + b\n", ITEM)
    assert body.source == "body" and '"""Return a + b."""' in body.code
    dropped = extract_code(f"{FENCE}python\ndef add(a, b):\n    return a + b\n\nprint('demo')\n{FENCE}", ITEM)
    assert "print" not in dropped


@pytest.fixture(scope="module")
def domain():
    return CodeDomain(timeout_s=5)


@pytest.fixture(scope="module")
def items(domain):
    return {i.id: i for i in domain.items()}


def test_all_164_items_load(items):
    assert len(items) == 164
    first = items["HumanEval/0"]
    assert set(first.gold) == {"task_id", "prompt_code", "test", "entry_point", "canonical_solution"}
    assert first.gold["entry_point"] == "has_close_elements"
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in first.prompt
    assert first.meta["template"] == "code.v1"
    assert "{prompt_code}" not in first.prompt


def test_registered_and_limit(domain):
    assert DOMAINS.get("code") is CodeDomain
    assert [i.id for i in get_domain("code").items(limit=3)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


@pytest.mark.parametrize("kwargs, word", [({"split": "train"}, "split"), ({"limit": 0}, "limit")])
def test_bad_item_requests(domain, kwargs, word):
    with pytest.raises(DispoError, match=word):
        domain.items(**kwargs)


def _chat(item: Item, body: str) -> str:
    return f"Here is my solution:\n{FENCE}python\n{item.gold['prompt_code']}{body}{FENCE}\n"


def test_canonical_solutions_pass_and_wrong_ones_fail(domain, items):
    # /10 and /38 call helper functions defined only in the prompt
    ids = ["HumanEval/0", "HumanEval/10", "HumanEval/38", "HumanEval/53"]
    chosen = [items[i] for i in ids]
    right = [_chat(i, i.gold["canonical_solution"]) for i in chosen]
    wrong = [_chat(i, "    return None\n") for i in chosen]
    scores = domain.content_scores(chosen + chosen, right + wrong)
    assert [s.value for s in scores] == [True] * 4 + [False] * 4
    assert all(s.scorer == "tests.correct" and s.version == "humaneval-v1" for s in scores)
    assert scores[0].detail["status"] == "passed" and scores[0].detail["extracted_chars"] > 0
    assert scores[4].detail["status"] == "failed"
    assert "AssertionError" in scores[4].detail["reason"]
    assert "assert" in scores[4].detail["stderr_tail"]  # the failing test line, for feedback


def test_body_only_completion_passes(domain, items):
    item = items["HumanEval/2"]
    assert domain.content_score(item, item.gold["canonical_solution"]).value is True


def test_exit_zero_before_tests_does_not_pass(domain, items):
    item = items["HumanEval/53"]  # add(x, y)
    out = _chat(item, "    return x + y\n\nimport sys\nsys.exit(0)\n")
    # sys.exit at top level is demo code the extractor drops; hide it inside the function
    out2 = f"{FENCE}python\ndef add(x, y):\n    import sys\n    sys.exit(0)\n{FENCE}"
    s1, s2 = domain.content_scores([item, item], [out, out2])
    assert s1.value is True  # the extractor removed the exit
    assert s2.value is False and "marker" in s2.detail["reason"]


def test_no_code_and_timeout(items):
    d = CodeDomain(timeout_s=1.5)
    item = items["HumanEval/53"]
    none, slow = d.content_scores(
        [item, item], ["I cannot help.", f"{FENCE}python\ndef add(x, y):\n    while True:\n        pass\n{FENCE}"]
    )
    assert none.value is False and none.detail["status"] == "no_code"
    assert slow.value is False and slow.detail["status"] == "timeout"


def test_outputs_must_match_items(domain, items):
    with pytest.raises(DispoError, match="outputs"):
        domain.content_scores([items["HumanEval/0"]], [])


def test_easiest_order_takes_shortest_reference_solutions_first(items):
    """domain.order=easiest sorts by the canonical solution's non-blank length (a difficulty
    proxy fixed before any model runs); `limit` then takes the first N of that order."""
    lengths = {i: len("".join(it.gold["canonical_solution"].split())) for i, it in items.items()}
    easy = [i.id for i in CodeDomain(order="easiest").items(limit=8)]
    assert len(easy) == 8 and len(set(easy)) == 8
    assert [lengths[i] for i in easy] == sorted(lengths[i] for i in easy)
    # the 8 taken are the 8 shortest of all 164, not the 8 first ids re-sorted
    assert max(lengths[i] for i in easy) <= sorted(lengths.values())[7]
    assert easy != [f"HumanEval/{n}" for n in range(8)]
    assert [i.id for i in CodeDomain(order="id").items(limit=2)] == ["HumanEval/0", "HumanEval/1"]


def test_unknown_order_is_a_one_line_config_error():
    with pytest.raises(DispoError, match=r"domain.order must be one of id, easiest; got 'hardest'"):
        CodeDomain(order="hardest")


def test_fresh_split_is_a_second_generator_over_problems_the_first_82_never_show(domain):
    fresh = domain.items("fresh")
    first = domain.items("eval", limit=82)
    assert len(fresh) == 164 - 82 and {i.split for i in fresh} == {"fresh"}
    assert not {i.id for i in fresh} & {i.id for i in first}
    # another template: the instruction follows the code, and the item says which template it used
    f = fresh[0]
    assert f.meta["template"] == "code_fresh.v1" and f.prompt.startswith("```python")
    assert f.gold["prompt_code"].rstrip("\n") in f.prompt
    assert f.prompt.split("```")[-1].strip() != first[0].prompt.split("```")[0].strip()
    # scored by the same tests: the canonical solution passes under the fresh prompt too
    body = f.gold["canonical_solution"]
    assert domain.content_score(f, f"```python\n{f.gold['prompt_code']}{body}```").value == 1.0
