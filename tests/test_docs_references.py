"""Every citation in the repository resolves inside it.

* A reference to ``docs/<file>.md`` or ``docs/<file>.md#anchor`` — in code, notebooks, the README or
  the docs — names a file that exists and, with an anchor, a heading of that file (GitHub's anchor
  slugs). Relative Markdown links inside README.md and docs/ are checked the same way.
* Nothing cites a document outside the repository (the project's private reference notes): the
  paper is cited by section or equation, and this project's own text by a heading under docs/.
* Claim IDs (C1, C2, …) cited anywhere are listed in docs/claims.md.

Each file is its own test case, so ``-k`` can select a part of the tree.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "outputs", "runs", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache",
             ".ipynb_checkpoints", "data/generated"}
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".sh"}
TEXT_NAMES = {"Makefile", "run"}  # .ci/run

# Written in pieces so that this file does not match its own patterns.
OUTSIDE = [re.compile(p) for p in ("spec" + r"\s*§", r"\.\./" + "shared", "shared/" + "spec", "shared/" + "research",
                                   "paper_" + "digest", "teaching_" + "anchors", r"architecture\.md" + " §")]
# In the library a bare "§3" has no document: it must point to a docs/ heading.
BARE_SECTION = re.compile(r"(?<!paper )§\s*\d")
# The paper's section and equation numbers could not be checked against the published text, so the
# paper is cited by the names of its components (docs/architecture.md, "How the paper is cited here").
PAPER_NUMBER = re.compile(r"paper(?:'s)?,?\s*(?:§|[Ss]ection\s|[Ss]ec\.\s*|[Ee]q(?:uation|\.)\s*\(?)\s*\d")
DOCS_REF = re.compile(r"docs/([\w\-./]+?\.md)(#[^\s)\]`'\"<>,;:.]+)?")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
CLAIM_REF = re.compile(r"(?:\bclaims?\s+\(?|\"claim\":\s*\")(C\d+)(?:[a-z]|\.\d+)?\b")


def text_files() -> list[Path]:
    """The repository's text files, walking the tree but not into virtual envs, outputs or caches."""
    files = []
    for folder, dirs, names in os.walk(ROOT):
        here = Path(folder)
        rel = here.relative_to(ROOT).as_posix()
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                   and f"{rel}/{d}".lstrip("./") not in SKIP_DIRS and not (rel == "." and d in {".gl", ".whl"})]
        files += [here / n for n in names if Path(n).suffix in TEXT_SUFFIXES or n in TEXT_NAMES]
    return sorted(files)


