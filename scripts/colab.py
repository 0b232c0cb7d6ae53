"""Set where the repository lives, once, and write it everywhere Colab and the site need it.

    python scripts/colab.py --repo owner/name [--branch main]   # what `make colab REPO=owner/name` runs
    python scripts/colab.py                                      # rewrite from pyproject.toml as it is
    python scripts/colab.py --check                              # exit 1 when a file disagrees

The one place is ``[project.urls]`` in pyproject.toml (``Repository`` and ``Colab``). From it this
script writes: the Colab set-up block at the top of every notebook's first code cell (clone,
install, fail loudly), an "Open in Colab" badge cell at the top of every notebook, and the
repository's links in README.md and docs/*.md. The course site (site/conf.py) reads pyproject.toml
when it is built, so it needs no rewriting.

The students' copy has its own place, ``[tool.ca2sis]`` in pyproject.toml: ``student_branch`` and,
when it is another repository, ``student_repository``. ``make student`` (scripts/make_student.py)
writes it into the student notebooks' badges and clone addresses, so that a student's badge never
opens the instructors' notebooks with the solutions; ``--student-branch`` / ``--student-repo``
(``make colab STUDENT_BRANCH=… STUDENT_REPO=…``) set it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_TAG = "colab-badge"
SETUP_TAG = "hide-input"  # MyST-NB folds the set-up code on the site: each page opens on its question
SETUP_END = re.compile(r"^from ca2sis_lib", re.M)  # the cell's own code starts at the first unindented import
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
URL_RE = re.compile(r'^(?P<key>Repository|Colab)[ \t]*=[ \t]*"(?P<url>[^"]*)"[ \t]*$', re.M)
TOOL_TABLE = "[tool.ca2sis]"
STUDENT_RE = re.compile(r'^(?P<key>student_repository|student_branch)[ \t]*=[ \t]*"(?P<value>[^"]*)"[ \t]*$', re.M)

SETUP_BLOCK = '''# Set-up: on Colab, clone this repository and install it without changing any package Colab already
# has (ca2sis_lib/colab_setup.py); everywhere, print the versions and the device.
import os
import subprocess
import sys

REPO_URL = "{url}"  # set for a fork with `make colab REPO=owner/name`
REPO_BRANCH = "{branch}"
if "google.colab" in sys.modules:
    TARGET = os.path.join(os.environ.get("CA2SIS_COLAB_DIR", "/content"), "ca2sis")
    if not os.path.exists(os.path.join(TARGET, "pyproject.toml")):  # not cloned (or uploaded) yet
        cmd = ["git", "clone", "-q", "--depth", "1", "--branch", REPO_BRANCH, REPO_URL, TARGET]
        clone = subprocess.run(cmd, capture_output=True, text=True)
        if clone.returncode != 0:
            raise RuntimeError(f"Could not clone {{REPO_URL}} (branch {{REPO_BRANCH}}) into {{TARGET}}. Fix: check "
                               "that this address is right and public; a fork sets its own with `make colab "
                               "REPO=owner/name` (then commit and push), or upload the repository to that folder."
                               f"\\n{{clone.stderr[-1500:]}}")
    if not os.path.exists(os.path.join(TARGET, "ca2sis_lib", "colab_setup.py")):
        raise RuntimeError(f"{{TARGET}} holds no clone of ca2sis. Fix: delete that folder and run this cell again.")
    sys.path.insert(0, TARGET)
    from ca2sis_lib.colab_setup import install

    install(TARGET)

'''


def read_location(root: Path = ROOT) -> tuple[str, str]:
    """(owner/name, branch) from pyproject.toml's [project.urls]."""
    return location((root / "pyproject.toml").read_text())


def location(pyproject: str) -> tuple[str, str]:
    """(owner/name, branch) from the text of pyproject.toml's [project.urls]."""
    urls = dict((m["key"], m["url"]) for m in URL_RE.finditer(pyproject))
    repo_match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", urls.get("Repository", ""))
    if repo_match is None:
        raise ValueError('pyproject.toml needs [project.urls] Repository = "https://github.com/owner/name"; '
                         "set it with `make colab REPO=owner/name`")
    branch_match = re.search(r"/blob/([^/]+)/notebooks/?$", urls.get("Colab", ""))
    return repo_match[1], branch_match[1] if branch_match else "main"


