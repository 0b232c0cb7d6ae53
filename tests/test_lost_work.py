"""No tool removes or overwrites what it did not make (ca2sis_lib/owned_folder.py holds the rule).

* the course site (scripts/build_site.py) refuses a repository, its own input or a folder holding it,
  and any non-empty folder it did not build; it rebuilds its own site, and stops (removing nothing)
  when a file was added to it or changed; a failed build keeps the previous site. Sphinx itself is
  replaced by a stand-in that writes a few pages (tests/test_site.py renders the real site);
* the student notebooks (scripts/make_student.py) never replace one a student worked on;
* `make run` (scripts/run_notebooks.py) never overwrites a notebook it did not execute;
* an export into the weights folder never overwrites a file no export made.
Every folder here is a temporary one: none of these tests can touch the checkout, whatever the code does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

from ca2sis_lib.owned_folder import MARKER, NotOurFolder, claim, scratch
from ca2sis_lib.shipped import SHIPPED_DIR, check_replaceable, export_generator

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
build_site = load_script("scripts/build_site.py")
make_student = load_script("scripts/make_student.py")
run_notebooks = load_script("scripts/run_notebooks.py")


@pytest.fixture
def executed(tmp_path: Path) -> Path:
    """A `make run` output folder: the notebooks (unexecuted copies do for staging) and one notebook's
    figure and metrics.json, which must survive every refused build."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, folder / path.name)
    (folder / NOTEBOOKS[0].stem).mkdir()
    (folder / NOTEBOOKS[0].stem / "metrics.json").write_text('{"psnr": 23.1}')
    (folder / NOTEBOOKS[0].stem / "figure.png").write_bytes(b"\x89PNG figure")
    return folder


def _intact(executed: Path) -> bool:
    figures = executed / NOTEBOOKS[0].stem
    return (figures / "metrics.json").read_text() == '{"psnr": 23.1}' and (figures / "figure.png").exists() and all(
        (executed / p.name).exists() for p in NOTEBOOKS)


class FakeSphinx:
    """Stands in for `python -m sphinx`: writes a page per build (build i writes page_<i>.html) into
    the output folder it is given, or fails when ``fail`` is set."""

    def __init__(self) -> None:
        self.builds, self.fail = 0, False

    def __call__(self, cmd: list[str], check: bool = True) -> None:
        if self.fail:
            raise subprocess.CalledProcessError(2, cmd)
        self.builds += 1
        html = Path(cmd[-1])
        (html / "docs").mkdir(parents=True)
        (html / "docs" / "index.html").write_text("<html>landing</html>")
        (html / f"page_{self.builds}.html").write_text(f"<html>build {self.builds}</html>")
        (html.parent / "jupyter_execute").mkdir(exist_ok=True)  # as MyST-NB does, beside the output folder


@pytest.fixture
def sphinx(monkeypatch) -> FakeSphinx:
    fake = FakeSphinx()
    monkeypatch.setattr(build_site.subprocess, "run", fake)
    return fake


def test_the_site_is_never_built_into_a_repository(tmp_path, executed, sphinx, monkeypatch):
    """The reported `build_site.py --out .` in a clone deleted the clone, .git included."""
    repo = tmp_path / "clone"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\n")
    (repo / "my_work.py").write_text("print('mine')\n")
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as refusal:
        build_site.main(["--executed", str(executed), "--out", "."])
    assert "is a repository" in str(refusal.value.code) and "Fix:" in str(refusal.value.code)
    assert (repo / ".git").is_dir() and (repo / "my_work.py").read_text() == "print('mine')\n"
    assert sphinx.builds == 0 and _intact(executed)


@pytest.mark.parametrize("where", ["the input", "the folder above the input"])
def test_the_site_is_never_built_over_its_input(tmp_path, executed, sphinx, where):
    """The reported `--out outputs --executed outputs` deleted the figures and metrics.json, rc 0."""
    out = executed if where == "the input" else executed.parent
    with pytest.raises(NotOurFolder, match="input"):
        build_site.build(executed, out)
    assert _intact(executed) and sphinx.builds == 0


def test_a_folder_the_builder_did_not_make_is_refused(tmp_path, executed, sphinx):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lecture_plan.md").write_text("week 1")
    with pytest.raises(NotOurFolder, match="lecture_plan.md"):
        build_site.build(executed, notes)
    assert (notes / "lecture_plan.md").read_text() == "week 1" and sorted(p.name for p in notes.iterdir()) == [
        "lecture_plan.md"]


