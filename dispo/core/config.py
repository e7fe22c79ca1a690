"""Compose dispo's config with Hydra's compose API from `key=value` arguments.

Typer owns argv; Hydra only sees the override list. Every failure becomes one ConfigError
line that names the bad key or option and lists the valid choices.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError
from dispo.core.paths import conf_dir

GROUPS = ("model", "domain", "decoding", "judge", "arc", "launcher", "falsify", "protocol")
# bare keys users type that live inside a group
ALIASES = {"disposition": "arc.disposition"}
# keys that select a config group option (`arc.preset=smoke` reads as `arc/preset=smoke`)
GROUP_ALIASES = {"arc.preset": "arc/preset"}
# expected types of leaf values users commonly override (Hydra does not type-check plain YAML)
_TYPES: dict[str, tuple[type, ...]] = {
    "seed": (int,),
    "limit": (int, type(None)),
    "decoding.max_new_tokens": (int,),
    "decoding.temperature": (int, float),
    "decoding.top_p": (int, float),
    "decoding.top_k": (int,),
    "decoding.batch_size": (int,),
    "decoding.repetition_penalty": (int, float),
    "decoding.presence_penalty": (int, float),
}
_POSITIVE = {"decoding.max_new_tokens", "decoding.batch_size", "limit"}


def group_options(group: str) -> list[str]:
    d = conf_dir() / group
    return sorted(p.stem for p in d.glob("*.yaml")) if d.exists() else []


def _split(ov: str) -> tuple[str, str]:
    if "=" not in ov:
        raise ConfigError(f"argument '{ov}' is not key=value; e.g. model=smollm2-135m or decoding.max_new_tokens=512")
    k, v = ov.split("=", 1)
    return k.strip().lstrip("+~"), v


def normalize_overrides(overrides: list[str]) -> list[str]:
    out = []
    for ov in overrides:
        k, v = _split(ov)
        if k in ALIASES:
            ov = f"{ALIASES[k]}={v}"
        elif k in GROUP_ALIASES and ov.split("=", 1)[0].strip() == k:
            ov = f"{GROUP_ALIASES[k]}={v}"
        out.append(ov)
    return out


def _explain(e: Exception, overrides: list[str]) -> ConfigError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    m = re.search(r"Could not find '(\w+)/([^']+)'", msg) or re.search(r"In '(\w+)': Could not find '\1/([^']+)'", msg)
    if m and m.group(1) in GROUPS:
        g, opt = m.group(1), m.group(2)
        if "/" in opt:  # a nested group such as arc/teachers=...
            sub, opt = opt.rsplit("/", 1)
            g = f"{g}/{sub}"
        return ConfigError(f"unknown {g} '{opt}'; valid choices: {', '.join(group_options(g)) or 'none'}")
    m = re.search(r"Could not override '([^']+)'", msg) or re.search(r"Key '([^']+)' is not in struct", msg)
    if m:
        key = m.group(1)
        return ConfigError(f"unknown config key '{key}'; {_valid_keys_hint(key)}")
    m = re.search(r"Could not append to config. An item is already at '([^']+)'", msg)
    if m:
        return ConfigError(f"'{m.group(1)}' already exists; drop the leading '+'")
    return ConfigError(f"bad override ({msg})")


def _valid_keys_hint(key: str) -> str:
    from omegaconf import OmegaConf

    base = compose_raw([])
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(base, parent) if parent else base
    if node is not None and hasattr(node, "keys"):
        keys = sorted(str(k) for k in node.keys() if k not in {"presets"})
        where = f"under '{parent}'" if parent else "at top level"
        return f"valid keys {where}: {', '.join(keys)}"
    return "check the spelling"


def compose_raw(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(conf_dir()).resolve()), version_base=None):
        return compose(config_name="config", overrides=overrides)


def compose_config(overrides: list[str] | None = None, base: dict[str, str] | None = None) -> dict[str, Any]:
    """Compose and validate; returns a plain resolved dict.

    `base` holds defaults the command sets (e.g. `arc=arc1` for `dispo train arc1`); the
    user's overrides come after them and win.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    user = normalize_overrides(list(overrides or []))
    pre = [f"{k}={v}" for k, v in (base or {}).items()]
    chosen = _protocol_choices(pre, user)
    pre += [f"{g}={o}" for g, o in chosen.items()]
    try:
        cfg = compose_raw(pre + user)
    except ConfigError:
        raise
    except Exception as e:  # hydra raises several unrelated types; all are user errors here
        raise _explain(e, user) from None
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve config ({str(e).splitlines()[0]})") from None
    _check_preset(data)
    data = apply_protocol(data, user, protected=_preset_keys(data))
    if chosen:
        data["protocol"]["chosen"] = chosen
    _validate(data)
    return data


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _get_dotted(d: dict, key: str) -> Any:
    for p in key.split("."):
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _check_preset(data: dict) -> None:
    """A preset chosen for an arc that has no values for it is an error, not a silent no-op
    (config.yaml's defaults list loads arc/presets/<arc>_<preset>.yaml as optional)."""
    arc = data.get("arc") or {}
    name, arc_name = arc.get("preset"), arc.get("name")
    if not name:
        return
    d = Path(conf_dir()) / "arc" / "presets"
    if not (d / f"{arc_name}_{name}.yaml").exists():
        valid = sorted(p.stem[len(arc_name) + 1 :] for p in d.glob(f"{arc_name}_*.yaml")) if arc_name else []
        raise ConfigError(
            f"unknown arc.preset '{name}' for arc {arc_name}; valid choices: {', '.join(valid) or 'none'}"
        )


