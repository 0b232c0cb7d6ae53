"""Write the student versions of the notebooks: `python scripts/make_student.py [--out student] [NOTEBOOK ...]`.

The source notebooks in notebooks/ hold the solutions in nbgrader's format; this script applies
nbgrader's own transformation of `nbgrader generate_assignment` without needing a course directory,
a database or nbgrader itself:

* a region between lines containing ``BEGIN SOLUTION`` and ``END SOLUTION`` is replaced by
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` in code cells (indented like the delimiter)
  and by ``YOUR ANSWER HERE`` in markdown cells; a solution cell without delimiters is replaced whole;
* a region between ``BEGIN HIDDEN TESTS`` and ``END HIDDEN TESTS`` is deleted;
* a region between ``=== BEGIN MARK SCHEME ===`` and ``=== END MARK SCHEME ===`` (task cells) is deleted;
* outputs and execution counts are stripped.

``--out`` must be a new or empty folder or one this script made (ca2sis_lib.owned_folder); there it
replaces only the notebooks it wrote, unchanged: a student notebook edited since stops it, named.

A delimiter outside a cell marked as nbgrader solution (or grade) cell is an error, as in nbgrader.
tests/test_exercises.py checks that nbgrader's `generate_assignment` gives the same cell sources.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from ca2sis_lib.owned_folder import NotOurFolder, claim

ROOT = Path(__file__).resolve().parents[1]
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
DELIMITERS = {"solution": ("BEGIN SOLUTION", "END SOLUTION"), "hidden": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
              "scheme": ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===")}


def _nbgrader(cell, key: str) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get(key, False))


def _replace_regions(source: str, begin: str, end: str, stub: list[str] | None, where: str) -> tuple[str, bool]:
    """Replace every begin..end region (delimiter lines included) by ``stub`` (None: delete it)."""
    lines, inside, found = [], False, False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"{where}: nested '{begin}'")
            inside = found = True
            indent = re.match(r"\s*", line).group(0)
            lines.extend(indent + s for s in stub or [])
        elif end in line:
            if not inside:
                raise ValueError(f"{where}: '{end}' without '{begin}'")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ValueError(f"{where}: '{begin}' without '{end}'")
    return "\n".join(lines), found


def student_cell(cell, where: str):
    """One cell of the student version (the cell is modified in place and returned)."""
    stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
    source, replaced = _replace_regions(cell.source, *DELIMITERS["solution"], stub, where)
    if replaced and not _nbgrader(cell, "solution"):
        raise ValueError(f"{where}: a solution region in a cell that is not an nbgrader solution cell")
    if _nbgrader(cell, "solution") and not replaced:
        source = "\n".join(stub)
    source, removed = _replace_regions(source, *DELIMITERS["hidden"], None, where)
    if removed and not _nbgrader(cell, "grade"):
        raise ValueError(f"{where}: hidden tests in a cell that is not an nbgrader grade cell")
    if _nbgrader(cell, "task"):
        source, _ = _replace_regions(source, *DELIMITERS["scheme"], None, where)
    cell.source = source
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    for key in ("execution", "papermill"):
        cell.metadata.pop(key, None)
    return cell


def student_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        student_cell(cell, f"{path.name}, cell {i}")
    nb.metadata.pop("papermill", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="source notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="folder for the student notebooks")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    notebooks = {path.name: student_notebook(path) for path in paths}  # a bad source stops before any write
    try:  # the folder must be new, empty or made by this script; a notebook a student changed there is kept
        with claim(args.out, "scripts/make_student.py", inputs=[*paths, ROOT]) as folder:
            folder.clear(notebooks)
            for name, nb in notebooks.items():
                nbformat.write(nb, folder.path / name)
                answers = sum(_nbgrader(c, "solution") for c in nb.cells)
                print(f"{name}: {answers} answer cells -> {folder.path / name}")
    except NotOurFolder as refusal:
        sys.exit(f"make_student.py: {refusal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