def _tool_table(text: str) -> tuple[int, int]:
    """Start and end of the body of pyproject.toml's [tool.ca2sis] table ((len, len) when it is missing)."""
    head = text.find(f"\n{TOOL_TABLE}\n")
    if head < 0:
        return len(text), len(text)
    start = head + len(TOOL_TABLE) + 2
    following = re.search(r"^\[", text[start:], re.M)
    return start, start + following.start() if following else len(text)


def read_student_location(root: Path = ROOT) -> tuple[str, str]:
    """(owner/name, branch) of the students' copy, from pyproject.toml's [tool.ca2sis]: ``student_branch``,
    and ``student_repository`` (default: the instructors' Repository of [project.urls])."""
    return student_location((root / "pyproject.toml").read_text())


def student_location(text: str) -> tuple[str, str]:
    """``read_student_location`` from the text of pyproject.toml; refuses the instructors' own location."""
    values = {m["key"]: m["value"] for m in STUDENT_RE.finditer(text[slice(*_tool_table(text))])}
    repo, branch = location(text)
    if not values.get("student_branch"):
        raise ValueError(f'pyproject.toml needs {TOOL_TABLE} student_branch = "<branch>": the branch students open '
                         "their notebooks from (set it with `make colab STUDENT_BRANCH=student`)")
    student_repo = repo
    if values.get("student_repository"):
        match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", values["student_repository"])
        if match is None:
            raise ValueError(f'{TOOL_TABLE} student_repository must be "https://github.com/owner/name", got '
                             f"{values['student_repository']!r} (set it with `make colab STUDENT_REPO=owner/name`)")
        student_repo = match[1]
    if (student_repo, values["student_branch"]) == (repo, branch):
        raise ValueError(f"the students' copy ({TOOL_TABLE}) is the instructors' repository and branch ({repo}, "
                         f"{branch}): the students' badges would open the solutions. Name another branch "
                         "(`make colab STUDENT_BRANCH=student`) or repository (`make colab STUDENT_REPO=owner/name`)")
    return student_repo, values["student_branch"]


def write_student_location(text: str, repo: str | None, branch: str | None) -> str:
    """pyproject.toml's text with [tool.ca2sis] student_repository / student_branch set (the table is added when
    missing; ``None`` leaves a key as it is)."""
    for key, value in (("student_repository", repo and repo_url(repo)), ("student_branch", branch)):
        if value is None:
            continue
        start, end = _tool_table(text)
        if start == len(text):
            text = text.rstrip("\n") + f"\n\n{TOOL_TABLE}\n"
            start = end = len(text)
        line = f'{key} = "{value}"'
        body, count = re.subn(rf'^{key}[ \t]*=.*$', line, text[start:end], flags=re.M)
        text = text[:start] + (body if count else line + "\n" + body) + text[end:]
    return text


def repo_url(repo: str) -> str:
    return f"https://github.com/{repo}"


def colab_url(repo: str, branch: str, notebook: str = "") -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook}".rstrip("/")


def setup_block(url: str, branch: str) -> str:
    """The generated head of every notebook's first code cell."""
    return SETUP_BLOCK.format(url=url, branch=branch)


def badge_source(repo: str, branch: str, notebook: str) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(repo, branch, notebook)})"


