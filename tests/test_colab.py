"""Colab from a link: one place for the repository's address, and a first cell that works or says why.

The first cell is run as Colab would run it: a stand-in ``google.colab`` module, the repository
served from a local bare clone (``file://``), a temporary folder in place of ``/content``, and a
fresh virtual environment that sees this environment's packages (torch included) the way Colab's
Python sees its preinstalled ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
from conftest import bare_repository, load_script

ROOT = Path(__file__).resolve().parents[1]
colab = load_script("scripts/colab.py")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

RUNNER = '''
import json, sys, types
google = types.ModuleType("google")
google.colab = types.ModuleType("google.colab")
sys.modules["google"], sys.modules["google.colab"] = google, google.colab
source = open(sys.argv[1]).read()
exec(compile(source, "first_cell", "exec"), {"__name__": "__main__"})
import ca2sis_lib, torch
print("RESULT " + json.dumps({"ca2sis_lib": ca2sis_lib.__file__, "torch": torch.__file__}))
'''


def first_cell(notebook: Path, url: str) -> str:
    """The notebook's first code cell, pointed at ``url`` the way `make colab` would point it."""
    repo, branch = colab.read_location(ROOT)
    source = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code").source
    generated = colab.setup_block(colab.repo_url(repo), branch)
    assert source.startswith(generated), f"{notebook.name}: run `make colab` to regenerate its first cell"
    return colab.setup_block(url, "main") + source[len(generated):]


def run_cell(python: str, source: str, tmp: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    (tmp / "cell.py").write_text(source)
    (tmp / "runner.py").write_text(RUNNER)
    (tmp / "content").mkdir(exist_ok=True)
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONPATH"}
    env["CA2SIS_COLAB_DIR"] = str(tmp / "content")
    return subprocess.run([python, str(tmp / "runner.py"), str(tmp / "cell.py")], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)


def test_notebooks_agree_with_pyproject():
    assert colab.check(ROOT) == [], "run `make colab` (python scripts/colab.py) and commit the notebooks"


def test_every_notebook_has_a_colab_badge_at_the_top():
    repo, branch = colab.read_location(ROOT)
    for path in NOTEBOOKS:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and colab.BADGE_IMAGE in first.source
        assert f"colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{path.name})" in first.source


def test_make_colab_rewrites_every_place(tmp_path: Path):
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "[run it](https://colab.research.google.com/github/ca2sis/ca2sis/blob/main/notebooks/03_training.ipynb), "
        "[code](https://github.com/ca2sis/ca2sis/tree/main/ca2sis_lib), [other](https://github.com/ca2sis/other)\n")
    (tmp_path / "README.md").write_text((tmp_path / "README.md").read_text()
                                        + "\n[![Open In Colab](x.svg)](https://colab.research.google.com/github/"
                                          "ca2sis/ca2sis/blob/main/notebooks/00_anatomy_of_ca2sis.ipynb)\n")
    changed = colab.apply("someone/fork-of-ca2sis", "teaching", root=tmp_path)
    assert colab.read_location(tmp_path) == ("someone/fork-of-ca2sis", "teaching")
    assert colab.check(tmp_path) == []
    assert {p.name for p in changed} >= {"pyproject.toml", "README.md", "page.md"} | {p.name for p in NOTEBOOKS}
    for path in (tmp_path / "notebooks").glob("*.ipynb"):
        text = path.read_text()
        assert "github.com/ca2sis/ca2sis" not in text and "github/ca2sis/ca2sis" not in text
        assert 'REPO_URL = \\"https://github.com/someone/fork-of-ca2sis\\"' in text
        assert 'REPO_BRANCH = \\"teaching\\"' in text
    page = (tmp_path / "docs" / "page.md").read_text()
    assert "github/someone/fork-of-ca2sis/blob/teaching/notebooks/03_training.ipynb" in page
    assert "github.com/someone/fork-of-ca2sis/tree/teaching/ca2sis_lib" in page
    assert "github.com/ca2sis/other" in page  # another repository of the same owner is left alone
    assert "github/someone/fork-of-ca2sis/blob/teaching/notebooks/00_" in (tmp_path / "README.md").read_text()
    assert colab.apply("someone/fork-of-ca2sis", "teaching", root=tmp_path) == []  # idempotent
    with pytest.raises(ValueError, match="owner/name"):
        colab.apply("https://github.com/someone/fork", "main", root=tmp_path)


