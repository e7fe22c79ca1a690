"""Quiet by default: library warnings and third-party progress bars stay off the terminal.

dispo draws one rich progress display per long stage; transformers' FutureWarnings, datasets'
map/filter bars and the trainer's tqdm and per-step log dicts would bury it. `dispo -v ...`
(or DISPO_VERBOSE=1, or DISPO_DEBUG=1) shows them all again. `configure` runs first thing in
`dispo` and `python -m dispo.demo`, before the libraries are imported: they read these
switches from the environment at import time.
"""

from __future__ import annotations

import os
import warnings

# environment switches the libraries read at import (set only if the user has not set them)
_QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # transformers' GGUF reader (first load of a packaged model, in fetch or in any run that
    # converts one) draws a plain tqdm bar that no library switch reaches; dispo's own
    # progress is rich, so tqdm's default goes off (a user's TQDM_DISABLE wins)
    "TQDM_DISABLE": "1",
}
_BAR_SWITCHES = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")
_NOISY_MODULES = r"(transformers|trl|peft|accelerate|datasets|torch|huggingface_hub)(\..*)?"


def is_verbose() -> bool:
    """Whether -v / DISPO_VERBOSE / DISPO_DEBUG asked for the libraries' own output."""
    return bool(os.environ.get("DISPO_VERBOSE") or os.environ.get("DISPO_DEBUG"))


def configure(verbose: bool = False) -> None:
    """Quiet the libraries (environment switches, warning filters), unless verbose; the
    environment carries the choice to subprocesses (DISPO_VERBOSE=1)."""
    if verbose:
        os.environ["DISPO_VERBOSE"] = "1"
    if is_verbose():
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return
    # a user who turned a library's bars on has asked for tqdm: TQDM_DISABLE would override it
    wants_bars = any(os.environ.get(k, "").lower() in ("0", "false") for k in _BAR_SWITCHES)
    for k, v in _QUIET_ENV.items():
        if not (k == "TQDM_DISABLE" and wants_bars):
            os.environ.setdefault(k, v)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=_NOISY_MODULES)
