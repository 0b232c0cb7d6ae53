"""Write the student versions of the notebooks: `python scripts/make_student.py [--out student] [NOTEBOOK ...]`.

The source notebooks in notebooks/ hold the solutions in nbgrader's format. This script runs nbgrader's
own preprocessors, those `nbgrader generate_assignment` clears an assignment with, on each cell, without
a course directory or a database:

* ``CheckCellMetadata`` validates the nbgrader metadata first (a corrupted cell is an error);
* ``ClearSolutions`` replaces a region between lines containing ``BEGIN SOLUTION`` and ``END SOLUTION``
  by ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` in code cells and by ``YOUR ANSWER HERE``
  in markdown cells (the model answers' ``<!-- BEGIN SOLUTION -->`` lines contain the delimiter, so
  nbgrader's defaults find them); a solution cell without delimiters is replaced whole;
* ``ClearHiddenTests`` deletes ``BEGIN HIDDEN TESTS`` … ``END HIDDEN TESTS`` regions;
* ``ClearMarkScheme`` deletes ``=== BEGIN MARK SCHEME ===`` … ``=== END MARK SCHEME ===`` regions;
* ``ClearOutput`` strips outputs and execution counts (and papermill's execution metadata).

``--out`` must be a new or empty folder or one this script made (ca2sis_lib.owned_folder); there it
replaces only the notebooks it wrote, unchanged: a student notebook edited since stops it, named.

A delimiter outside a cell marked as nbgrader solution (or grade, or task) cell is an error, as in
nbgrader. Last, every notebook's Colab badge and clone address are pointed at the students' copy
(``[tool.ca2sis]`` in pyproject.toml, see scripts/colab.py), so that no student link opens the
instructors' notebooks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colab import point_notebook, read_student_location  # noqa: E402

from ca2sis_lib.owned_folder import NotOurFolder, claim

ROOT = Path(__file__).resolve().parents[1]
CLEARED_METADATA = {"collapsed", "scrolled", "execution", "papermill"}  # cell metadata that belongs to a run


def clear_steps() -> list:
    """nbgrader's preprocessors that turn an instructors' cell into a student's, in generate_assignment's order."""
    return [ClearSolutions(), ClearOutput(remove_metadata_fields=CLEARED_METADATA), ClearHiddenTests(),
            ClearMarkScheme()]


def student_cell(cell: nbformat.NotebookNode, where: str, language: str = "python") -> nbformat.NotebookNode:
    """One cell of the student version (the cell is modified in place and returned)."""
    resources = {"language": language}
    try:
        for step in clear_steps():
            cell, resources = step.preprocess_cell(cell, resources, 0)
    except RuntimeError as error:  # nbgrader's message, with the cell it is about and the fix
        raise ValueError(f"{where}: {error} Fix: give the cell nbgrader's metadata (solution, grade or task) "
                         "or remove the delimiters.") from error
    return cell


def student_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    CheckCellMetadata().preprocess(nb, {})
    language = nb.metadata.get("kernelspec", {}).get("language", "python")
    for i, cell in enumerate(nb.cells):
        student_cell(cell, f"{path.name}, cell {i}", language)
    for key in ("papermill", "celltoolbar"):
        nb.metadata.pop(key, None)
    point_notebook(nb, path, *read_student_location(ROOT))
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="source notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="folder for the student notebooks")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    repo, branch = read_student_location(ROOT)  # before anything is written: a wrong location is refused
    notebooks = {path.name: student_notebook(path) for path in paths}  # a bad source stops before any write
    try:  # the folder must be new, empty or made by this script; a notebook a student changed there is kept
        with claim(args.out, "scripts/make_student.py", inputs=[*paths, ROOT]) as folder:
            folder.clear(notebooks)
            for name, nb in notebooks.items():
                nbformat.write(nb, folder.path / name)
                answers = sum(bool(c.metadata.get("nbgrader", {}).get("solution")) for c in nb.cells)
                print(f"{name}: {answers} answer cells -> {folder.path / name}")
    except NotOurFolder as refusal:
        sys.exit(f"make_student.py: {refusal}")
    print(f"Colab badges and clone addresses point at the students' copy: https://github.com/{repo} (branch "
          f"{branch}); publish {args.out}/*.ipynb as its notebooks/ (docs/exercises.md, 'Student versions')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
