"""The runner behind `make run`: one progress line per code cell, and no kernel transport warning."""

from __future__ import annotations

import io
from pathlib import Path

import nbformat
import papermill
import pytest
from conftest import notebook_runner

execute = notebook_runner().execute


@pytest.mark.notebook
def test_progress_lines_and_no_transport_warning(tmp_path: Path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x = 2"),
                nbformat.v4.new_code_cell("\n\nprint(x * 21)")]
    nbformat.write(nb, tmp_path / "07_demo.ipynb")
    lines = io.StringIO()
    done = execute(tmp_path / "07_demo.ipynb", tmp_path / "out.ipynb", {}, cwd=tmp_path, timeout=120, stream=lines)
    assert done.cells[2].outputs[0]["text"] == "42\n"
    printed = lines.getvalue().splitlines()
    assert len(printed) == 2  # code cells only, markdown is skipped
    assert printed[0].strip().startswith("07 · cell 1 of 2 ·") and printed[0].endswith("x = 2")
    assert printed[1].endswith("print(x * 21)")  # the first non-empty line names the cell
    assert "eavesdropping" not in capfd.readouterr().err  # IPC transport: the kernel has nothing to warn about
    quiet = io.StringIO()
    execute(tmp_path / "07_demo.ipynb", tmp_path / "out.ipynb", {}, cwd=tmp_path, progress=False, stream=quiet)
    assert quiet.getvalue() == ""


@pytest.mark.notebook
def test_a_failing_cell_is_reported(tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        execute(tmp_path / "bad.ipynb", tmp_path / "out.ipynb", {}, cwd=tmp_path, stream=io.StringIO())