def _first_code_cell(nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    cell = next((c for c in nb.cells if c.cell_type == "code"), None)
    if cell is None or not SETUP_END.search(cell.source):
        raise ValueError(f"{path.name}: the first code cell must import from ca2sis_lib (after the set-up block)")
    return cell


def point_notebook(nb: nbformat.NotebookNode, path: Path, repo: str, branch: str) -> None:
    """Write the set-up block and the badge cell of ``repo``/``branch`` into a notebook read from ``path``."""
    cell = _first_code_cell(nb, path)
    cell.source = setup_block(repo_url(repo), branch) + cell.source[SETUP_END.search(cell.source).start():]
    tags = cell.metadata.setdefault("tags", [])
    if SETUP_TAG not in tags:
        tags.insert(0, SETUP_TAG)
    badge = next((c for c in nb.cells if BADGE_TAG in c.metadata.get("tags", [])), None)
    if badge is None:
        badge = nbformat.v4.new_markdown_cell(metadata={"tags": [BADGE_TAG]})
        nb.cells.insert(0, badge)
    badge.source = badge_source(repo, branch, path.name)


def rewrite_notebook(path: Path, repo: str, branch: str) -> bool:
    """Write the set-up block and the badge cell into one notebook; True when it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    point_notebook(nb, path, repo, branch)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after + "\n")
    return after != before


def rewrite_text(text: str, old: tuple[str, str], new: tuple[str, str]) -> str:
    """Point GitHub and Colab links of the ``old`` (repo, branch) at the ``new`` one."""
    pattern = re.compile(rf"(github\.com/|colab\.research\.google\.com/github/){re.escape(old[0])}"
                         rf"(/(?:blob|tree)/{re.escape(old[1])}(?=/))?")
    return pattern.sub(lambda m: m[1] + new[0] + (m[2].replace(old[1], new[1]) if m[2] else ""), text)


def text_files(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def apply(repo: str, branch: str, root: Path = ROOT, student_repo: str | None = None,
          student_branch: str | None = None) -> list[Path]:
    """Set the location (and, when given, the students' copy) in pyproject.toml and write the location into
    notebooks, README and docs; the changed files."""
    for name, value in (("REPO", repo), ("STUDENT_REPO", student_repo)):
        if value is not None and not REPO_RE.match(value):
            raise ValueError(f"{name} must look like owner/name (the GitHub path of your fork), got {value!r}")
    old = read_location(root)
    changed = []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    urls = {"Repository": repo_url(repo), "Colab": colab_url(repo, branch)}
    new_text = URL_RE.sub(lambda m: f'{m["key"]} = "{urls[m["key"]]}"', text)
    if student_repo is not None or student_branch is not None:
        new_text = write_student_location(new_text, student_repo, student_branch)
        student_location(new_text)  # a students' copy that is the instructors' is refused before anything is written
    if new_text != text:
        pyproject.write_text(new_text)
        changed.append(pyproject)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        if rewrite_notebook(path, repo, branch):
            changed.append(path)
    for path in text_files(root):
        text = path.read_text()
        new_text = rewrite_text(text, old, (repo, branch))
        if new_text != text:
            path.write_text(new_text)
            changed.append(path)
    return changed


def check(root: Path = ROOT) -> list[str]:
    """What disagrees with pyproject.toml's location (empty when everything agrees)."""
    repo, branch = read_location(root)
    problems = []
    try:
        read_student_location(root)
    except ValueError as error:
        problems.append(f"pyproject.toml: {error}")
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = _first_code_cell(nb, path)
        if not first.source.startswith(setup_block(repo_url(repo), branch)):
            problems.append(f"{path.name}: the first cell's set-up block is not the generated one")
        if SETUP_TAG not in first.metadata.get("tags", []):
            problems.append(f"{path.name}: the first code cell is not tagged {SETUP_TAG!r} (folded on the site)")
        badges = [c for c in nb.cells if BADGE_TAG in c.metadata.get("tags", [])]
        if not badges or badges[0].source != badge_source(repo, branch, path.name) or nb.cells.index(badges[0]) > 1:
            problems.append(f"{path.name}: no up-to-date Open-in-Colab badge cell at the top")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", help="owner/name of the GitHub repository (default: as in pyproject.toml)")
    parser.add_argument("--branch", help="branch Colab opens and clones (default: as in pyproject.toml)")
    parser.add_argument("--student-repo", help="owner/name of the students' copy, when it is another repository")
    parser.add_argument("--student-branch", help="branch of the students' copy (their badges open it)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when something disagrees")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or f"every notebook points at {repo_url(read_location()[0])}")
        return 1 if problems else 0
    repo, branch = read_location()
    changed = apply(args.repo or repo, args.branch or branch, student_repo=args.student_repo,
                    student_branch=args.student_branch)
    for path in changed:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"repository: {repo_url(args.repo or repo)} (branch {args.branch or branch}); {len(changed)} files changed")
    try:
        student = read_student_location()
        print(f"students' copy (`make student` writes it into their badges): {repo_url(student[0])}, "
              f"branch {student[1]}")
    except ValueError as error:
        print(f"warning: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
