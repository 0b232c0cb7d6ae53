"""The main job: execute every notebook with papermill on the toy default.

    python scripts/run_notebooks.py --out outputs [--smoke] [--only 00 03]

Each notebook runs with ``OUTPUT_DIR=<out>/<notebook>`` (its figures and metrics.json land there)
and the executed copy is written to ``<out>/<notebook>.ipynb``. Working directory: ``<out>/work``,
so data the notebooks generate stays out of the source tree. One line per code cell says which
cell is running and how long the notebook has taken (``scripts/notebook_runner.py``); ``--quiet``
prints only one line per notebook.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from notebook_runner import execute  # scripts/notebook_runner.py, beside this file

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs", help="folder for executed notebooks and figures")
    parser.add_argument("--smoke", action="store_true", help="SMOKE=True: the tiny CI-sized run")
    parser.add_argument("--only", nargs="*", default=None, help="notebook name prefixes to run")
    parser.add_argument("--cell-timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--quiet", action="store_true", help="no per-cell progress lines")
    args = parser.parse_args()

    out = Path(args.out).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(p) for p in args.only)]
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
