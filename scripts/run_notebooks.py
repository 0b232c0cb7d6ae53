"""The main job: execute every notebook with papermill on the toy default.

    python scripts/run_notebooks.py --out outputs [--smoke] [--only 00 03]

Each notebook runs with ``OUTPUT_DIR=<out>/<notebook>`` (its figures and metrics.json land there)
and the executed copy is written to ``<out>/<notebook>.ipynb``. Working directory: ``<out>/work``,
so data the notebooks generate stays out of the source tree. One line per code cell says which
cell is running and how long the notebook has taken (``scripts/notebook_runner.py``); ``--quiet``
prints only one line per notebook.

Nothing is removed or replaced that this script did not make: ``--out`` may not be (or contain) the
source notebooks nor be a repository, and a ``<notebook>.ipynb`` already there is replaced only when
it is an executed copy of that notebook (papermill's record in its metadata), so a notebook someone
worked on is never overwritten. ``--only`` takes name prefixes; one that matches no notebook is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded as a module (tests)
from notebook_runner import execute  # noqa: E402  (scripts/notebook_runner.py, beside this file)

from ca2sis_lib.owned_folder import NotOurFolder, check_location  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def select(notebooks: list[Path], prefixes: list[str] | None) -> list[Path]:
    """The notebooks whose names start with one of ``prefixes`` (all when None); a prefix that matches
    none is an error naming the valid names."""
    if prefixes is None:
        return notebooks
    unknown = [p for p in prefixes if not any(nb.stem.startswith(p) for nb in notebooks)]
    if unknown:
        raise SystemExit(f"run_notebooks.py: --only {' '.join(unknown)} matches no notebook; give name prefixes of "
                         f"{', '.join(nb.stem for nb in notebooks)} (e.g. --only 00 03)")
    return [nb for nb in notebooks if any(nb.stem.startswith(p) for p in prefixes)]


def executed_copy_of(path: Path, notebook: Path) -> bool:
    """Whether ``path`` is a copy of ``notebook`` that papermill executed (what this script writes)."""
    try:
        meta = nbformat.read(path, as_version=4).metadata.get("papermill", {})
    except Exception:  # not a notebook at all
        return False
    return Path(str(meta.get("input_path", ""))).name == notebook.name


def check_out(out: Path, notebooks: list[Path]) -> Path:
    """``out`` resolved, or SystemExit: it is the input or a repository, or it holds a notebook of the
    same name that is not an executed copy (someone's work)."""
    try:
        out = check_location(out, "scripts/run_notebooks.py", inputs=[ROOT / "notebooks"])
    except NotOurFolder as refusal:
        raise SystemExit(f"run_notebooks.py: {refusal}") from None
    theirs = [nb.name for nb in notebooks if (out / nb.name).exists() and not executed_copy_of(out / nb.name, nb)]
    if theirs:
        raise SystemExit(f"run_notebooks.py: {out} holds {', '.join(theirs)}, which this script did not write (not "
                         "an executed copy of the notebook of that name): running would overwrite it. Fix: move it "
                         "away, or pass another --out.")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs", help="folder for executed notebooks and figures")
    parser.add_argument("--smoke", action="store_true", help="SMOKE=True: the tiny CI-sized run")
    parser.add_argument("--only", nargs="+", default=None, help="notebook name prefixes to run (e.g. 00 03)")
    parser.add_argument("--cell-timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--quiet", action="store_true", help="no per-cell progress lines")
    args = parser.parse_args(argv)

    notebooks = select(sorted((ROOT / "notebooks").glob("*.ipynb")), args.only)
    out = check_out(Path(args.out), notebooks)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    failed, begin = [], time.time()
    for nb in notebooks:
        start = time.time()
        print(f"--> {nb.name}", flush=True)
        try:
            execute(nb, out / nb.name, parameters={"SMOKE": args.smoke, "OUTPUT_DIR": str(out / nb.stem)},
                    cwd=work, timeout=args.cell_timeout, progress=not args.quiet)
            print(f"    ok in {time.time() - start:.0f} s -> {out / nb.name}", flush=True)
        except Exception as error:  # keep going: report every failing notebook at the end
            failed.append(nb.name)
            print(f"    FAILED after {time.time() - start:.0f} s: {type(error).__name__}: {error}", flush=True)
    if failed:
        print(f"failed notebooks: {failed}")
        return 1
    print(f"all {len(notebooks)} notebooks executed in {time.time() - begin:.0f} s; outputs under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
