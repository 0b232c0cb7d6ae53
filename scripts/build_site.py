"""The course site: the executed notebooks (from `make run`) and docs/ pages, rendered by Sphinx + MyST-NB.

    python scripts/build_site.py --executed outputs --out _build/site     # what `make book` runs

Nothing is executed: the notebooks are taken as ``make run`` left them in ``--executed``. The
sources are staged in a temporary folder mirroring the repository (``docs/``, ``notebooks/``), so the
relative links that work on GitHub work on the site too; links to other files of the repository
become links to them on GitHub. The staging also swaps the Colab badge's image for a local copy
and interactive widget outputs (which need a live kernel) for a note on how to run them.

The site is for students: every exercise's solution and every question's model answer is replaced
as in the student versions (scripts/make_student.py), and a replaced cell's outputs are dropped, as
are the outputs of any cell that shows the instructors' exercise verdicts ("correct" beside a stub);
the instructors' pages (docs/exercises.md: grading, and where the reference answers live) are left
out; its Colab badges and GitHub links lead to the students' copy (``[tool.ca2sis]`` in pyproject.toml,
see scripts/make_student.py), not to the instructors' notebooks. ``--with-solutions`` keeps all of it,
with the instructors' links, for an instructors' copy that students cannot reach. A notebook
executed in the quick setting (``SMOKE=True``) gets a banner saying that its numbers are a smoke
run's, not the course's.

``--out`` must be a new or empty folder, or a site this script built before: its contents are
replaced only when every file in it is one the last build wrote, unchanged (ca2sis_lib.owned_folder);
the input, a repository or a folder holding anything else is refused. The old site stays until the
new one is built.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from ca2sis_lib.owned_folder import NotOurFolder, claim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_explorer import build_explorer  # noqa: E402
from colab import BADGE_IMAGE, BADGE_TAG, point_notebook, read_location, read_student_location, repo_url  # noqa: E402
from make_student import student_cell  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "site"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<p><em>An interactive widget was here. It needs a running Python: open this notebook in Colab "
               "(badge at the top), run it in JupyterLab, or start the lecture app with <code>make inspector</code>."
               "</em></p>")
EXERCISE_VERDICTS = "exercises.statuses()"  # the closing cell that prints them
VERDICTS_SHOWN = re.compile(r"""['"]exercises['"]\s*:\s*\{""")  # a metrics dict that still holds them
INSTRUCTOR_PAGES = ("exercises.md",)  # docs pages for instructors only: grading, the reference answers' file
LINK_RE = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")
SMOKE_BANNER = ("> **A quick run.** This page was executed with `SMOKE=True` (`make run SMOKE=1`): few samples and "
                "steps, so its numbers and verdicts say nothing about the method. The full run's are in "
                "[docs/claims.md](../docs/claims.md); build the site after `make run` to show them here.")


def github_links(text: str, source: Path, site_files: set[Path], repo: str, branch: str) -> str:
    """Relative links to repository files that are not pages of the site point at GitHub instead."""

    def fix(match: re.Match) -> str:
        target = match[2]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match[0]  # absolute URL, mailto:, or site-absolute
        resolved = (source.parent / target).resolve()
        if resolved in site_files or not resolved.is_relative_to(ROOT) or not resolved.exists():
            return match[0]
        if resolved.is_relative_to(ROOT / "docs"):  # staged with the pages (an image, say): it stays on the site
            return match[0]
        kind = "tree" if resolved.is_dir() else "blob"
        url = f"{repo_url(repo)}/{kind}/{branch}/{resolved.relative_to(ROOT).as_posix()}"
        return match[1] + url + match[3]

    return LINK_RE.sub(fix, text)


def shows_verdicts(cell: nbformat.NotebookNode) -> bool:
    """Whether a code cell reports the exercises' verdicts: the cell that computes them, or any output that
    prints a metrics dict still holding them."""
    if cell.cell_type != "code":
        return False
    texts = [o.get("text", "") for o in cell.get("outputs", [])]
    texts += [o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])]
    return EXERCISE_VERDICTS in cell.source or any(VERDICTS_SHOWN.search("".join(t)) for t in texts)


def site_pages(with_solutions: bool = False) -> list[Path]:
    """The docs pages of the site: the students' site leaves the instructors' pages out."""
    pages = sorted((ROOT / "docs").glob("*.md"))
    return pages if with_solutions else [p for p in pages if p.name not in INSTRUCTOR_PAGES]


def hide_solutions(nb: nbformat.NotebookNode, name: str) -> None:
    """Replace solutions and model answers as the student versions do; a changed cell loses its outputs,
    and so does a cell that reports the exercises' verdicts (the solutions' "correct" beside stubs)."""
    for i, cell in enumerate(nb.cells):
        shown = student_cell(copy.deepcopy(cell), f"{name}, cell {i}")
        if shown.source != cell.source or shows_verdicts(cell):
            cell.source = shown.source
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None


def ran_smoke(nb: nbformat.NotebookNode) -> bool:
    """Whether papermill executed the notebook with SMOKE=True (`make run SMOKE=1`)."""
    return bool(nb.metadata.get("papermill", {}).get("parameters", {}).get("SMOKE", False))


