"""How much disk each install of the course takes: the package's dependencies per set of extras, from an installed
environment (``make`` installs one set per command: run = notebooks, book / student / inspector = + course,
test = + test).

    .venv/bin/python benchmarks/install_size.py          # -> benchmarks/results/install_size.md

Each set is the closure of ca2sis_lib's requirements with those extras, resolved against the distributions
installed in this environment; a distribution's size is the sum of the files its RECORD lists. The CUDA
libraries (``nvidia-*``) and ``triton`` come with PyPI's Linux torch wheel; PyTorch's CPU-only index
(``make run TORCH_INDEX=cpu``) has a torch wheel without them, which cannot be measured where that index is not
reachable: the table gives what they add, so the saving is read off it.
"""

from __future__ import annotations

import argparse
import re
import sys
import sysconfig
from datetime import date
from importlib.metadata import Distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SETS = {"run (notebooks)": ["notebooks"], "book, student, inspector (+ course)": ["notebooks", "course"],
        "test (+ test: everything)": ["notebooks", "course", "test"]}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def size_of(dist: Distribution) -> int:
    """Bytes on disk of the files a distribution installed (its RECORD)."""
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total


def closure(installed: dict[str, Distribution], root: str, extras: list[str]) -> set[str]:
    """Names of the installed distributions that ``root[extras]`` needs, transitively."""
    needed, todo = set(), [(canonical(root), tuple(extras))]
    while todo:
        name, wanted = todo.pop()
        dist = installed.get(name)
        if dist is None or (name, wanted) in needed:
            continue
        needed.add((name, wanted))
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*wanted, "")):
                todo.append((canonical(req.name), tuple(sorted(req.extras))))
    return {name for name, _ in needed}


def measure() -> tuple[list[tuple[str, float, float]], float]:
    """Per set: (label, GiB of its dependencies, GiB of those that are CUDA libraries or triton); torch's GiB."""
    installed = {canonical(d.metadata["Name"]): d for d in distributions()}
    sizes = {name: size_of(dist) for name, dist in installed.items()}
    rows = []
    for label, extras in SETS.items():
        names = closure(installed, "ca2sis_lib", extras) - {"ca2sis-lib"}
        gpu = {n for n in names if n.startswith("nvidia-") or n == "triton"}
        rows.append((label, sum(sizes[n] for n in names) / 2**30, sum(sizes[n] for n in gpu) / 2**30))
    return rows, sizes["torch"] / 2**30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "install_size.md")
    args = parser.parse_args(argv)
    import torch

    lines = [f"# Install size per `make` command ({date.today().isoformat()})", "",
             f"Measured with `python benchmarks/install_size.py` in `{Path(sys.prefix).name}` "
             f"({sysconfig.get_platform()}, Python {sys.version.split()[0]}, torch {torch.__version__} from PyPI).", "",
             "| command (extras) | dependencies, GiB | of which CUDA libraries and triton, GiB | without them, GiB |",
             "|---|---:|---:|---:|"]
    rows, torch_gib = measure()
    for label, total, gpu in rows:
        lines.append(f"| {label} | {total:.2f} | {gpu:.2f} | {total - gpu:.2f} |")
    lines += ["", f"torch itself, as PyPI builds it (with its CUDA kernels), is {torch_gib:.2f} GiB of the last "
              "column. pip's cache and the virtual environment's own files (pip itself) are not counted. A CPU-only "
              "torch wheel (`make run TORCH_INDEX=cpu`) leaves out the CUDA libraries and triton, and its torch is a "
              "CPU build, smaller than PyPI's; its size was not measured here (the CPU index was not reachable from "
              "this machine), so the last column is an upper bound for a CPU-only install."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