# choosing one of these groups on the command line is a choice of every value in it
# (decoding=sampling keeps its temperature under protocol=paper); choosing a model, domain or
# arc is not: the protocol then sets what the paper used for that model, domain or arc.
_SETTINGS_GROUPS = {"decoding", "arc.teachers", "judge"}


def _explicit_keys(user: list[str]) -> set[str]:
    """Dotted keys the user set on the command line, plus settings groups they chose."""
    keys = set()
    for o in user:
        k = _split(o)[0].replace("/", ".")
        if "." in k or k in _SETTINGS_GROUPS or k not in GROUPS:
            keys.add(k)
    return keys


def _covered(key: str, explicit: set[str]) -> bool:
    return any(key == e or key.startswith(e + ".") for e in explicit)


def _matches(data: dict, when: dict) -> bool:
    for key, want in (when or {}).items():
        have = _get_dotted(data, key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def _substitute(value: Any, data: dict) -> Any:
    # "${a.b}" in a protocol value is the composed config's a.b (protocols are applied after
    # Hydra resolved interpolations, so they cannot use Hydra's own)
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{([\w.]+)\}", value)
        return _get_dotted(data, m.group(1)) if m else value
    if isinstance(value, dict):
        return {k: _substitute(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, data) for v in value]
    return value


def _flatten(d: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in d.items():
        key = f"{prefix}{k}"
        keys |= _flatten(v, key + ".") if isinstance(v, dict) and v else {key}
    return keys


def _preset_keys(data: dict) -> set[str]:
    """Dotted keys the chosen preset sets: a preset is a choice the user made, so a protocol
    rule never overrides it (protocol=paper with arc.preset=smoke stays a smoke run)."""
    from omegaconf import OmegaConf

    arc = data.get("arc") or {}
    name, arc_name = arc.get("preset"), arc.get("name")
    if not name or not arc_name:
        return set()
    f = Path(conf_dir()) / "arc" / "presets" / f"{arc_name}_{name}.yaml"
    return _flatten(OmegaConf.to_container(OmegaConf.load(f)) or {})


def _protocol_choices(pre: list[str], user: list[str]) -> dict[str, str]:
    """Config-group options the chosen protocol picks (its `choose` rules, e.g. judge=paper for
    the domains whose judges the paper ran), unless the user chose that group. A choice must be
    made before composing, so that the user's keys of the chosen option (judge.base_url=...)
    exist; the rules' `when` is evaluated on a first composition of the group choices alone."""
    from omegaconf import OmegaConf

    choices = [o for o in pre + user if "." not in _split(o)[0] and "=" in o]
    proto = next((v for k, v in map(_split, reversed(choices)) if k == "protocol"), "default")
    f = Path(conf_dir()) / "protocol" / f"{proto}.yaml"
    rules = (OmegaConf.to_container(OmegaConf.load(f)) or {}).get("choose") if f.is_file() else None
    if not rules:
        return {}
    mine = {_split(o)[0].replace("/", ".") for o in user}
    try:
        probe = OmegaConf.to_container(compose_raw(choices), resolve=True)
    except Exception:
        return {}  # the real composition below reports what is wrong
    out: dict[str, str] = {}
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) - {"when", "set"}:
            raise ConfigError(f"protocol {proto!r}: choose rule {i} must have only 'when' and 'set'")
        if not _matches(probe, rule.get("when") or {}):
            continue
        for group, option in (rule.get("set") or {}).items():
            if group not in GROUPS:
                raise ConfigError(f"protocol {proto!r}: choose rule {i} sets '{group}', not a config group")
            if group not in mine:
                out[group] = str(option)
    return out


def apply_protocol(data: dict, user: list[str], protected: set[str] = frozenset()) -> dict:
    """Apply the chosen protocol's rules (conf/protocol/*.yaml): each rule whose `when`
    matches sets its dotted keys, except keys the user set explicitly. What was set is
    recorded under protocol.applied (it is part of config.yaml in every run dir); keys in
    `protected` (the chosen preset's) are left alone too."""
    proto = data.get("protocol") or {}
    rules = proto.get("rules") or []
    if not isinstance(rules, list):
        raise ConfigError(f"protocol {proto.get('name')!r}: rules must be a list of {{when, set}} mappings")
    explicit = _explicit_keys(user) | set(protected)
    applied: dict[str, Any] = {}
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) - {"when", "set"}:
            raise ConfigError(f"protocol {proto.get('name')!r}: rule {i} must have only 'when' and 'set'")
        if not _matches(data, rule.get("when") or {}):
            continue
        for key, value in (rule.get("set") or {}).items():
            if _covered(key, explicit):
                continue
            value = _substitute(value, data)
            _set_dotted(data, key, value)
            applied[key] = value
    if proto:
        proto["applied"] = applied
    return data


def _validate(data: dict) -> None:
    for key, types in _TYPES.items():
        v = _get_dotted(data, key)
        if (
            v is None
            and type(None) not in types
            and _get_dotted(data, key.rsplit(".", 1)[0] if "." in key else key) is None
        ):
            continue
        if isinstance(v, bool) or not isinstance(v, types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ConfigError(f"{key} must be {want}, got {v!r}; e.g. {key}={'512' if int in types else '0.7'}")
        if key in _POSITIVE and v is not None and v <= 0:
            raise ConfigError(f"{key} must be > 0, got {v}")
    t = _get_dotted(data, "decoding.temperature")
    if t is not None and t < 0:
        raise ConfigError(f"decoding.temperature must be >= 0 (0 = greedy), got {t}")
    pp = _get_dotted(data, "decoding.presence_penalty")
    if pp is not None and not (-2.0 <= pp <= 2.0):
        raise ConfigError(f"decoding.presence_penalty must be in [-2, 2] (0 = off), got {pp}")
    p = _get_dotted(data, "decoding.top_p")
    if p is not None and not (0 < p <= 1):
        raise ConfigError(f"decoding.top_p must be in (0, 1], got {p}")
