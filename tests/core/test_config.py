import pytest

from dispo.core.config import compose_config
from dispo.core.errors import ConfigError


def test_defaults_and_overrides_compose():
    cfg = compose_config(["model=tiny-qwen3", "domain=chef", "limit=3", "decoding.max_new_tokens=77"])
    assert cfg["model"]["name"] == "tiny-qwen3" and cfg["model"]["arch"] == "qwen3"
    assert cfg["domain"]["name"] == "chef" and cfg["limit"] == 3
    assert cfg["decoding"]["max_new_tokens"] == 77 and cfg["decoding"]["temperature"] == 0.0


@pytest.mark.parametrize(
    "bad, must_name",
    [
        (["model=nope"], ["unknown model 'nope'", "smollm2-135m", "qwen3-0.6b"]),
        (["domain=xx"], ["unknown domain 'xx'", "chef", "code"]),
        (["foo=1"], ["unknown config key 'foo'", "limit"]),
        (["decoding.maxnew=3"], ["decoding.maxnew", "max_new_tokens"]),
        (["decoding.max_new_tokens=abc"], ["decoding.max_new_tokens must be int", "'abc'"]),
        (["decoding.temperature=-1"], ["temperature must be >= 0"]),
        (["limit=0"], ["limit must be > 0"]),
        (["noequals"], ["not key=value"]),
    ],
)
def test_bad_overrides_give_one_line_naming_the_problem(bad, must_name):
    with pytest.raises(ConfigError) as e:
        compose_config(bad)
    msg = str(e.value)
    assert "\n" not in msg and e.value.code == 2
    for part in must_name:
        assert part in msg


def test_disposition_alias_and_presets(tmp_path, monkeypatch):
    # a throwaway arc with a preset: the preset applies, explicit overrides win over it
    import shutil

    from dispo.core import paths

    conf = tmp_path / "conf"
    shutil.copytree(paths.conf_dir(), conf)
    (conf / "arc" / "toy.yaml").write_text("name: toy\ndisposition: humble\npreset: null\nk: 5\n")
    (conf / "arc" / "presets" / "toy_smoke.yaml").write_text(
        "# @package _global_\nlimit: 4\ndecoding: {max_new_tokens: 9}\narc: {k: 2}\n"
    )
    monkeypatch.setenv("DISPO_CONF", str(conf))
    cfg = compose_config(["arc=toy", "disposition=deliberate"])
    assert cfg["arc"]["disposition"] == "deliberate" and cfg["arc"]["k"] == 5 and cfg["limit"] is None
    cfg = compose_config(["arc=toy", "arc.preset=smoke", "limit=6"])
    assert cfg["limit"] == 6 and cfg["decoding"]["max_new_tokens"] == 9 and cfg["arc"]["k"] == 2
    assert cfg["arc"]["preset"] == "smoke"
    # the config-group spelling is the same preset
    assert compose_config(["arc=toy", "arc/preset=smoke", "limit=6"]) == cfg
    with pytest.raises(ConfigError, match="unknown arc/preset 'huge'.*smoke"):
        compose_config(["arc=toy", "arc.preset=huge"])
    # a preset that exists, chosen for an arc without values for it
    with pytest.raises(ConfigError, match="unknown arc.preset 'smoke' for arc none; valid choices: none"):
        compose_config(["arc.preset=smoke"])


def test_unknown_nested_group_option_lists_that_groups_choices():
    import pytest as _pytest

    from dispo.core.config import compose_config
    from dispo.core.errors import ConfigError

    with _pytest.raises(ConfigError, match=r"unknown arc/teachers 'nope'; valid choices: local, paper"):
        compose_config(["arc/teachers=nope"], base={"arc": "arc1"})
    cfg = compose_config(["arc/teachers=paper"], base={"arc": "arc1"})
    assert cfg["arc"]["teachers"]["name"] == "paper"
    assert {s["backend"] for s in cfg["arc"]["teachers"]["stages"].values()} == {"openai"}