def test_the_builder_replaces_its_own_site_and_leaves_nothing_beside_it(tmp_path, executed, sphinx):
    site = tmp_path / "_build" / "site"
    build_site.build(executed, site)
    assert (site / "page_1.html").exists() and (site / "index.html").exists() and (site / MARKER).exists()
    build_site.build(executed, site)  # its own site: replaced, the first build's page gone
    assert (site / "page_2.html").exists() and not (site / "page_1.html").exists()
    assert sorted(p.name for p in site.parent.iterdir()) == ["site"]  # no site-src, no jupyter_execute beside it
    assert _intact(executed)


def test_a_file_added_to_or_changed_in_the_site_stops_the_rebuild(tmp_path, executed, sphinx):
    site = tmp_path / "site"
    build_site.build(executed, site)
    (site / "notes.txt").write_text("my notes")
    with pytest.raises(NotOurFolder, match=r"not written by scripts/build_site.py: notes.txt.*Nothing was removed"):
        build_site.build(executed, site)
    assert (site / "notes.txt").exists() and (site / "page_1.html").exists()
    (site / "notes.txt").unlink()
    (site / "docs" / "index.html").write_text("<html>edited by hand</html>")
    with pytest.raises(NotOurFolder, match=r"changed since .*docs/index.html"):
        build_site.build(executed, site)
    assert (site / "docs" / "index.html").read_text() == "<html>edited by hand</html>"


def test_a_failed_build_keeps_the_previous_site(tmp_path, executed, sphinx):
    site = tmp_path / "site"
    build_site.build(executed, site)
    sphinx.fail = True
    with pytest.raises(subprocess.CalledProcessError):
        build_site.build(executed, site)
    assert (site / "page_1.html").exists() and (site / "docs" / "index.html").exists()
    sphinx.fail = False
    build_site.build(executed, site)  # and the next build is not refused
    assert (site / "page_2.html").exists()


def test_make_student_never_replaces_a_notebook_a_student_worked_on(tmp_path):
    student = tmp_path / "student"
    assert make_student.main(["--out", str(student)]) == 0
    worked = student / NOTEBOOKS[1].name
    worked.write_text(worked.read_text().replace("raise NotImplementedError()", "return 42  # my answer", 1))
    with pytest.raises(SystemExit, match=f"changed since .*{NOTEBOOKS[1].name}"):
        make_student.main(["--out", str(student)])
    assert "return 42  # my answer" in worked.read_text()
    worked.rename(tmp_path / "my_answers.ipynb")  # the fix the error names: move it away
    assert make_student.main(["--out", str(student)]) == 0 and worked.exists()


def test_make_student_refuses_a_folder_it_did_not_make_and_its_own_sources(tmp_path):
    theirs = tmp_path / "course"
    theirs.mkdir()
    shutil.copy(NOTEBOOKS[0], theirs / NOTEBOOKS[0].name)
    (theirs / NOTEBOOKS[0].name).write_text((theirs / NOTEBOOKS[0].name).read_text() + " ")
    before = (theirs / NOTEBOOKS[0].name).read_text()
    with pytest.raises(SystemExit, match="did not make it"):
        make_student.main(["--out", str(theirs)])
    with pytest.raises(SystemExit, match="input"):  # --out the folder of the source notebooks
        make_student.main([str(theirs / NOTEBOOKS[0].name), "--out", str(theirs)])
    assert (theirs / NOTEBOOKS[0].name).read_text() == before and "BEGIN SOLUTION" in before


def test_make_run_never_overwrites_a_notebook_it_did_not_execute(tmp_path):
    out = tmp_path / "mywork"
    out.mkdir()
    shutil.copy(NOTEBOOKS[0], out / NOTEBOOKS[0].name)  # someone's own copy, worked on
    with pytest.raises(SystemExit, match=f"holds {NOTEBOOKS[0].name}, which this script did not write"):
        run_notebooks.check_out(out, NOTEBOOKS[:1])
    executed = nbformat.read(NOTEBOOKS[0], as_version=4)
    executed.metadata["papermill"] = {"input_path": str(NOTEBOOKS[0]), "parameters": {"SMOKE": True}}
    nbformat.write(executed, out / NOTEBOOKS[0].name)  # an executed copy of its own is replaced
    assert run_notebooks.check_out(out, NOTEBOOKS[:1]) == out.resolve()
    for refused in (ROOT, ROOT / "notebooks", ROOT.parent):  # the clone, the sources, a folder holding them
        with pytest.raises(SystemExit, match="repository|input"):
            run_notebooks.check_out(refused, NOTEBOOKS)