def test_make_colab_sets_the_students_copy(tmp_path: Path):
    """`make colab STUDENT_REPO=… STUDENT_BRANCH=…` writes [tool.ca2sis]; the instructors' own location is refused
    before anything is written (the students' badges would open the solutions)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "notebooks").mkdir()
    colab.apply("someone/fork", "main", root=tmp_path, student_repo="someone/fork-students", student_branch="main")
    assert colab.read_location(tmp_path) == ("someone/fork", "main")
    assert colab.read_student_location(tmp_path) == ("someone/fork-students", "main")
    assert colab.check(tmp_path) == []
    before = (tmp_path / "pyproject.toml").read_text()
    with pytest.raises(ValueError, match="would open the solutions"):
        colab.apply("someone/fork", "main", root=tmp_path, student_repo="someone/fork")
    assert (tmp_path / "pyproject.toml").read_text() == before
    colab.apply("someone/fork", "main", root=tmp_path, student_branch="for-students")  # the repository stays
    assert colab.read_student_location(tmp_path) == ("someone/fork-students", "for-students")


def test_first_cell_stops_with_a_clear_message_on_a_wrong_address(tmp_path: Path):
    wrong = (tmp_path / "no-such-repository.git").as_uri()
    done = run_cell(sys.executable, first_cell(NOTEBOOKS[0], wrong), tmp_path)
    assert done.returncode != 0
    assert f"Could not clone {wrong}" in done.stderr and "make colab REPO=owner/name" in done.stderr, done.stderr
    assert "RESULT" not in done.stdout


def test_first_cell_stops_with_a_clear_message_when_the_clone_is_not_ca2sis(tmp_path: Path):
    url = bare_repository(tmp_path, files=["README.md"])  # clones, but is another project
    done = run_cell(sys.executable, first_cell(NOTEBOOKS[0], url), tmp_path)
    assert done.returncode != 0
    assert "holds no clone of ca2sis" in done.stderr and "delete that folder" in done.stderr, done.stderr


def test_first_cell_stops_with_a_clear_message_when_the_install_fails(tmp_path: Path):
    broken = "[project]\nname = 'ca2sis_lib'\ndependencies = ['no such thing>=1']\n"  # pip cannot install it
    url = bare_repository(tmp_path, files=["ca2sis_lib/__init__.py", "ca2sis_lib/colab_setup.py"],
                          texts={"pyproject.toml": broken})
    done = run_cell(sys.executable, first_cell(NOTEBOOKS[0], url), tmp_path)
    assert done.returncode != 0
    assert "pip could not install" in done.stderr and "Restart session" in done.stderr, done.stderr


def test_the_set_up_needs_only_the_standard_library(tmp_path: Path):
    """It runs before any dependency is installed: a Python with no packages at all imports it."""
    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import ca2sis_lib.colab_setup; print('ok')"
    done = subprocess.run([str(tmp_path / "bare" / "bin" / "python"), "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_constraints_pin_every_present_package_but_ours():
    from ca2sis_lib import colab_setup

    present = {"ipywidgets": "7.7.1", "torch": "2.11.0+cu128", "ca2sis-lib": "0.0.1", "jupyter-core": "5.9.1",
               "setuptools": "75.2.0", "pip": "24.1.2"}
    lines = colab_setup.constraints(present).splitlines()
    assert lines == ["ipywidgets==7.7.1", "jupyter-core==5.9.1", "torch==2.11.0+cu128"]
    assert colab_setup.canonical("Jupyter_Core") == colab_setup.canonical("jupyter.core") == "jupyter-core"
    assert colab_setup.installed()["pytest"]  # this environment's own packages are seen
    assert colab_setup.describe({"ca2sis-lib": "0.1.0", "torchmetrics": "1.8.2"}, "0.1.0") == (
        "ca2sis_lib 0.1.0 and what Colab lacked: torchmetrics 1.8.2")