def stage_notebook(executed: Path, dest: Path, site_files: set[Path], repo: str, branch: str,
                   with_solutions: bool = False) -> None:
    nb = nbformat.read(executed, as_version=4)
    if not with_solutions:
        hide_solutions(nb, executed.name)
    point_notebook(nb, executed, repo, branch)  # badge and set-up cell: the students' copy on the students' site
    badge = next(c for c in nb.cells if BADGE_TAG in c.metadata.get("tags", []))
    badge.source = badge.source.replace(BADGE_IMAGE, "colab-badge.svg")  # a local copy: no request leaves the site
    if ran_smoke(nb):
        nb.cells.insert(nb.cells.index(badge) + 1, nbformat.v4.new_markdown_cell(SMOKE_BANNER))
    source_path = ROOT / "notebooks" / executed.name
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell is not badge:
            cell.source = github_links(cell.source, source_path, site_files, repo, branch)
        for output in cell.get("outputs", []):
            if WIDGET_MIME in output.get("data", {}):
                output["data"] = {"text/html": WIDGET_NOTE}
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dest)


def toctree(caption: str, entries: list[str]) -> str:
    return "\n\n```{toctree}\n:caption: " + caption + "\n:hidden:\n\n" + "\n".join(entries) + "\n```\n"


def stage(executed_dir: Path, staging: Path, with_solutions: bool = False) -> list[str]:
    """Fill ``staging`` with the site's sources; the notebook names staged. The students' site's Colab badges
    and GitHub links lead to the students' copy ([tool.ca2sis] in pyproject.toml), the instructors' to theirs."""
    repo, branch = read_location(ROOT) if with_solutions else read_student_location(ROOT)
    notebooks = sorted(p for p in executed_dir.glob("*.ipynb") if (ROOT / "notebooks" / p.name).exists())
    if not notebooks:
        raise SystemExit(f"no executed notebooks in {executed_dir}: run `make run` first (or `make run SMOKE=1` "
                         "for a quick one), then `make book`")
    missing = sorted({p.name for p in (ROOT / "notebooks").glob("*.ipynb")} - {p.name for p in notebooks})
    if missing:
        print(f"warning: not executed yet, left out of the site: {', '.join(missing)}")
    if not (ROOT / "docs" / "index.md").exists():
        raise SystemExit("docs/index.md (the landing page) is missing")
    (staging / "notebooks").mkdir(parents=True)
    pages = site_pages(with_solutions)
    site_files = {p.resolve() for p in pages} | {(ROOT / "notebooks" / p.name).resolve() for p in notebooks}
    shutil.copytree(ROOT / "docs", staging / "docs", ignore=shutil.ignore_patterns("*.md"))  # images and the like
    for page in pages:
        text = github_links(page.read_text(), page, site_files, repo, branch)
        if page.name == "index.md":
            text += toctree("Notebooks", [f"../notebooks/{p.stem}" for p in notebooks])
            guides = [p.stem for p in pages if p.name != "index.md"]
            if guides:
                text += toctree("Guides", guides)
        (staging / "docs" / page.name).write_text(text)
    shutil.copy(CONF_DIR / "_static" / "colab-badge.svg", staging / "notebooks" / "colab-badge.svg")
    for path in notebooks:
        stage_notebook(path, staging / "notebooks" / path.name, site_files, repo, branch, with_solutions)
    return [p.name for p in notebooks]


def build(executed_dir: Path, out: Path, with_solutions: bool = False) -> Path:
    """Render the site into ``out`` (claimed as this script's folder: see the module docstring). The
    staging copies and MyST-NB's copies of the notebooks live in a temporary folder, removed after."""
    executed_dir = executed_dir.resolve()
    with claim(out, "scripts/build_site.py", inputs=(executed_dir, ROOT)) as site, \
            tempfile.TemporaryDirectory(prefix="ca2sis-site-") as work:
        staging, html = Path(work) / "src", Path(work) / "html"  # MyST-NB writes beside html: work/jupyter_execute
        staged = stage(executed_dir, staging, with_solutions)
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(CONF_DIR), "-d",
               str(staging / ".doctrees"), str(staging), str(html)]
        subprocess.run(cmd, check=True)
        site.clear()  # only now: a failed build leaves the previous site as it was
        for entry in html.iterdir():
            shutil.move(entry, site.path / entry.name)
        (site.path / "index.html").write_text(  # the landing page lives at docs/index.html, as docs/index.md in git
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>CA²-SIS course</title>'
            '<meta http-equiv="refresh" content="0; url=docs/index.html"></head>'
            '<body><a href="docs/index.html">CA²-SIS course</a></body></html>\n')
        build_explorer(site.path / "explorer")  # the in-browser explorer (scripts/build_explorer.py): static files
    print(f"site with {len(staged)} notebooks: {site.path / 'index.html'}")
    return site.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executed", default="outputs", help="folder with the executed notebooks of `make run`")
    parser.add_argument("--out", default="_build/site", help="where the HTML goes")
    parser.add_argument("--with-solutions", action="store_true",
                        help="keep solutions and model answers (an instructors' site: never publish it to students)")
    args = parser.parse_args(argv)
    try:
        build(Path(args.executed), Path(args.out), args.with_solutions)
    except NotOurFolder as refusal:  # one line, no traceback: nothing was written or removed
        sys.exit(f"build_site.py: {refusal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