def test_an_export_never_overwrites_a_weights_file_no_export_wrote(tmp_path):
    mine = tmp_path / "ca2sis_tiny_toy.pt"
    mine.write_bytes(b"weights I trained myself")
    with pytest.raises(NotOurFolder, match="does not list it"):
        export_generator(tmp_path / "no_run", "ca2sis_tiny_toy", dest=tmp_path)
    assert mine.read_bytes() == b"weights I trained myself"
    shutil.copy(SHIPPED_DIR / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(SHIPPED_DIR / "ca2sis_tiny_toy.pt", mine)
    check_replaceable(tmp_path, "ca2sis_tiny_toy")  # the export the manifest records: replaceable
    data = bytearray(mine.read_bytes())
    data[-100] ^= 0xFF
    mine.write_bytes(bytes(data))
    with pytest.raises(NotOurFolder, match="changed since it was exported"):
        check_replaceable(tmp_path, "ca2sis_tiny_toy")


def test_the_segmenter_refuses_to_overwrite_before_it_trains(tmp_path, monkeypatch):
    from ca2sis_lib import segmenter

    (tmp_path / "toy_segmenter.pt").write_bytes(b"someone's parser")
    monkeypatch.setattr(segmenter, "train_segmenter", lambda steps: pytest.fail("trained before checking"))
    with pytest.raises(NotOurFolder, match="toy_segmenter.pt exists"):
        segmenter.main(["--out", str(tmp_path), "--steps", "1"])
    assert (tmp_path / "toy_segmenter.pt").read_bytes() == b"someone's parser"


def test_make_clean_keeps_a_student_s_work(tmp_path, capsys):
    from ca2sis_lib import owned_folder

    clean = next(block for block in (ROOT / "Makefile").read_text().split("\n\n") if block.startswith("## make clean"))
    assert "owned_folder remove student --tool scripts/make_student.py" in clean
    assert not any("rm " in line and "student" in line for line in clean.splitlines()), clean
    student = tmp_path / "student"
    assert make_student.main(["--out", str(student)]) == 0
    worked = student / NOTEBOOKS[2].name
    worked.write_text(worked.read_text() + " ")
    command = ["remove", str(student), "--tool", "scripts/make_student.py"]
    assert owned_folder.main(command) == 1 and "not removed" in capsys.readouterr().err
    assert worked.exists() and (student / NOTEBOOKS[0].name).exists()  # nothing removed
    worked.unlink()
    assert owned_folder.main(command) == 0 and not student.exists()


# -- the rule itself ---------------------------------------------------------------------------------
def test_an_interrupted_run_s_files_are_its_own_and_a_link_is_removed_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the tool's")
    folder = claim(tmp_path / "out", "tool")  # claimed, then killed before it sealed
    (folder.path / "part").mkdir()
    (folder.path / "part" / "page.html").write_text("half a build")
    (folder.path / "link").symlink_to(outside)
    again = claim(tmp_path / "out", "tool")
    again.clear()
    assert sorted(p.name for p in again.path.iterdir()) == [MARKER] and outside.read_text() == "not the tool's"
    with pytest.raises(NotOurFolder, match="output folder of 'tool': other writes only into a folder of its own"):
        claim(tmp_path / "out", "other")


def test_a_notebook_s_scratch_folder_is_emptied_and_a_folder_it_did_not_make_is_not(tmp_path):
    """Notebook 01 once removed data/celebamask<IMAGE_SIZE> with rmtree: with IMAGE_SIZE=256 that is where
    the README prepares the real CelebAMask-HQ. A scratch folder is emptied only when the notebook made it."""
    prepared = tmp_path / "celebamask256"
    (prepared / "train" / "images").mkdir(parents=True)
    (prepared / "train" / "images" / "0.jpg").write_bytes(b"a photo")
    with pytest.raises(NotOurFolder, match="did not make it.*train"):
        scratch(prepared, "notebook 01")
    assert (prepared / "train" / "images" / "0.jpg").read_bytes() == b"a photo"

    mine = scratch(tmp_path / "toy_broken", "notebook 01")
    (mine / "labels").mkdir()
    (mine / "labels" / "x.png").write_bytes(b"x")
    (mine / "link").symlink_to(prepared)  # a link is removed, never followed
    assert scratch(mine, "notebook 01") == mine and [p.name for p in mine.iterdir()] == [MARKER]
    assert (prepared / "train" / "images" / "0.jpg").exists()
    with pytest.raises(NotOurFolder, match="scratch folder of 'notebook 01'"):
        scratch(mine, "notebook 03")
    with pytest.raises(NotOurFolder, match="scratch folder"):
        claim(mine, "notebook 01")  # a scratch folder is not an output folder with a record of files
    with pytest.raises(NotOurFolder, match="output folder"):
        scratch(claim(tmp_path / "site", "build_site").path, "build_site")
