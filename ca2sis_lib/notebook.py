"""Small helpers every notebook uses: environment report, output folder, metrics file, a tool run in-process.

Notebooks stay readable by keeping chores here. ``environment_report`` is what the first cell of
each notebook prints, so a student's screenshot of it answers "which versions, which device?".
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def in_colab() -> bool:
    return "google.colab" in sys.modules


def pick_device(preferred: str = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; anything else is passed to torch.device."""
    if preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def environment_report(needs_gpu: bool = False, device: str = "auto") -> torch.device:
    """Print versions and the device; warn loudly when this notebook wants a GPU and has none."""
    import matplotlib

    import ca2sis_lib

    chosen = pick_device(device)
    print(f"python {platform.python_version()} | torch {torch.__version__} | matplotlib {matplotlib.__version__}"
          f" | ca2sis_lib {ca2sis_lib.__version__}")
    where = "Colab" if in_colab() else platform.node() or "local"
    print(f"running on {where}, device: {chosen}", end="")
    if chosen.type == "cuda":
        print(f" ({torch.cuda.get_device_name(chosen)})")
    else:
        print(f" ({torch.get_num_threads()} CPU threads)")
    if needs_gpu and chosen.type != "cuda":
        warnings.warn(
            "This notebook is meant for a GPU. On Colab: Runtime > Change runtime type > GPU. "
            "On a CPU keep SMOKE=True (or small settings): full settings would take hours.",
            stacklevel=2,
        )
    return chosen


def output_dir(path: str | Path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_metrics(out_dir: str | Path, metrics: dict[str, Any], name: str = "metrics.json") -> Path:
    """Write the numbers a notebook found (tests read this file, never the pixels)."""
    path = output_dir(out_dir) / name
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float))
    return path


EXERCISE_ENTRIES = ("exercises", "exercises_passed")  # the exercise cells' verdicts, in metrics.json


def shown_metrics(metrics: dict[str, Any], leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a notebook's closing cell displays: its metrics without ``leave_out`` and without the exercises'
    verdicts. metrics.json keeps them; on screen they stay with the exercises, because the course site shows
    the instructors' run, whose "correct" next to a student's stubs would only mislead."""
    return {k: v for k, v in metrics.items() if k not in EXERCISE_ENTRIES and k not in leave_out}


def run_command(main: Callable[[Sequence[str]], int | None], argv: Sequence[str]) -> tuple[int | None, str]:
    """Run one of the package's command-line tools in this process, as ``python -m <its module> argv`` would.

    Prints the command line; returns the exit status and everything the tool printed (starting a fresh
    Python for each command would cost seconds).
    """
    print("$ python -m", main.__module__, " ".join(argv))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        status = main(list(argv))
    return status, printed.getvalue()


# -- parameter checks (the line after a notebook's parameters cell) ----------------------------------
def _has_type(value: Any, kind: type) -> bool:
    """``isinstance``, except that True/False is no number and an int is a float (as in type hints)."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def check_parameters(namespace: dict[str, Any]) -> None:
    """Check each parameter the parameters cell declares (``NUM_SAMPLES: int = 8``) against its type, as
    papermill or a person may have replaced it (``-r NUM_SAMPLES eight`` passes the text "eight").

    Call it first in the cell after the parameters: ``check_parameters(globals())``. One ``TypeError``
    names every parameter of the wrong type, its value and the type its line declares.
    """
    declared = namespace.get("__annotations__") or {}
    if not declared:
        raise RuntimeError("check_parameters(globals()) found no declared parameters (lines `NAME: type = value`): "
                           "call it after the notebook's parameters cell has run")
    wrong = [f"{name}={namespace[name]!r} is {type(namespace[name]).__name__}, not {kind.__name__}"
             for name, kind in declared.items()
             if isinstance(kind, type) and name in namespace and not _has_type(namespace[name], kind)]
    if wrong:
        raise TypeError(f"notebook parameter{'s' if len(wrong) > 1 else ''} of the wrong type: {'; '.join(wrong)}. "
                        "Fix: give each the type its line in the parameters cell declares (papermill: -p NAME VALUE "
                        "passes numbers and True/False as such, -r passes text)")


def choose(name: str, value: Any, valid: Any) -> Any:
    """Return ``value`` when it is one of ``valid``; otherwise one clear error listing what is valid.

    ``valid`` is any collection (a list of class names, a dict of presets); a string that differs
    only in case or surrounding spaces is not guessed at: the error names the closest choices.
    """
    options = list(valid)
    if value in options:
        return value
    import difflib

    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"{name}={value!r} is not valid{hint}; choose one of {options}")


def check_path(name: str, path: str | Path, kind: str = "any") -> Path:
    """``path`` must exist (``kind``: 'file', 'dir' or 'any'); the error says what was expected."""
    p = Path(path).expanduser()
    ok = p.is_file() if kind == "file" else p.is_dir() if kind == "dir" else p.exists()
    if not ok:
        what = {"file": "file", "dir": "folder"}.get(kind, "path")
        raise FileNotFoundError(f"{name}={str(path)!r}: no such {what} (resolved to {p.resolve()})")
    return p


def smoke_overrides(smoke: bool, **overridden: tuple[Any, Any]) -> dict[str, Any]:
    """Print which parameters smoke mode replaces: ``NAME=(given, used)``; returns the used values."""
    changed = {k: (given, used) for k, (given, used) in overridden.items() if given != used}
    if smoke and changed:
        print("SMOKE=True overrides: " + ", ".join(f"{k}={g!r} -> {u!r}" for k, (g, u) in changed.items()))
    return {k: (used if smoke else given) for k, (given, used) in overridden.items()}
