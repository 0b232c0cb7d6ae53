"""Small helpers every notebook uses: environment report, output folder, metrics file.

Notebooks stay readable by keeping chores here. ``environment_report`` is what the first cell of
each notebook prints, so a student's screenshot of it answers "which versions, which device?".
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
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