def read_text(path: Path) -> str:
    """A file's text; for a notebook, its cells' sources only (outputs are stripped anyway)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell.get("source", [])) for cell in json.loads(text)["cells"])
    return text


def github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: inline markup dropped, lower case, punctuation
    removed (letters, digits, '_', '-' and spaces kept), spaces turned into '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "_- ")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file (headings inside fenced code blocks excluded),
    with GitHub's -1, -2 suffixes for repeated headings."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_slug(match.group(2))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def references(path: Path, text: str) -> list[tuple[Path, str | None, str]]:
    """(target file, anchor or None, the text cited) for every docs reference in ``text``."""
    refs = [(ROOT / "docs" / m.group(1), (m.group(2) or "")[1:] or None, m.group(0)) for m in DOCS_REF.finditer(text)]
    if path.suffix == ".md":
        for m in MD_LINK.finditer(text):
            target = m.group(1).strip("<>")
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            if file_part and not file_part.endswith(".md"):
                continue
            resolved = (path.parent / file_part).resolve() if file_part else path
            refs.append((resolved, anchor or None, target))
    return refs


FILES = text_files()
IDS = [p.relative_to(ROOT).as_posix() for p in FILES]


def test_the_tree_has_text_to_check():
    names = set(IDS)
    assert {"README.md", "docs/architecture.md", "docs/claims.md"} <= names
    assert any(name.startswith("ca2sis_lib/") for name in names)
    assert any(name.endswith(".ipynb") for name in names)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_docs_references_resolve(path: Path):
    problems = []
    for target, anchor, cited in references(path, read_text(path)):
        if not target.is_file():
            problems.append(f"{cited!r}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor is not None and anchor not in anchors(target):
            problems.append(f"{cited!r}: {target.name} has no heading with anchor #{anchor}")
    assert not problems, "broken references:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_nothing_cites_a_document_outside_the_repository(path: Path):
    lines = read_text(path).splitlines()
    hits = [f"line {i}: {line.strip()[:100]}" for i, line in enumerate(lines, 1)
            if any(p.search(line) for p in OUTSIDE)]
    assert not hits, ("cite the paper (section/equation) or a docs/ heading instead of notes outside the "
                      "repository:\n" + "\n".join(hits))


LIBRARY = [p for p in FILES if p.relative_to(ROOT).as_posix().startswith("ca2sis_lib/")]


@pytest.mark.parametrize("path", LIBRARY, ids=[p.relative_to(ROOT).as_posix() for p in LIBRARY])
def test_the_library_cites_no_bare_section_number(path: Path):
    """Notebooks number their own sections; in the library "§3" would name no document at all."""
    lines = read_text(path).splitlines()
    hits = [f"line {i}: {line.strip()[:100]}" for i, line in enumerate(lines, 1) if BARE_SECTION.search(line)]
    assert not hits, "say which document (docs/<file>.md#heading, or the paper):\n" + "\n".join(hits)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_the_paper_is_cited_by_component_not_by_an_unchecked_number(path: Path):
    lines = read_text(path).splitlines()
    hits = [f"line {i}: {line.strip()[:100]}" for i, line in enumerate(lines, 1) if PAPER_NUMBER.search(line)]
    assert not hits, ("name the paper's component (e.g. the Cross-Attention Generator) or a docs/architecture.md "
                      "heading or equation instead of a paper section number:\n" + "\n".join(hits))


def test_a_paper_section_number_is_found():
    paper = "paper"  # split, so that this file does not cite what it tests for
    assert PAPER_NUMBER.search(f"CA²-SIS ({paper} §3) replaces") and PAPER_NUMBER.search(f"the {paper}'s Eq. (4)")
    assert not PAPER_NUMBER.search("the paper's Cross-Attention Generator (docs/architecture.md, eq. 4)")


PAGES = [p for p in FILES if p.suffix == ".md"]


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_no_page_keeps_a_placeholder_line(path: Path):
    """A line that is one upper-case token (``SOME_TABLE``) is text a script was meant to replace."""
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [f"line {i}: {line}" for i, line in enumerate(lines, 1) if re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", line.strip())]
    assert not hits, "placeholders left in the page:\n" + "\n".join(hits)


def claim_ids() -> set[str]:
    text = (ROOT / "docs" / "claims.md").read_text(encoding="utf-8")
    return set(re.findall(r"^## (C\d+) ·", text, flags=re.M))


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_cited_claims_are_listed_in_docs_claims(path: Path):
    listed = claim_ids()
    cited = {m.group(1) for m in CLAIM_REF.finditer(read_text(path))}
    assert cited <= listed, f"claims {sorted(cited - listed)} are cited but not listed in docs/claims.md"


def test_github_slugs_match_githubs_rules():
    assert github_slug("Attention loss L_att") == "attention-loss-l_att"
    assert github_slug("The baselines: SPADE and SEAN") == "the-baselines-spade-and-sean"
    assert github_slug("C1 · Local style edits stay local") == "c1--local-style-edits-stay-local"
    assert github_slug("Using `make run`") == "using-make-run"


def test_a_broken_anchor_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```bash\n# not a heading\n```\n\n## Real one\n\n## Real one\n")
    assert anchors(page) == {"title", "real-one", "real-one-1"}
